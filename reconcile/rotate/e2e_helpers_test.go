package rotate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/internal/e2eenv"
	"github.com/akminio/akminio/internal/e2eenv/e2eenvtest"
	"github.com/akminio/akminio/reconcile"
	"github.com/akminio/akminio/reconcile/authentik"
	"github.com/akminio/akminio/reconcile/minio"
	"github.com/akminio/akminio/reconcile/rotate"
)

// e2e is a real MinIO and the authentik simulator (e2eenv), with adapters of its own to look
// at both sides; everything akminio printed goes to the environment's leak scan.
type e2e struct {
	t       *testing.T
	env     *e2eenv.Env
	desired *reconcile.Desired
	ak      *authentik.Adapter
	mc      *minio.Adapter
	scan    *e2eenvtest.LeakScan
}

func startE2E(t *testing.T) *e2e {
	t.Helper()
	if testing.Short() {
		t.Skip("end to end with a real MinIO: not in -short mode")
	}
	env := e2eenvtest.Start(t)
	x := &e2e{t: t, env: env, scan: e2eenvtest.Scan(env)}
	x.reload()
	// Registered after Start's cleanups, so it runs before the scan: MinIO's log is scanned
	// for the client secrets too (MinIO holds them in identity_openid).
	t.Cleanup(func() {
		if b, err := os.ReadFile(env.MinIO.LogPath); err == nil {
			x.scan.Output("the MinIO log", string(b))
		}
	})
	return x
}

// reload reads the config file again and rebuilds the adapters.
func (x *e2e) reload() {
	x.t.Helper()
	cfg, _, err := config.Load(x.env.ConfigPath, nil)
	if err != nil {
		x.t.Fatal(err)
	}
	if x.desired, err = reconcile.NewDesired(cfg); err != nil {
		x.t.Fatal(err)
	}
	if x.ak, err = authentik.New(cfg.Authentik); err != nil {
		x.t.Fatal(err)
	}
	if x.mc, err = minio.New(cfg.MinIO); err != nil {
		x.t.Fatal(err)
	}
}

// akminio runs the hook binary with args, --config and the extra environment.
func (x *e2e) akminio(extraEnv []string, args ...string) (stdout, stderr string, exit int) {
	x.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eenvtest.CommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e2eenvtest.BinaryWithTags(x.t, "akminio_testhooks"), append(args, "--config", x.env.ConfigPath)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AKMINIO_") && !strings.HasPrefix(kv, "CREDENTIALS_DIRECTORY=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, extraEnv...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		x.t.Fatalf("akminio %v did not finish in time\n%s\n%s", args, out.String(), errb.String())
	case errors.As(err, &ee):
		exit = ee.ExitCode()
	case err != nil:
		x.t.Fatal(err)
	}
	x.scan.Output("stdout of akminio "+strings.Join(args, " "), out.String())
	x.scan.Output("stderr of akminio "+strings.Join(args, " "), errb.String())
	x.t.Logf("$ %s akminio %s (exit %d)\n--- stdout:\n%s--- stderr:\n%s", strings.Join(extraEnv, " "), strings.Join(args, " "), exit, out.String(), errb.String())
	return out.String(), errb.String(), exit
}

// mustRun runs akminio and fails the test unless it exits with want.
func (x *e2e) mustRun(want int, args ...string) (stdout, stderr string) {
	x.t.Helper()
	stdout, stderr, exit := x.akminio(nil, args...)
	if exit != want {
		x.t.Fatalf("akminio %s: exit %d, want %d\n%s", strings.Join(args, " "), exit, want, stderr)
	}
	return stdout, stderr
}

// provider reads authentik's provider (pk, client_id, secret).
func (x *e2e) provider() *reconcile.ObservedProvider {
	x.t.Helper()
	st, err := x.ak.Observe(context.Background(), x.desired)
	if err != nil || st.Provider == nil {
		x.t.Fatalf("observe authentik: provider %v, %v", st.Provider, err)
	}
	x.scan.Secret("client secret", st.Provider.ClientSecret.Reveal())
	return st.Provider
}

