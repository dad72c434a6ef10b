// Package e2eenv is the shared end-to-end environment: a real MinIO server
// (internal/miniotest) and the authentik simulator (internal/aksim) on loopback, seeded
// with demo users and groups, and an akminio config that points at both.
//
// Setup works without a *testing.T, for the `make demo` program; package
// internal/e2eenv/e2eenvtest wraps it for tests (Start), and its Binary and Akminio run
// the real akminio binary against the environment.
//
// Demo users: "alice" in "Minio admins", "bob" in "Minio users", "carol" in no group,
// "dave" in "Minio interns", a child group of "Minio users".
package e2eenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/minio/minio-go/v7"

	"github.com/akminio/akminio/internal/aksim"
	"github.com/akminio/akminio/internal/miniotest"
)

// Names the environment seeds and the default config uses.
const (
	AppSlug        = "minio"
	ProviderName   = "MinIO"
	RedirectURI    = "https://minio.example/oauth_callback"
	MappingName    = "OIDC-Scope-minio"
	MappingScope   = "minio"
	Claim          = "policy"
	GroupAdmins    = "Minio admins"
	GroupUsers     = "Minio users"
	GroupInterns   = "Minio interns" // child of GroupUsers
	DemoBucket     = "demo"
	CustomPolicy   = "my-custom-policy"
	CustomBucket   = "shared" // the bucket CustomPolicy grants read+write on
	SigningKeyName = aksim.SelfSignedName
)

// Users are the demo users, in order.
var Users = []string{"alice", "bob", "carol", "dave"}

// Options says where and how to build the environment.
type Options struct {
	// Dir is the working folder: config.yaml, secrets/, state/, minio/. Required.
	Dir string
	// MinIOBin is the MinIO server binary; "" means miniotest.BinaryPath().
	MinIOBin string
	// Logf receives what the simulator logs (what authentik would log); nil discards it.
	Logf func(string, ...any)
	// OnViolation receives responses of the simulator that break authentik's OpenAPI
	// contract; nil passes them to Logf. Tests fail on them (Start does).
	OnViolation func(error)
	// Cluster, when set, runs MinIO as a distributed cluster of Cluster.Nodes nodes with
	// Cluster.Drives drives each (miniotest.LaunchCluster) instead of one server.
	Cluster *ClusterSize
	// MinIOEnv adds environment variables to every MinIO server (miniotest.WithEnv).
	MinIOEnv []string
}

// ClusterSize is the shape of a distributed MinIO.
type ClusterSize struct{ Nodes, Drives int }

// Env is a running environment. Its fields are read-only.
type Env struct {
	// MinIO is the server, or the cluster's first node (Cluster holds them all).
	MinIO   *miniotest.Process
	Cluster *miniotest.Cluster // nil unless Options.Cluster
	AK      *aksim.Server
	// Dir is the working folder; ConfigPath is Dir/config.yaml, StateDir Dir/state.
	Dir, ConfigPath, StateDir string
	// Bucket is a bucket created for login probes ("demo").
	Bucket string

	listen string // http.listen of the config: a free loopback port
}

// Setup starts the simulator and MinIO, seeds the demo users and groups, creates the
// probe bucket and writes DefaultConfig to ConfigPath. On failure it stops what it
// started. ctx bounds the start-up only.
func Setup(ctx context.Context, o Options) (*Env, error) {
	if o.Dir == "" {
		return nil, errors.New("e2eenv: Options.Dir is required")
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("e2eenv: dir %q: %w", o.Dir, err)
	}
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	onViolation := o.OnViolation
	if onViolation == nil {
		onViolation = func(err error) { logf("authentik simulator contract violation: %v", err) }
	}
	e := &Env{
		Dir:        dir,
		ConfigPath: filepath.Join(dir, "config.yaml"),
		StateDir:   filepath.Join(dir, "state"),
		Bucket:     DemoBucket,
	}
	for _, sub := range []string{e.StateDir, filepath.Join(dir, "secrets"), filepath.Join(dir, "minio")} {
		if err := os.MkdirAll(sub, 0o700); err != nil {
			return nil, fmt.Errorf("e2eenv: create %s: %w", sub, err)
		}
	}
	if e.listen, err = freeAddr(); err != nil {
		return nil, err
	}
	e.AK = aksim.New(aksim.Options{Logf: logf, OnViolation: onViolation})
	if err := e.AK.Start(""); err != nil {
		return nil, fmt.Errorf("e2eenv: start the authentik simulator: %w", err)
	}
	if err := e.start(ctx, o); err != nil {
		_ = e.Close()
		return nil, err
	}
	return e, nil
}

