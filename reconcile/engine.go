package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/internal/httplimit"
	"github.com/akminio/akminio/internal/statedir"
)

// Engine observes both systems, plans, applies and verifies. RunOnce-style methods are the
// unit of work; the CLI and the daemon only trigger them. An Engine is not safe for
// concurrent runs: callers serialise them (the daemon's scheduler does, and a lock in
// state_dir keeps two processes apart).
type Engine struct {
	Desired   *Desired
	Mode      config.Mode
	Claim     string // the claim name verification reads
	Users     []string
	StateDir  string
	Authentik AuthentikAdapter
	MinIO     MinIOAdapter
	// HTTP fetches MinIO's OpenID discovery URL during verification.
	HTTP *http.Client
	Log  *zap.Logger
	Now  func() time.Time
	// Timeout bounds each DryRun and Apply as a whole; 0: only the caller's context does.
	Timeout time.Duration
	// Gate is asked before every write step of Apply; nil: every write is allowed. A gate
	// that also implements WriteHolder can hold a whole run back (see WriteHolder).
	Gate WriteGate
	// AfterWrite, when set, is called right after each write step of Apply succeeded, before
	// the state it leaves is saved: a fault point for the crash tests (binaries built with
	// -tags akminio_testhooks kill themselves there). nil in every real run.
	AfterWrite func(step string)
}

// NewEngine wires an engine from a validated config and the two adapters.
func NewEngine(cfg *config.Config, ak AuthentikAdapter, mc MinIOAdapter, log *zap.Logger) (*Engine, error) {
	d, err := NewDesired(cfg)
	if err != nil {
		return nil, err
	}
	// The discovery URL is authentik's: reach it with authentik's TLS settings (ca_file).
	tlsCfg, err := cfg.Authentik.TLSConfig()
	if err != nil {
		return nil, fmt.Errorf("authentik: ca_file: %w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	tr.MaxResponseHeaderBytes = httplimit.MaxResponseHeaderBytes
	return &Engine{
		Desired: d, Mode: cfg.Mode, Claim: cfg.MinIO.OpenID.ClaimName, Users: cfg.Verify.Users,
		StateDir: cfg.StateDir, Authentik: ak, MinIO: mc,
		HTTP: &http.Client{Transport: httplimit.Transport(tr, maxDiscoveryBytes), Timeout: cfg.Authentik.Timeout},
		Log:  log, Now: time.Now, Timeout: DefaultRunTimeout,
	}, nil
}

// Result is what one run saw and did.
type Result struct {
	// Plan is the plan computed from the first, complete observation.
	Plan Plan
	// Applied are the changes written, in order.
	Applied []Change
	// Remaining is the drift left at the end of the run: the plan from the final observation.
	Remaining Plan
	// Verification are the verification failures (kind verification) of the end of the run:
	// drift too, but no applier removes them directly, so they are not in any plan.
	Verification []Change
	// Restarted says MinIO was restarted in this run (the restart step is not in Applied).
	Restarted bool
	// Held, when not "", says why the run applied nothing at all although it may have found
	// drift: "mode: report", or "not allowed to write: <reason>" from the write gate.
	Held string
}

// InSync reports whether the run ended with no drift at all and verification passed.
func (r *Result) InSync() bool { return r.Remaining.Drift() == 0 && len(r.Verification) == 0 }

// Report is the drift the run leaves, as plan and apply print it and the daemon reports it:
// the remaining plan's changes followed by the verification failures.
func (r *Result) Report() Plan {
	p := r.Remaining
	if len(r.Verification) > 0 {
		p.Changes = append(slices.Clone(p.Changes), r.Verification...)
	}
	return p
}

// RunLock is the lock file in state_dir that keeps two applying processes apart.
const RunLock = "run.lock"

// ErrObserve marks a failed or partial observation: nothing was written.
var ErrObserve = errors.New("could not observe")

// ObserveError is a failed or partial observation; nothing was written after it. Failed
// holds the error of each part that failed: SystemAuthentik, SystemMinIO, or PartState
// (akminio's own state file). A system absent from Failed answered completely.
type ObserveError struct {
	Failed map[System]error
}

// PartState names akminio's own state file among the parts of an observation.
const PartState System = "state"

// Error lists the failures, authentik first; the adapters' errors name their system.
func (e *ObserveError) Error() string {
	var msgs []string
	for _, part := range []System{SystemAuthentik, SystemMinIO, PartState, PartFeeds} {
		if err := e.Failed[part]; err != nil {
			msgs = append(msgs, err.Error())
		}
	}
	return ErrObserve.Error() + ": " + strings.Join(msgs, "; ")
}

// Transient reports whether every part that failed failed transiently (see IsTransient).
func (e *ObserveError) Transient() bool {
	for _, err := range e.Failed {
		if !IsTransient(err) {
			return false
		}
	}
	return len(e.Failed) > 0
}

// Is makes errors.Is(err, ErrObserve) true.
func (e *ObserveError) Is(target error) bool { return target == ErrObserve }

// Unwrap returns the parts' errors.
func (e *ObserveError) Unwrap() []error {
	out := make([]error, 0, len(e.Failed))
	for _, err := range e.Failed {
		out = append(out, err)
	}
	return out
}

// Observe reads both systems concurrently, and akminio's state; it fails whole, with an
// *ObserveError naming every part that failed, if any part fails.
func (e *Engine) Observe(ctx context.Context) (*Observed, error) {
	obs := &Observed{}
	var akErr, mcErr, stErr error
	var wg sync.WaitGroup
	wg.Go(func() { obs.Authentik, akErr = e.Authentik.Observe(ctx, e.Desired) })
	wg.Go(func() { obs.MinIO, mcErr = e.MinIO.Observe(ctx, e.Desired) })
	obs.State, stErr = LoadState(e.StateDir)
	wg.Wait()
	failed := map[System]error{}
	for part, err := range map[System]error{SystemAuthentik: akErr, SystemMinIO: mcErr, PartState: stErr} {
		if err != nil {
			failed[part] = err
		}
	}
	e.observeFeeds(ctx, obs, failed)
	if len(failed) > 0 {
		return nil, &ObserveError{Failed: failed}
	}
	return obs, nil
}

// DefaultRunTimeout bounds one Plan or Apply (observe, apply, a MinIO restart, verify) when
// NewEngine builds the engine. A MinIO restart waits for IAM, which waits for MinIO to reach
// authentik: without a bound, a run could wait forever for a MinIO that never gets ready.
const DefaultRunTimeout = 5 * time.Minute

// bound returns ctx limited by e.Timeout (none when it is 0).
func (e *Engine) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if e.Timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, e.Timeout)
}

