package lease

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Roles an instance has.
const (
	RoleLeader   = "leader"
	RoleFollower = "follower"
)

// Options of an Elector; Identity, Duration and RenewInterval are required.
type Options struct {
	Identity string
	// Duration is how long a lease lasts without renewal.
	Duration time.Duration
	// RenewInterval is how often the holder renews and a follower reads the lease.
	RenewInterval time.Duration
	// StepBudget is the lease time a write step needs left to start (MayWrite): the longest
	// a single write may take. 0: none.
	StepBudget time.Duration
	// Now is the clock (monotonic readings are used); nil: time.Now.
	Now func() time.Time
	// OnChange is called, from Run's goroutine, after every change of role.
	OnChange func(Status)
}

// Status is what an instance knows of the lease, for /status and metrics.
type Status struct {
	Role     string    `json:"role"`     // leader | follower
	Identity string    `json:"identity"` // this instance
	Holder   string    `json:"holder"`   // "" when nobody holds the lease (or it is unknown)
	Term     uint64    `json:"term"`
	Expires  time.Time `json:"expires,omitzero"` // the holder's clock
	Lease    string    `json:"lease"`            // bucket/key
	// Reason says why this instance does not write, when it does not.
	Reason string `json:"reason,omitempty"`
	// SecretRotatedAt is the last rotation recorded in the lease (zero: none).
	SecretRotatedAt time.Time `json:"secret_rotated_at,omitzero"`
}

// Elector takes part in the election over one lease: Run keeps it going; MayWrite,
// IsLeader, WhileLeader and Status tell the rest of the daemon where it stands.
//
// The holder's lease is valid until the start of its last successful write plus Duration,
// on its own monotonic clock; a follower takes over once the object it reads has not
// changed for Duration since it first read that version, on its own clock, so a follower
// never takes over before the holder's own view of its lease has ended, whatever the
// clocks of the hosts say.
type Elector struct {
	store Store
	opts  Options
	log   *zap.Logger

	mu         sync.Mutex
	leader     bool
	stepping   bool          // Release or StepDown called: no more writes
	etag       string        // ours while leader
	rec        Record        // the last record read or written
	validUntil time.Time     // while leader
	seenETag   string        // a follower's view: the version it watches
	seenAt     time.Time     // when it first read seenETag
	reason     string        // why not leader
	lost       chan struct{} // closed when the current leadership ends
	rotatedAt  time.Time     // NoteRotation's, carried in our writes
	noted      time.Time     // the store's rotation note, as last read (RotationNoter)
	kick       chan struct{} // NoteRotation asks Run for a write now
}

// New builds an Elector over store.
func New(store Store, opts Options, log *zap.Logger) (*Elector, error) {
	switch {
	case opts.Identity == "":
		return nil, errors.New("lease: no identity")
	case opts.Duration <= 0 || opts.RenewInterval <= 0 || opts.RenewInterval >= opts.Duration:
		return nil, fmt.Errorf("lease: the renew interval (%s) must be positive and shorter than the lease duration (%s)", opts.RenewInterval, opts.Duration)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Elector{store: store, opts: opts, log: log, reason: "the lease has not been read yet",
		kick: make(chan struct{}, 1)}, nil
}

// Run takes part in the election until ctx ends, then releases the lease if it holds it.
func (e *Elector) Run(ctx context.Context) {
	for {
		e.Tick(ctx)
		wait := e.opts.RenewInterval
		e.mu.Lock()
		if e.leader {
			wait = min(wait, e.validUntil.Sub(e.opts.Now()))
		}
		e.mu.Unlock()
		select {
		case <-ctx.Done():
			rctx, cancel := context.WithTimeout(context.Background(), e.opts.RenewInterval)
			if err := e.Release(rctx); err != nil {
				e.log.Warn("could not release the lease; it expires by itself", zap.Error(err))
			}
			cancel()
			return
		case <-time.After(max(wait, time.Millisecond)):
		case <-e.kick:
		}
	}
}

// Tick reads the lease once and creates, renews or takes it over as the rules say; Run
// calls it every RenewInterval. A tick is bounded by half the lease duration: a renewal
// that takes that long still leaves the holder half its lease.
func (e *Elector) Tick(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, e.opts.Duration/2)
	defer cancel()
	start := e.opts.Now()
	e.expire(start)
	rec, etag, err := e.store.Get(ctx)
	if n, ok := e.store.(RotationNoter); ok && (err == nil || errors.Is(err, ErrNotFound)) {
		if t, nerr := n.LastRotation(ctx); nerr == nil {
			e.mu.Lock()
			if t.After(e.noted) {
				e.noted = t
			}
			e.mu.Unlock()
		}
	}
	switch {
	case errors.Is(err, ErrNotFound):
		e.write(ctx, start, Record{Holder: e.opts.Identity, Term: e.lastTerm() + 1}, "")
	case err != nil:
		e.failed(fmt.Errorf("cannot read the lease %s: %w", e.store.Where(), err))
	default:
		e.decide(ctx, start, rec, etag)
	}
}

