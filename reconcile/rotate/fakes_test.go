package rotate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/reconcile"
)

// fakeAuthentik is authentik's provider in memory. The on* fields, when set, run before the
// call and may fail it.
type fakeAuthentik struct {
	mu       sync.Mutex
	provider *reconcile.ObservedProvider // nil: missing
	onSet    func(ctx context.Context, s config.Secret) error
	onRead   func() error
	sets     int
}

func (f *fakeAuthentik) Observe(ctx context.Context, _ *reconcile.Desired) (reconcile.AuthentikState, error) {
	if err := f.hookRead(ctx); err != nil {
		return reconcile.AuthentikState{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var st reconcile.AuthentikState
	if f.provider != nil {
		p := *f.provider
		st.Provider = &p
	}
	return st, nil
}

func (f *fakeAuthentik) hookRead(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if f.onRead != nil {
		return f.onRead()
	}
	return nil
}

func (f *fakeAuthentik) ClientSecret(ctx context.Context, pk int32) (config.Secret, error) {
	if err := f.hookRead(ctx); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.provider == nil || f.provider.PK != pk {
		return "", fmt.Errorf("authentik: provider %d: HTTP 404", pk)
	}
	return f.provider.ClientSecret, nil
}

func (f *fakeAuthentik) SetClientSecret(ctx context.Context, pk int32, s config.Secret) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if f.onSet != nil {
		if err := f.onSet(ctx, s); err != nil {
			return err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.provider == nil || f.provider.PK != pk {
		return fmt.Errorf("authentik: provider %d: HTTP 404", pk)
	}
	f.sets++
	f.provider.ClientSecret = s
	return nil
}

func (f *fakeAuthentik) secret() config.Secret {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.provider == nil {
		return ""
	}
	return f.provider.ClientSecret
}

// fakeMinIO is MinIO's identity_openid target in memory: stored is what SetConfigKV wrote,
// loaded what the export shows (what the last start loaded).
type fakeMinIO struct {
	mu             sync.Mutex
	configured     bool
	clientID       string
	stored, loaded config.Secret
	env            map[string]bool // keys set by MinIO's environment
	onSet          func(ctx context.Context, s config.Secret) error
	onRestart      func(ctx context.Context) error // an error: the restart failed, nothing loaded
	onRead         func() error
	sets, restarts int
}

func (f *fakeMinIO) ReadOpenID(ctx context.Context, target string) (*reconcile.ObservedOpenIDTarget, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if f.onRead != nil {
		if err := f.onRead(); err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.configured {
		return nil, nil
	}
	return &reconcile.ObservedOpenIDTarget{OpenIDKeys: reconcile.OpenIDKeys{
		Enable: "on", ClientID: f.clientID, ClientSecret: f.loaded,
	}, EnvKeys: f.env}, nil
}

func (f *fakeMinIO) SetClientSecret(ctx context.Context, _ string, s config.Secret) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if f.onSet != nil {
		if err := f.onSet(ctx, s); err != nil {
			return false, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sets++
	f.stored = s
	return true, nil
}

func (f *fakeMinIO) Restart(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if f.onRestart != nil {
		if err := f.onRestart(ctx); err != nil {
			return err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.restarts++
	f.loaded = f.stored
	return nil
}

func (f *fakeMinIO) state() (stored, loaded config.Secret) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stored, f.loaded
}

// fixture is a consistent pair of sides, a state dir and Deps over them.
type fixture struct {
	t    *testing.T
	ak   *fakeAuthentik
	mc   *fakeMinIO
	deps Deps
	logs *bytes.Buffer
	old  config.Secret
	// seen collects every secret that went over the wire, for the leak check.
	seenMu sync.Mutex
	seen   map[config.Secret]bool
}

const oldSecret = config.Secret("OLDsecretOLDsecretOLDsecretOLDsecretOLDsecretOLDsecretOLDsecret0")

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{
		t:    t,
		old:  oldSecret,
		ak:   &fakeAuthentik{provider: &reconcile.ObservedProvider{PK: 7, Name: "MinIO", ClientID: "cid", ClientSecret: oldSecret, SigningKey: "kp-1"}},
		mc:   &fakeMinIO{configured: true, clientID: "cid", stored: oldSecret, loaded: oldSecret},
		logs: &bytes.Buffer{},
		seen: map[config.Secret]bool{oldSecret: true},
	}
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(f.logs), zap.DebugLevel)
	f.deps = Deps{
		Desired: &reconcile.Desired{
			Provider: reconcile.Provider{Name: "MinIO", SigningKey: "authentik Self-signed Certificate"},
			OpenID:   reconcile.OpenIDSettings{Target: "identity_openid"},
			Restart:  config.RestartAuto,
		},
		Mode: config.ModeRepair, StateDir: t.TempDir(),
		Authentik: f.ak, MinIO: f.mc, Log: zap.New(core),
		Redact:      func(s ...config.Secret) { f.see(s...) },
		ConfirmPoll: time.Millisecond,
	}
	t.Cleanup(f.checkNoLeak)
	return f
}

func (f *fixture) see(secrets ...config.Secret) {
	f.seenMu.Lock()
	defer f.seenMu.Unlock()
	for _, s := range secrets {
		f.seen[s] = true
	}
}

// checkNoLeak fails the test when a secret appears in the logs.
func (f *fixture) checkNoLeak() {
	f.see(f.ak.secret())
	s, l := f.mc.state()
	f.see(s, l)
	f.noSecretIn("logs", f.logs.String())
}

func (f *fixture) noSecretIn(what, text string) {
	f.t.Helper()
	f.seenMu.Lock()
	defer f.seenMu.Unlock()
	for s := range f.seen {
		if s.IsSet() && strings.Contains(text, s.Reveal()) {
			f.t.Errorf("%s contain a client secret:\n%s", what, text)
		}
	}
}

// checkResult checks an outcome and error for secrets.
func (f *fixture) checkResult(out Outcome, err error) {
	f.t.Helper()
	if err != nil {
		f.noSecretIn("the error", err.Error())
	}
	f.noSecretIn("the outcome", strings.Join(out.Actions, "\n")+fmt.Sprint(out))
}

// equal asserts both sides hold want and MinIO's stored config agrees with its export.
func (f *fixture) equal(want config.Secret) {
	f.t.Helper()
	stored, loaded := f.mc.state()
	if a := f.ak.secret(); a != want || stored != want || loaded != want {
		f.t.Fatalf("sides: authentik %s, MinIO stored %s loaded %s; want all %s",
			f.name(a), f.name(stored), f.name(loaded), f.name(want))
	}
}

func (f *fixture) name(s config.Secret) string {
	if s == f.old {
		return "old"
	}
	return "other(" + fmt.Sprint(len(s)) + " chars)"
}

// files lists state_dir.
func (f *fixture) files() []string {
	f.t.Helper()
	ents, err := os.ReadDir(f.deps.StateDir)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

func (f *fixture) state() reconcile.State {
	f.t.Helper()
	st, err := reconcile.LoadState(f.deps.StateDir)
	if err != nil {
		f.t.Fatal(err)
	}
	return st
}

// errCrash is the panic value of a simulated crash at a fault point.
var errCrash = errors.New("simulated crash")

// crashAt makes the fault point step panic, as a process killed there would stop.
func crashAt(step string) func(string) {
	return func(s string) {
		if s == step {
			panic(errCrash)
		}
	}
}

// runCrashing runs Run and reports whether it stopped at a simulated crash.
func runCrashing(d Deps) (crashed bool) {
	defer func() {
		if r := recover(); r != nil {
			if r != errCrash {
				panic(r)
			}
			crashed = true
		}
	}()
	_, _ = Run(context.Background(), d)
	return false
}