// timedOut says, in err, that the run's own timeout ended it.
func (e *Engine) timedOut(ctx context.Context, err error) error {
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w (the run's timeout of %s ran out)", err, e.Timeout)
	}
	return err
}

// DryRun observes, plans and verifies: a run that applies nothing. It writes nothing, except clearing a "restart pending" record
// once MinIO has loaded a write (see settlePending), and only when no other run holds the
// run lock: that run owns state.json, and a save here could overwrite what it recorded.
func (e *Engine) DryRun(ctx context.Context) (*Result, error) {
	ctx, cancel := e.bound(ctx)
	defer cancel()
	obs, err := e.Observe(ctx)
	if err != nil {
		return nil, e.timedOut(ctx, err)
	}
	if e.settlePending(obs) {
		if lock, err := statedir.TryLock(e.StateDir, RunLock); err == nil {
			err = SaveState(e.StateDir, obs.State)
			lock.Unlock()
			if err != nil {
				return nil, err
			}
		}
	}
	p := ComputePlan(e.Desired, obs)
	res := &Result{Plan: p, Remaining: p}
	if e.shouldVerify(p) {
		res.Verification = e.verify(ctx, obs)
	}
	return res, nil
}

// Apply observes, plans, applies what mode allows in the safe order (MinIO policies,
// authentik, MinIO identity_openid, restart, prunes), observes again and verifies. When it
// fails after the plan, the Result it returns holds the plan, what was applied, and as
// Remaining the drift known to be left (see leftover).
func (e *Engine) Apply(ctx context.Context) (*Result, error) {
	ctx, cancel := e.bound(ctx)
	defer cancel()
	lock, err := statedir.TryLock(e.StateDir, RunLock)
	if err != nil {
		return nil, Transient(fmt.Errorf("another akminio apply is running: %w", err))
	}
	defer lock.Unlock()
	obs, err := e.Observe(ctx)
	if err != nil {
		return nil, e.timedOut(ctx, err)
	}
	if err := e.settleAndSave(obs); err != nil {
		return nil, err
	}
	res := &Result{Plan: ComputePlan(e.Desired, obs)}
	if err := e.repair(ctx, obs, res); err != nil {
		res.Remaining = leftover(res)
		return res, e.timedOut(ctx, err)
	}
	if len(res.Applied) == 0 && !res.Restarted {
		res.Remaining = res.Plan
	} else {
		if obs, err = e.Observe(ctx); err != nil {
			res.Remaining = leftover(res)
			return res, e.timedOut(ctx, err)
		}
		if err := e.settleAndSave(obs); err != nil {
			res.Remaining = leftover(res)
			return res, err
		}
		res.Remaining = ComputePlan(e.Desired, obs)
	}
	if e.shouldVerify(res.Remaining) {
		res.Verification = e.verify(ctx, obs)
	}
	return res, nil
}