// decide acts on a record read at start.
func (e *Elector) decide(ctx context.Context, start time.Time, rec Record, etag string) {
	e.mu.Lock()
	mine := e.leader && etag == e.etag
	stepping := e.stepping
	if !mine && etag != e.seenETag {
		e.seenETag, e.seenAt = etag, start
	}
	expired := !mine && start.Sub(e.seenAt) >= e.opts.Duration
	e.rec = rec
	e.mu.Unlock()
	switch {
	case stepping:
	case mine: // renew
		e.write(ctx, start, Record{Holder: e.opts.Identity, Term: rec.Term}, etag)
	case e.isLeader():
		// Someone else wrote the lease while we held it: it is theirs now.
		e.lose(fmt.Sprintf("%s took the lease over (term %d)", rec.Holder, rec.Term))
	case rec.Holder == "" || expired: // released, or not renewed for a whole lease
		e.write(ctx, start, Record{Holder: e.opts.Identity, Term: rec.Term + 1}, etag)
	default:
		e.follow(fmt.Sprintf("%s holds the lease (term %d)", rec.Holder, rec.Term))
	}
}

// write creates (etag "") or replaces the lease with rec, stamped at start.
func (e *Elector) write(ctx context.Context, start time.Time, rec Record, etag string) {
	rec.Renewed = start.UTC().Round(time.Millisecond)
	rec.Expires = rec.Renewed.Add(e.opts.Duration)
	rec.SecretRotatedAt = e.secretRotatedAt()
	var newETag string
	var err error
	if etag == "" {
		newETag, err = e.store.Create(ctx, rec)
	} else {
		newETag, err = e.store.Replace(ctx, rec, etag)
	}
	switch {
	case errors.Is(err, ErrConflict):
		// Another instance wrote first; the next read shows who.
		if e.isLeader() {
			e.lose("another instance wrote the lease first")
		} else {
			e.follow("another instance won the lease")
		}
		return
	case err != nil:
		e.failed(fmt.Errorf("cannot write the lease %s: %w", e.store.Where(), err))
		return
	}
	e.mu.Lock()
	became := !e.leader
	e.leader, e.etag, e.rec = true, newETag, rec
	e.validUntil = start.Add(e.opts.Duration)
	e.reason = ""
	if became {
		e.lost = make(chan struct{})
	}
	st := e.statusLocked()
	e.mu.Unlock()
	if became {
		e.log.Info("became the leader", zap.String("lease", e.store.Where()), zap.Uint64("term", rec.Term))
		e.changed(st)
	}
}

// expire ends a leadership whose lease time has run out on our clock.
func (e *Elector) expire(now time.Time) {
	e.mu.Lock()
	gone := e.leader && !now.Before(e.validUntil)
	e.mu.Unlock()
	if gone {
		e.lose("the lease ran out before it could be renewed")
	}
}

// failed records a store error: a leader keeps its lease until it runs out; a follower
// says why it cannot take part.
func (e *Elector) failed(err error) {
	e.log.Warn("lease", zap.Error(err))
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.leader {
		e.reason = err.Error()
	}
}

func (e *Elector) follow(reason string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.reason = reason
}

// lose ends our leadership.
func (e *Elector) lose(reason string) {
	e.mu.Lock()
	if !e.leader {
		e.mu.Unlock()
		return
	}
	e.leader, e.etag, e.reason = false, "", "lost the lease: "+reason
	// Watch the lease from now: a takeover needs a whole lease duration of no change.
	e.seenETag, e.seenAt = "", time.Time{}
	close(e.lost)
	st := e.statusLocked()
	e.mu.Unlock()
	e.log.Warn("no longer the leader", zap.String("reason", reason))
	e.changed(st)
}

func (e *Elector) changed(st Status) {
	if e.opts.OnChange != nil {
		e.opts.OnChange(st)
	}
}

func (e *Elector) lastTerm() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.rec.Term
}

func (e *Elector) isLeader() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leader
}

// IsLeader reports whether this instance holds the lease now, on its own clock.
func (e *Elector) IsLeader() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leader && !e.stepping && e.opts.Now().Before(e.validUntil)
}

