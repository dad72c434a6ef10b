package miniotest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/minio/madmin-go/v3"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

const testPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",` +
	`"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::akminio-test/*"]}]}`

// policyActions returns the actions of a canned policy as MinIO stores it.
func policyActions(t *testing.T, adm *madmin.AdminClient, name string) []string {
	t.Helper()
	info, err := adm.InfoCannedPolicyV2(context.Background(), name)
	if err != nil {
		t.Fatalf("InfoCannedPolicyV2(%q): %v", name, err)
	}
	var doc struct {
		Statement []struct{ Action []string }
	}
	if err := json.Unmarshal(info.Policy, &doc); err != nil {
		t.Fatalf("policy %q: %v in %s", name, err, info.Policy)
	}
	var actions []string
	for _, st := range doc.Statement {
		actions = append(actions, st.Action...)
	}
	return actions
}

func TestPolicySurvivesRestartOnSamePort(t *testing.T) {
	ctx := context.Background()
	s := Start(t)
	adm := s.Admin(t)
	if err := adm.AddCannedPolicy(ctx, "akminio-test", []byte(testPolicy)); err != nil {
		t.Fatalf("AddCannedPolicy: %v", err)
	}
	if got := policyActions(t, adm, "akminio-test"); len(got) != 1 || got[0] != "s3:GetObject" {
		t.Fatalf("policy actions = %v, want [s3:GetObject]", got)
	}

	host, pid := s.Host, s.PID()
	s.Restart(t)
	if s.Host != host {
		t.Errorf("host after restart = %s, want %s", s.Host, host)
	}
	if s.PID() == pid {
		t.Errorf("pid after restart = %d, want a new process", s.PID())
	}
	if got := s.Starts(); got != 2 {
		t.Errorf("Starts() = %d, want 2", got)
	}
	// The old client still works: same address, same credentials.
	if got := policyActions(t, adm, "akminio-test"); len(got) != 1 || got[0] != "s3:GetObject" {
		t.Fatalf("policy actions after restart = %v, want [s3:GetObject]", got)
	}
}

func TestEnvOptionReachesServer(t *testing.T) {
	s := Start(t, WithEnv("MINIO_SITE_REGION=eu-akminio-1"))
	kv, err := s.Admin(t).GetConfigKV(context.Background(), "site")
	if err != nil {
		t.Fatalf("GetConfigKV(site): %v", err)
	}
	// MinIO lists a key set by the environment as a comment line.
	if !strings.Contains(string(kv), "# MINIO_SITE_REGION=eu-akminio-1") {
		t.Fatalf("site config does not show the environment's region:\n%s", kv)
	}
}

func TestDynamicConfigAppliesWithoutRestart(t *testing.T) {
	ctx := context.Background()
	adm := Start(t).Admin(t)
	restart, err := adm.SetConfigKV(ctx, "api requests_max=37")
	if err != nil {
		t.Fatalf("SetConfigKV: %v", err)
	}
	if restart {
		t.Errorf("SetConfigKV(api) asked for a restart; api is a dynamic subsystem")
	}
	kv, err := adm.GetConfigKV(ctx, "api")
	if err != nil {
		t.Fatalf("GetConfigKV(api): %v", err)
	}
	if !strings.Contains(string(kv), "requests_max=37 ") {
		t.Fatalf("api config does not read back requests_max=37:\n%s", kv)
	}
}

func TestRestartInPlaceAppliesStaticConfig(t *testing.T) {
	ctx := context.Background()
	s := Start(t)
	adm := s.Admin(t)
	restart, err := adm.SetConfigKV(ctx, "site name=akminio-site")
	if err != nil {
		t.Fatalf("SetConfigKV: %v", err)
	}
	if !restart {
		t.Fatalf("SetConfigKV(site) did not ask for a restart")
	}
	siteName := func() string {
		t.Helper()
		kv, err := adm.GetConfigKV(ctx, "site")
		if err != nil {
			t.Fatalf("GetConfigKV(site): %v", err)
		}
		return string(kv)
	}
	if kv := siteName(); strings.Contains(kv, "akminio-site") {
		t.Fatalf("site name applied before the restart:\n%s", kv)
	}

	pid := s.PID()
	s.RestartInPlace(t)
	if s.PID() != pid {
		t.Errorf("pid after in-place restart = %d, want %d", s.PID(), pid)
	}
	if got := s.Starts(); got != 2 {
		t.Errorf("Starts() = %d, want 2", got)
	}
	if kv := siteName(); !strings.Contains(kv, "name=akminio-site ") {
		t.Fatalf("site name not applied after the restart:\n%s", kv)
	}
}