// repair is the one loop that applies changes. It filters the plan's steps (its changes
// and the MinIO restart, see Plan.Steps) through the apply policy, then applies each
// allowed step in order: MinIO policy writes, authentik, identity_openid, the restart (when
// a write of this run or an earlier pending one needs it), then the prunes. The write gate
// is asked before each step; the ownership registry and state.json are updated after each.
func (e *Engine) repair(ctx context.Context, obs *Observed, res *Result) error {
	policy := e.policy(ctx)
	steps := policy.Filter(res.Plan.Steps())
	if policy.NoWrite != "" || policy.Mode != config.ModeRepair {
		res.Held = policy.Held(Change{})
	}
	done := func(c Change) {
		res.Applied = append(res.Applied, c)
		e.Log.Info("applied", zap.String("system", string(c.System)), zap.String("action", string(c.Action)),
			zap.String("kind", string(c.Kind)), zap.String("name", c.Name), zap.Strings("fields", c.Fields))
		if e.AfterWrite != nil {
			e.AfterWrite(stepName(c))
		}
	}
	restart := res.Plan.RestartPending()
	for _, c := range steps {
		if c.Kind == KindRestart && !restart {
			continue // the write did not need one after all
		}
		if e.Gate != nil {
			if err := e.Gate.MayWrite(ctx, stepName(c)); err != nil {
				return Transient(fmt.Errorf("write gate refused %s: %w", stepName(c), err))
			}
		}
		switch {
		case c.Kind == KindRestart:
			if err := e.MinIO.Restart(ctx); err != nil {
				return fmt.Errorf("restart MinIO: %w", err)
			}
			res.Restarted = true
			e.Log.Info("restarted MinIO to load identity_openid")
			if e.AfterWrite != nil {
				e.AfterWrite(stepName(c))
			}
		case isFeedChange(c):
			if err := e.applyFeed(ctx, obs, c, done); err != nil {
				return err
			}
		case c.System == SystemAuthentik:
			w, err := e.Authentik.Apply(ctx, e.Desired, obs, []Change{c}, done)
			own(&obs.State.CreatedBindings, w)
			if err := e.save(obs, err); err != nil {
				return err
			}
		case c.Kind == KindOpenID:
			want := WantedOpenIDKeys(e.Desired, obs.Authentik.Provider)
			before := fingerprintOf(obs.MinIO.OpenID) // MinIO reads this back until it restarts
			w, err := e.MinIO.Apply(ctx, e.Desired, obs, []Change{c}, done)
			if err == nil && w.Restart {
				restart = true
				obs.State.RestartPending = &PendingRestart{Target: e.Desired.OpenID.Target, WrittenAt: e.Now().UTC(),
					Fingerprint: want.Fingerprint(), Before: before}
				e.Log.Warn("identity_openid written, MinIO restart pending", zap.String("target", e.Desired.OpenID.Target))
			}
			if err := e.save(obs, err); err != nil {
				return err
			}
		default:
			w, err := e.MinIO.Apply(ctx, e.Desired, obs, []Change{c}, done)
			own(&obs.State.CreatedPolicies, w)
			if err := e.save(obs, err); err != nil {
				return err
			}
		}
	}
	return nil
}

// policy is the apply policy of this run: the engine's mode and restart setting, and the
// write gate's hold, if it has one.
func (e *Engine) policy(ctx context.Context) ApplyPolicy {
	p := ApplyPolicy{Mode: e.Mode, Restart: e.Desired.Restart}
	if h, ok := e.Gate.(WriteHolder); ok {
		p.NoWrite = h.HoldWrites(ctx)
	}
	return p
}

// own records in the ownership registry what an applier call created and deleted.
func own(registry *[]string, w Written) {
	for _, id := range w.Created {
		if !slices.Contains(*registry, id) {
			*registry = append(*registry, id)
		}
	}
	*registry = slices.DeleteFunc(*registry, func(id string) bool { return slices.Contains(w.Deleted, id) })
}