// MayWrite is the write gate: nil when this instance holds the lease and the lease has at
// least StepBudget left on its own clock; else an error saying why, and the step must not
// run.
func (e *Elector) MayWrite(_ context.Context, step string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.stepping:
		return fmt.Errorf("not allowed to write (%s): this instance is shutting down and gives the lease up", step)
	case !e.leader:
		return fmt.Errorf("not allowed to write (%s): not the leader: %s", step, e.reason)
	}
	left := e.validUntil.Sub(e.opts.Now())
	if left < e.opts.StepBudget || left <= 0 {
		return fmt.Errorf("not allowed to write (%s): the lease has %s left and a write step may take %s",
			step, left.Round(time.Millisecond), e.opts.StepBudget)
	}
	return nil
}

// HoldWrites says why a whole run must not write ("" while this instance leads): the
// engine asks it once per run, after planning (reconcile.WriteHolder), so that a follower's
// run computes, verifies and reports its plan and applies nothing.
func (e *Elector) HoldWrites(context.Context) string {
	if e.IsLeader() {
		return ""
	}
	st := e.Status()
	if st.Reason == "" {
		return "not the leader"
	}
	return "not the leader: " + st.Reason
}

// WhileLeader returns a context that ends when parent does or when this instance's
// current leadership ends (lost, run out, or given up); it is done at once when this
// instance is not the leader.
func (e *Elector) WhileLeader(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	e.mu.Lock()
	lost, leader, until := e.lost, e.leader && !e.stepping, e.validUntil
	e.mu.Unlock()
	if !leader {
		cancel()
		return ctx, cancel
	}
	go func() {
		// The deadline moves with each renewal: re-arm until the leadership ends.
		for {
			t := time.NewTimer(max(until.Sub(e.opts.Now()), 0))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-lost:
				t.Stop()
				cancel()
				return
			case <-t.C:
			}
			e.mu.Lock()
			same := e.lost == lost && e.leader && !e.stepping
			until = e.validUntil
			e.mu.Unlock()
			if !same || !e.opts.Now().Before(until) {
				cancel()
				return
			}
		}
	}()
	return ctx, cancel
}

// StepDown stops all further writes at once (MayWrite refuses), keeping the lease until
// Release; the daemon calls it first on shutdown, lets the run in progress end, then
// releases.
func (e *Elector) StepDown() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stepping = true
}

// Release gives the lease up (the object's holder emptied, with If-Match), so that a
// follower takes over at its next read instead of waiting for the lease to run out. It does
// nothing when this instance is not the leader.
func (e *Elector) Release(ctx context.Context) error {
	e.mu.Lock()
	e.stepping = true
	leader, etag, rec := e.leader, e.etag, e.rec
	e.mu.Unlock()
	if !leader {
		return nil
	}
	now := e.opts.Now().UTC().Round(time.Millisecond)
	_, err := e.store.Replace(ctx, Record{Holder: "", Term: rec.Term, Renewed: now, Expires: now}, etag)
	e.lose("released it")
	if err != nil {
		return fmt.Errorf("lease: release %s: %w", e.store.Where(), err)
	}
	e.log.Info("released the lease", zap.String("lease", e.store.Where()), zap.Uint64("term", rec.Term))
	return nil
}

// NoteRotation records a secret rotation this instance made (started at t), for whoever
// leads next: in the store's rotation note when it keeps one (RotationNoter; written even
// if the lease was lost meanwhile), and in the lease at its next write, which Run makes now.
func (e *Elector) NoteRotation(t time.Time) {
	t = t.UTC().Round(time.Millisecond)
	e.mu.Lock()
	if t.After(e.rotatedAt) {
		e.rotatedAt = t
	}
	e.mu.Unlock()
	if n, ok := e.store.(RotationNoter); ok {
		ctx, cancel := context.WithTimeout(context.Background(), e.opts.Duration/2)
		if err := n.NoteRotation(ctx, t); err != nil {
			e.log.Warn("could not record the rotation for the next leader", zap.Error(err))
		}
		cancel()
	}
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

func (e *Elector) secretRotatedAt() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return latest(e.rotatedAt, e.rec.SecretRotatedAt, e.noted)
}

func latest(ts ...time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if t.After(out) {
			out = t
		}
	}
	return out
}

// Status reports this instance's view.
func (e *Elector) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.statusLocked()
}

func (e *Elector) statusLocked() Status {
	st := Status{Role: RoleFollower, Identity: e.opts.Identity, Holder: e.rec.Holder, Term: e.rec.Term,
		Expires: e.rec.Expires, Lease: e.store.Where(), Reason: e.reason, SecretRotatedAt: e.rec.SecretRotatedAt}
	st.SecretRotatedAt = latest(st.SecretRotatedAt, e.rotatedAt, e.noted)
	switch {
	case e.leader && !e.stepping && e.opts.Now().Before(e.validUntil):
		st.Role = RoleLeader
		st.Reason = ""
	case e.leader && e.stepping:
		st.Reason = "shutting down: giving the lease up"
	case e.leader:
		st.Reason = "the lease ran out before it could be renewed"
	}
	return st
}