func TestWaitRestartedSeesRestartByAnotherClient(t *testing.T) {
	ctx := context.Background()
	s := Start(t)
	before := s.Starts()
	// As the daemon under test would: restart through the admin API.
	if err := s.Admin(t).ServiceRestartV2(ctx); err != nil {
		t.Fatalf("ServiceRestartV2: %v", err)
	}
	if err := s.WaitRestarted(ctx, before); err != nil {
		t.Fatal(err)
	}
	if got := s.Starts(); got != before+1 {
		t.Errorf("Starts() = %d, want %d", got, before+1)
	}
}

func TestSTSRefusalIsVerbatim(t *testing.T) {
	s := Start(t)
	// No OpenID provider is configured: MinIO refuses any token and says why.
	_, err := AssumeRoleWithWebIdentity(context.Background(), s.Endpoint, "not.a.jwt", 0)
	var stsErr credentials.ErrorResponse
	if !errors.As(err, &stsErr) {
		t.Fatalf("err = %v (%T), want a credentials.ErrorResponse", err, err)
	}
	if stsErr.STSError.Message == "" || !strings.Contains(err.Error(), stsErr.STSError.Message) {
		t.Fatalf("err = %q, want MinIO's message %q in it", err, stsErr.STSError.Message)
	}
}

func TestBinaryPath(t *testing.T) {
	t.Setenv(BinaryEnv, "")
	t.Setenv("AKMINIO_CACHE", "/opt/cache")
	if got := BinaryPath(); got != "/opt/cache/bin/minio" {
		t.Errorf("BinaryPath() with AKMINIO_CACHE = %s", got)
	}
	t.Setenv("AKMINIO_CACHE", "")
	t.Setenv("XDG_CACHE_HOME", "/xdg")
	if got := BinaryPath(); got != "/xdg/akminio/bin/minio" {
		t.Errorf("BinaryPath() with XDG_CACHE_HOME = %s", got)
	}
	t.Setenv(BinaryEnv, "/somewhere/minio")
	if got := BinaryPath(); got != "/somewhere/minio" {
		t.Errorf("BinaryPath() with %s = %s", BinaryEnv, got)
	}
}

// fatalTB records the first Fatal and stops the goroutine, as testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (f *fatalTB) Fatal(args ...any) { f.Fatalf("Fatal") }

func TestMissingBinaryFailsWithHowToBuild(t *testing.T) {
	t.Setenv(BinaryEnv, filepath.Join(t.TempDir(), "no-minio"))
	tb := &fatalTB{TB: t}
	var wg sync.WaitGroup
	wg.Go(func() { Start(tb) })
	wg.Wait()
	if !strings.Contains(tb.msg, "run `make minio`") {
		t.Fatalf("Start without a binary: message %q does not say to run make minio", tb.msg)
	}

	_, err := Launch(context.Background(), os.Getenv(BinaryEnv), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "make minio") {
		t.Fatalf("Launch without a binary: err = %v, want a hint to run make minio", err)
	}
}

func TestMetricValue(t *testing.T) {
	body := []byte("# HELP minio_cluster_iam_sync_successes x\n" +
		"# TYPE minio_cluster_iam_sync_successes counter\n" +
		"minio_cluster_iam_sync_successes_total 9\n" +
		`minio_cluster_iam_sync_successes{server="127.0.0.1:9000"} 2` + "\n")
	if got, err := metricValue(body, iamSyncMetric); err != nil || got != 2 {
		t.Errorf("metricValue = %v, %v; want 2", got, err)
	}
	if _, err := metricValue([]byte("other 1\n"), iamSyncMetric); err == nil {
		t.Error("metricValue of a missing metric: no error")
	}
}