// start seeds the simulator, launches MinIO and writes the config.
func (e *Env) start(ctx context.Context, o Options) error {
	if err := seedDemo(e.AK); err != nil {
		return err
	}
	bin := o.MinIOBin
	if bin == "" {
		bin = miniotest.BinaryPath()
	}
	var p *miniotest.Process
	opts := []miniotest.Option{miniotest.WithEnv(o.MinIOEnv...)}
	if o.Cluster != nil {
		c, err := miniotest.LaunchCluster(ctx, bin, filepath.Join(e.Dir, "minio"), o.Cluster.Nodes, o.Cluster.Drives, opts...)
		if err != nil {
			return fmt.Errorf("e2eenv: %w", err)
		}
		e.Cluster, p = c, c.Nodes[0]
	} else {
		var err error
		if p, err = miniotest.Launch(ctx, bin, filepath.Join(e.Dir, "minio"), opts...); err != nil {
			return fmt.Errorf("e2eenv: %w", err)
		}
	}
	e.MinIO = p
	s3, err := p.S3Client()
	if err != nil {
		return fmt.Errorf("e2eenv: %w", err)
	}
	for _, b := range []string{e.Bucket, CustomBucket} {
		if err := s3.MakeBucket(ctx, b, minio.MakeBucketOptions{}); err != nil {
			return fmt.Errorf("e2eenv: create bucket %q: %w", b, err)
		}
	}
	return e.WriteConfig(e.DefaultConfig())
}

// seedDemo adds the demo groups and users.
func seedDemo(ak *aksim.Server) error {
	steps := []func() error{
		func() error { _, err := ak.AddGroup(GroupAdmins); return err },
		func() error { _, err := ak.AddGroup(GroupUsers); return err },
		func() error { _, err := ak.AddGroup(GroupInterns, GroupUsers); return err },
	}
	for _, u := range Users {
		steps = append(steps, func() error { _, err := ak.AddUser(u, u+"@example.com"); return err })
	}
	member := map[string]string{"alice": GroupAdmins, "bob": GroupUsers, "dave": GroupInterns}
	for _, u := range Users {
		if g, ok := member[u]; ok {
			steps = append(steps, func() error { return ak.AddUserToGroup(u, g) })
		}
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return fmt.Errorf("e2eenv: seed demo users: %w", err)
		}
	}
	return nil
}

// Close stops MinIO and the simulator. Closing twice is harmless.
func (e *Env) Close() error {
	var errs []error
	switch {
	case e.Cluster != nil:
		errs = append(errs, e.Cluster.Stop())
	case e.MinIO != nil:
		errs = append(errs, e.MinIO.Stop())
	}
	if e.AK != nil {
		errs = append(errs, e.AK.Close())
	}
	return errors.Join(errs...)
}

// Login logs username in the way MinIO users do: an ID token minted by the simulator for
// the "minio" application (claims from its provider's scope mappings), traded for
// temporary credentials at MinIO's STS (AssumeRoleWithWebIdentity), then probed on
// e.Bucket. An STS refusal is an error carrying MinIO's message.
func (e *Env) Login(ctx context.Context, username string) (miniotest.Access, error) {
	tok, err := e.AK.MintIDToken(ctx, "", AppSlug, username)
	if err != nil {
		return miniotest.Access{}, fmt.Errorf("e2eenv: login %s: mint ID token: %w", username, err)
	}
	creds, err := miniotest.AssumeRoleWithWebIdentity(ctx, e.MinIO.Endpoint, tok, 0)
	if err != nil {
		return miniotest.Access{}, fmt.Errorf("e2eenv: login %s: %w", username, err)
	}
	a, err := miniotest.Probe(ctx, e.MinIO.Endpoint, creds, e.Bucket)
	if err != nil {
		return miniotest.Access{}, fmt.Errorf("e2eenv: login %s: %w", username, err)
	}
	return a, nil
}

// freeAddr returns a loopback host:port that was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("e2eenv: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}