// leftover is the drift a failed Apply leaves, as far as it knows without observing again:
// the plan's changes it did not apply, and an identity_openid change it wrote that MinIO
// has not loaded (no restart in this run), which is now pending.
func leftover(res *Result) Plan {
	p := Plan{Unmanaged: res.Plan.Unmanaged}
	for _, c := range res.Plan.Changes {
		applied := slices.ContainsFunc(res.Applied, func(a Change) bool {
			return a.System == c.System && a.Kind == c.Kind && a.Action == c.Action && a.Name == c.Name && a.ID == c.ID
		})
		switch {
		case !applied:
			p.Changes = append(p.Changes, c)
		case c.Kind == KindOpenID && !res.Restarted:
			c.Pending = true
			p.Changes = append(p.Changes, c)
		}
	}
	return p
}

// shouldVerify says whether a run ending with plan p checks the result (spec section 5). In
// repair mode only a run that ends in sync does: remaining field drift is reported already,
// and verification would repeat it. In report mode nothing is repaired, so every run
// verifies: the canary users' claims show what the drift does to real users.
func (e *Engine) shouldVerify(p Plan) bool {
	return p.Drift() == 0 || e.Mode == config.ModeReport
}

// save writes obs.State to state_dir, joining any error with stepErr.
func (e *Engine) save(obs *Observed, stepErr error) error {
	return errors.Join(stepErr, SaveState(e.StateDir, obs.State))
}

// settlePending clears the "restart pending" record, in obs only, once MinIO has loaded
// the write: it reads back the values akminio wants, or, when the record knows what MinIO
// read back at the time of the write, anything other than that (MinIO restarted, and
// loaded what someone else wrote since: ordinary drift, repaired by a new write). It
// reports whether it cleared the record; the caller saves the state.
func (e *Engine) settlePending(obs *Observed) bool {
	rp := obs.State.RestartPending
	if rp == nil {
		return false
	}
	now := fingerprintOf(obs.MinIO.OpenID)
	loaded := obs.MinIO.OpenID != nil && now == WantedOpenIDKeys(e.Desired, obs.Authentik.Provider).Fingerprint()
	if !loaded && (rp.Before == "" || now == rp.Before) {
		return false
	}
	obs.State.RestartPending = nil
	return true
}

// settleAndSave settles the "restart pending" record and saves the state if it changed;
// for callers that hold the run lock.
func (e *Engine) settleAndSave(obs *Observed) error {
	if !e.settlePending(obs) {
		return nil
	}
	return SaveState(e.StateDir, obs.State)
}

// verify checks the result, not only the fields (spec section 5): canary users' claims and
// MinIO's OpenID discovery URL. Each failure is a change of kind verification.
func (e *Engine) verify(ctx context.Context, obs *Observed) []Change {
	var out []Change
	fail := func(system System, name string, problems ...string) {
		out = append(out, Change{System: system, Action: ActionVerify, Kind: KindVerification, Name: name, Fields: problems})
	}
	if err := e.checkDiscovery(ctx); err != nil {
		fail(SystemMinIO, "discovery", err.Error())
	}
	if obs.Authentik.Provider == nil {
		return out
	}
	for _, user := range e.Users {
		u, err := e.Authentik.PreviewUser(ctx, obs.Authentik.Provider.PK, user)
		if err != nil {
			fail(SystemAuthentik, user, err.Error())
			continue
		}
		if problems := VerifyUser(e.Desired, e.Claim, u, obs.MinIO.Policies); len(problems) > 0 {
			fail(SystemAuthentik, user, problems...)
		}
	}
	return out
}

// maxDiscoveryBytes caps the discovery document (authentik's is ~2 KiB).
const maxDiscoveryBytes = 1 << 20

// checkDiscovery fetches the OpenID discovery document MinIO is configured with, from where
// akminio runs, and checks that it names an issuer and a JWKS.
func (e *Engine) checkDiscovery(ctx context.Context) error {
	url := e.Desired.OpenID.ConfigURL
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("discovery %s: %w", url, err)
	}
	resp, err := e.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("discovery %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("discovery %s: HTTP %d", url, resp.StatusCode)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return fmt.Errorf("discovery %s: %w", url, err)
	}
	if doc.Issuer == "" || doc.JWKSURI == "" {
		return fmt.Errorf("discovery %s: no issuer or jwks_uri", url)
	}
	return nil
}