// sides reads the client secret from both sides: authentik's provider and MinIO's export.
func (x *e2e) sides() (ak, mc config.Secret) {
	x.t.Helper()
	ak = x.provider().ClientSecret
	oid, err := x.mc.ReadOpenID(context.Background(), x.desired.OpenID.Target)
	if err != nil || oid == nil {
		x.t.Fatalf("read MinIO's identity_openid: %v, %v", oid, err)
	}
	x.scan.Secret("client secret in MinIO", oid.ClientSecret.Reveal())
	return ak, oid.ClientSecret
}

// equalSides fails unless both sides hold the same secret, and returns it.
func (x *e2e) equalSides() config.Secret {
	x.t.Helper()
	ak, mc := x.sides()
	if ak != mc {
		x.t.Fatalf("authentik and MinIO hold different client secrets")
	}
	return ak
}

// logins logs every demo user in and describes the access each got.
func (x *e2e) logins() map[string]string {
	x.t.Helper()
	out := map[string]string{}
	for _, u := range e2eenv.Users {
		a, err := x.env.Login(context.Background(), u)
		if err != nil {
			out[u] = "refused"
			continue
		}
		out[u] = fmt.Sprintf("read=%v write=%v", a.CanRead, a.CanWrite)
	}
	return out
}

// sameLogins fails unless the demo users get what they got before.
func (x *e2e) sameLogins(before map[string]string) {
	x.t.Helper()
	if after := x.logins(); !equalMaps(before, after) {
		x.t.Fatalf("logins changed: before %v, after %v", before, after)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// intent reads the rotation intent on disk (nil: none) and remembers its secrets.
func (x *e2e) intent() *rotate.Intent {
	x.t.Helper()
	in, err := rotate.LoadIntent(x.env.StateDir)
	if err != nil {
		x.t.Fatal(err)
	}
	if in != nil {
		x.scan.Secret("rotation's old client secret", in.Old.Reveal())
		x.scan.Secret("rotation's new client secret", in.New.Reveal())
	}
	return in
}

// stateFiles lists state_dir, sorted.
func (x *e2e) stateFiles() []string {
	x.t.Helper()
	ents, err := os.ReadDir(x.env.StateDir)
	if err != nil {
		x.t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// noStrayFiles fails unless state_dir holds only state.json and lock files.
func (x *e2e) noStrayFiles() {
	x.t.Helper()
	for _, n := range x.stateFiles() {
		if n != reconcile.StateFile && !strings.HasSuffix(n, ".lock") {
			x.t.Errorf("stray file in state_dir: %s (all: %v)", n, x.stateFiles())
		}
	}
}

// token asks the simulator's token endpoint for a client_credentials token and returns the
// HTTP status and OAuth error ("" on success).
func (x *e2e) token(clientID string, secret config.Secret) (int, string) {
	x.t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret.Reveal()}}
	resp, err := http.PostForm(x.env.AK.URL()+"/application/o/token/", form)
	if err != nil {
		x.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error       string `json:"error"`
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode == http.StatusOK && body.AccessToken == "" {
		return resp.StatusCode, "no access_token"
	}
	return resp.StatusCode, body.Error
}

// patchProvider PATCHes authentik's provider through its API, as an admin would.
func (x *e2e) patchProvider(pk int32, fields map[string]any) {
	x.t.Helper()
	b, _ := json.Marshal(fields)
	req, _ := http.NewRequest(http.MethodPatch, fmt.Sprintf("%s/api/v3/providers/oauth2/%d/", x.env.AK.URL(), pk), bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+x.env.AK.Token())
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		x.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		x.t.Fatalf("PATCH provider %v: HTTP %d", fields, resp.StatusCode)
	}
}

// rotatedAt reads secret_rotated_at from state.json.
func (x *e2e) rotatedAt() time.Time {
	x.t.Helper()
	st, err := reconcile.LoadState(x.env.StateDir)
	if err != nil {
		x.t.Fatal(err)
	}
	return st.SecretRotatedAt
}

// deps are rotation dependencies over the test's own adapters, for in-process runs.
func (x *e2e) deps() rotate.Deps {
	return rotate.Deps{
		Desired: x.desired, Mode: config.ModeRepair, StateDir: x.env.StateDir,
		Authentik: x.ak, MinIO: x.mc,
	}
}
