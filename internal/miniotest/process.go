// Package miniotest runs a real MinIO server for tests and demos.
//
// Launch starts the server without a *testing.T (for the demo program); Start wraps it
// for tests, failing the test when the binary is missing (build it with `make minio`).
// A Process listens on loopback ports of its own, with root credentials of its own and
// a data directory the caller chooses. It can be restarted from the outside (Restart:
// stop the process, start it again on the same port and data) or in place by MinIO
// itself (ServiceRestartV2 re-executes the process with the same PID; see Starts and
// WaitRestarted).
package miniotest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Defaults for Launch; override them with options.
const (
	DefaultStartTimeout = 60 * time.Second
	DefaultStopTimeout  = 10 * time.Second
)

// Option changes how Launch starts the server.
type Option func(*options)

type options struct {
	env          []string
	accessKey    string
	secretKey    string
	startTimeout time.Duration
}

// WithEnv adds environment variables ("KEY=value") to the server's environment, for
// example WithEnv("MINIO_IDENTITY_OPENID_CLAIM_NAME=groups") to test keys set by the
// environment. Later values win over earlier ones and over the defaults.
func WithEnv(kv ...string) Option {
	return func(o *options) { o.env = append(o.env, kv...) }
}

// WithRootCredentials fixes the root user and password instead of random ones.
func WithRootCredentials(accessKey, secretKey string) Option {
	return func(o *options) { o.accessKey, o.secretKey = accessKey, secretKey }
}

// WithStartTimeout bounds how long Launch and Restart wait for the server to be ready.
func WithStartTimeout(d time.Duration) Option {
	return func(o *options) { o.startTimeout = d }
}

// Process is one running MinIO server. Its fields are read-only.
type Process struct {
	Endpoint    string // "http://127.0.0.1:<port>"
	Host        string // "127.0.0.1:<port>", what madmin and minio-go take
	ConsoleHost string // "127.0.0.1:<port>" of the web console
	AccessKey   string // root user
	SecretKey   string // root password (a random test value; never a real secret)
	DataDir     string // the server's single drive
	LogPath     string // the server's stdout and stderr, across restarts

	bin  string
	env  []string
	opts options
	// node is set for a node of a Cluster: how its command line differs from a single
	// server's.
	node *nodeSpec

	mu      sync.Mutex
	cmd     *exec.Cmd
	logFile *os.File
	exited  chan struct{} // closed when cmd has exited
	waitErr error         // cmd.Wait's result, valid once exited is closed
}

// Launch starts the MinIO binary bin with its data and log under dir, and waits until
// it is ready (WaitReady). The ports are picked free on 127.0.0.1; if another process
// takes one before MinIO binds it, Launch tries again with new ports. ctx bounds the
// wait only: the server runs until Stop.
func Launch(ctx context.Context, bin, dir string, opts ...Option) (*Process, error) {
	o := options{startTimeout: DefaultStartTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if o.accessKey == "" {
		o.accessKey = "root-" + randomHex(6)
		o.secretKey = randomHex(20)
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("miniotest: minio binary: %w (build it with `make minio`)", err)
	}
	p := &Process{
		AccessKey: o.accessKey,
		SecretKey: o.secretKey,
		DataDir:   filepath.Join(dir, "data"),
		LogPath:   filepath.Join(dir, "minio.log"),
		bin:       bin,
		opts:      o,
	}
	p.env = serverEnv(os.Environ(), o)
	const attempts = 3
	var err error
	for range attempts {
		if err = p.pickPorts(); err != nil {
			return nil, err
		}
		if err = p.startAndWait(ctx); err == nil || !p.portTaken() {
			return p, err
		}
	}
	return nil, fmt.Errorf("miniotest: start minio: %d attempts lost a port race: %w", attempts, err)
}

// serverEnv is the environment without the caller's MINIO_* variables (they would
// change the server under test), plus the root credentials and the options' variables.
func serverEnv(base []string, o options) []string {
	env := make([]string, 0, len(base)+len(o.env)+4)
	for _, kv := range base {
		if !strings.HasPrefix(kv, "MINIO_") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"MINIO_ROOT_USER="+o.accessKey,
		"MINIO_ROOT_PASSWORD="+o.secretKey,
		"MINIO_UPDATE=off",
	)
	return append(env, o.env...)
}

func (p *Process) pickPorts() error {
	api, err := freePort()
	if err != nil {
		return err
	}
	console, err := freePort()
	if err != nil {
		return err
	}
	p.Host = net.JoinHostPort("127.0.0.1", strconv.Itoa(api))
	p.ConsoleHost = net.JoinHostPort("127.0.0.1", strconv.Itoa(console))
	p.Endpoint = "http://" + p.Host
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("miniotest: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// portTaken reports whether the server's log says a port was already in use.
func (p *Process) portTaken() bool {
	return strings.Contains(p.LogTail(20), "address already in use")
}

// startAndWait starts the process and waits until it is ready; on failure the
// process is stopped and the error carries the log's tail.
func (p *Process) startAndWait(ctx context.Context) error {
	if err := p.start(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, p.opts.startTimeout)
	defer cancel()
	if err := p.WaitReady(ctx); err != nil {
		_ = p.Stop()
		return fmt.Errorf("%w\nlast lines of %s:\n%s", err, p.LogPath, p.LogTail(30))
	}
	return nil
}

func (p *Process) start() error {
	if err := os.MkdirAll(p.DataDir, 0o700); err != nil {
		return fmt.Errorf("miniotest: create data dir: %w", err)
	}
	logFile, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("miniotest: open server log: %w", err)
	}
	var cmd *exec.Cmd
	if p.node != nil {
		cmd, err = p.node.command(p)
		if err != nil {
			logFile.Close()
			return err
		}
	} else {
		cmd = exec.Command(p.bin, "server", p.DataDir,
			"--address", p.Host, "--console-address", p.ConsoleHost)
		cmd.SysProcAttr = sysProcAttr()
	}
	cmd.Env = p.env
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("miniotest: start %s: %w", p.bin, err)
	}
	exited := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.logFile, p.exited = cmd, logFile, exited
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		close(exited)
	}()
	return nil
}

// Stop ends the server: SIGTERM, then SIGKILL after DefaultStopTimeout. Stopping a
// stopped server does nothing.
func (p *Process) Stop() error {
	p.mu.Lock()
	cmd, exited, logFile := p.cmd, p.exited, p.logFile
	p.cmd, p.logFile = nil, nil
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	defer logFile.Close()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		return nil
	case <-time.After(DefaultStopTimeout):
	}
	if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("miniotest: kill minio (pid %d): %w", cmd.Process.Pid, err)
	}
	<-exited
	return nil
}

// Restart stops the server and starts it again on the same ports, data directory and
// credentials, and waits until it is ready, IAM included.
func (p *Process) Restart(ctx context.Context) error {
	if err := p.Stop(); err != nil {
		return err
	}
	return p.startAndWait(ctx)
}

// PID is the server's process id (kept across in-place restarts), 0 when stopped.
func (p *Process) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// exitErr returns a non-nil error once the process has exited.
func (p *Process) exitErr() error {
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	if exited == nil {
		return errors.New("miniotest: minio was never started")
	}
	select {
	case <-exited:
		p.mu.Lock()
		defer p.mu.Unlock()
		return fmt.Errorf("miniotest: minio exited: %v", p.waitErr)
	default:
		return nil
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}
