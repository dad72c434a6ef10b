package miniotest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/minio/madmin-go/v3"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// startBanner is the first line MinIO prints each time it starts, in-place restarts
// included (the re-executed process inherits the log file).
const startBanner = "MinIO Object Storage Server"

// iamSyncMetric counts the IAM loads finished since the process (re)started. The IAM
// subsystem accepts requests before its first load ends; STS and policy lookups made
// then fail ("IAM sub-system is being initialized") or see no policies, so readiness
// waits for this counter to be at least 1.
const iamSyncMetric = "minio_cluster_iam_sync_successes"

const pollInterval = 100 * time.Millisecond

// AdminClient returns a madmin client with the root credentials.
func (p *Process) AdminClient() (*madmin.AdminClient, error) {
	adm, err := madmin.NewWithOptions(p.Host, &madmin.Options{
		Creds: credentials.NewStaticV4(p.AccessKey, p.SecretKey, ""),
	})
	if err != nil {
		return nil, fmt.Errorf("miniotest: admin client for %s: %w", p.Host, err)
	}
	return adm, nil
}

// S3Client returns a minio-go client with the root credentials.
func (p *Process) S3Client() (*minio.Client, error) {
	c, err := minio.New(p.Host, &minio.Options{
		Creds: credentials.NewStaticV4(p.AccessKey, p.SecretKey, ""),
	})
	if err != nil {
		return nil, fmt.Errorf("miniotest: s3 client for %s: %w", p.Host, err)
	}
	return c, nil
}

// WaitReady waits until the admin API answers (ServerInfo) and the IAM subsystem has
// loaded its data, so that policies, users and the OpenID configuration are in
// effect. It fails at once if the process has exited.
//
// Right after an in-place restart (ServiceRestartV2) the old process may still answer
// for a moment: use WaitRestarted there.
func (p *Process) WaitReady(ctx context.Context) error {
	adm, err := p.AdminClient()
	if err != nil {
		return err
	}
	var last error
	for {
		if err := p.exitErr(); err != nil {
			return err
		}
		last = p.ready(ctx, adm)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("miniotest: minio at %s not ready: %w (last: %v)", p.Host, ctx.Err(), last)
		case <-time.After(pollInterval):
		}
	}
}

func (p *Process) ready(ctx context.Context, adm *madmin.AdminClient) error {
	callCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := adm.ServerInfo(callCtx); err != nil {
		return fmt.Errorf("admin ServerInfo: %w", err)
	}
	n, err := p.iamSyncs(callCtx)
	if err != nil {
		return err
	}
	if n < 1 {
		return errors.New("IAM subsystem not loaded yet")
	}
	return nil
}

// iamSyncs reads iamSyncMetric from the metrics v3 endpoint, authenticated by the
// bearer token MinIO expects from Prometheus (HS512, signed with the root password).
func (p *Process) iamSyncs(ctx context.Context) (float64, error) {
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.RegisteredClaims{
		Issuer:    "prometheus",
		Subject:   p.AccessKey,
		ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Minute)),
	}).SignedString([]byte(p.SecretKey))
	if err != nil {
		return 0, fmt.Errorf("sign metrics token: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.Endpoint+"/minio/metrics/v3/cluster/iam", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("read IAM metrics: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, fmt.Errorf("read IAM metrics: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("read IAM metrics: %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	return metricValue(body, iamSyncMetric)
}

// metricValue finds one unlabelled sample in a Prometheus text exposition.
func metricValue(body []byte, name string) (float64, error) {
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		fields := strings.Fields(rest[strings.LastIndex(rest, "}")+1:])
		if len(fields) == 0 {
			break
		}
		return strconv.ParseFloat(fields[0], 64)
	}
	return 0, fmt.Errorf("metric %s not in the IAM metrics", name)
}

// Starts counts how many times the server has started in this Process: 1 after
// Launch, one more for each Restart and each in-place restart.
func (p *Process) Starts() int {
	data, err := os.ReadFile(p.LogPath)
	if err != nil {
		return 0
	}
	return bytes.Count(data, []byte(startBanner))
}

// WaitRestarted waits for an in-place restart (ServiceRestartV2, done by the test or
// by the daemon under test) that began after Starts() returned before: it waits until
// the re-executed server has printed its start banner, then until it is ready.
func (p *Process) WaitRestarted(ctx context.Context, before int) error {
	for p.Starts() <= before {
		if err := p.exitErr(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("miniotest: minio at %s did not restart: %w", p.Host, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
	return p.WaitReady(ctx)
}

// RestartInPlace asks the server to restart itself (madmin ServiceRestartV2, the same
// PID re-executes) and waits until the new instance is ready, for at most the start
// timeout.
func (p *Process) RestartInPlace(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.opts.startTimeout)
	defer cancel()
	adm, err := p.AdminClient()
	if err != nil {
		return err
	}
	before := p.Starts()
	if err := adm.ServiceRestartV2(ctx); err != nil {
		return fmt.Errorf("miniotest: ServiceRestartV2: %w", err)
	}
	return p.WaitRestarted(ctx, before)
}

// LogTail returns the last n lines of the server log.
func (p *Process) LogTail(n int) string {
	data, err := os.ReadFile(p.LogPath)
	if err != nil {
		return fmt.Sprintf("(no server log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
