package daemon

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/lease"
	"github.com/akminio/akminio/reconcile"
)

// Leadership is the daemon's side of the leader lease (config ha, package lease): with
// Options.Leader set, this instance writes only while it holds the lease. Without it the
// instance is the only one and always writes: it reports itself leader
// (akminio_leader 1), so that a "no leader" alert never fires on a single host.
//
// While a follower, the daemon keeps observing on its schedule and reports drift in its
// metrics and /status, but plans only (Observer.DryRun); it sends no alerts and rotates
// nothing. On becoming the leader it does what a starting daemon does: settles a rotation
// left on disk, runs at once, and catches up a rotation whose time passed with no leader to
// make it (judged by the last rotation recorded in the lease, whoever made it).
type Leadership interface {
	// Run takes part in the election until ctx ends, then gives the lease up.
	Run(ctx context.Context)
	// IsLeader reports whether this instance holds the lease now.
	IsLeader() bool
	// StepDown refuses every write from now on (shutdown), keeping the lease until Run ends.
	StepDown()
	// NoteRotation records a rotation this leader made, for the next leader.
	NoteRotation(t time.Time)
	Status() lease.Status
}

var _ Leadership = (*lease.Elector)(nil)

// Observer is a Runner that can also run without writing (observe, plan, verify); the
// daemon uses it while a follower. *reconcile.Engine's DryRun fits.
type Observer interface {
	DryRun(ctx context.Context) (*reconcile.Result, error)
}

// HAStatus is the /status "ha" object: who writes.
type HAStatus struct {
	Enabled  bool       `json:"enabled"`
	Role     string     `json:"role"` // leader | follower
	Identity string     `json:"identity,omitempty"`
	Holder   string     `json:"holder,omitempty"`
	Term     uint64     `json:"term,omitempty"`
	Expires  *time.Time `json:"expires,omitempty"` // the holder's clock
	Lease    string     `json:"lease,omitempty"`   // bucket/key
	// Reason says why this instance does not write, when it does not.
	Reason string `json:"reason,omitempty"`
}

// haMetrics are akminio_leader and akminio_leader_transitions_total, exported with ha on
// or off.
type haMetrics struct {
	leader      prometheus.GaugeFunc
	transitions prometheus.Counter
}

func newHAMetrics(reg prometheus.Registerer, isLeader func() bool) (*haMetrics, error) {
	m := &haMetrics{
		leader: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "akminio_leader", Help: "Whether this instance is the one that writes (1) or a follower (0); always 1 without ha.",
		}, func() float64 { return boolFloat(isLeader()) }),
		transitions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "akminio_leader_transitions_total", Help: "Times this instance became the leader or stopped being it.",
		}),
	}
	for _, c := range []prometheus.Collector{m.leader, m.transitions} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// isLeader reports whether this instance may write now: always without ha.
func (d *Daemon) isLeader() bool {
	return d.opts.Leader == nil || d.opts.Leader.IsLeader()
}

// haStatus is the "ha" object of /status.
func (d *Daemon) haStatus() HAStatus {
	if d.opts.Leader == nil {
		return HAStatus{Enabled: false, Role: lease.RoleLeader}
	}
	st := d.opts.Leader.Status()
	hs := HAStatus{Enabled: true, Role: st.Role, Identity: st.Identity, Holder: st.Holder, Term: st.Term,
		Lease: st.Lease, Reason: d.scrub(st.Reason)}
	if !d.opts.Leader.IsLeader() {
		hs.Role = lease.RoleFollower
	}
	if !st.Expires.IsZero() {
		hs.Expires = timePtr(st.Expires)
	}
	return hs
}

// LeadershipChanged is the elector's OnChange: it counts the transition and, on becoming
// the leader, runs what a starting daemon runs (see Leadership).
func (d *Daemon) LeadershipChanged(st lease.Status) {
	d.ha.transitions.Inc()
	d.log.Info("leadership changed", zap.String("role", st.Role), zap.String("holder", st.Holder),
		zap.Uint64("term", st.Term))
	if st.Role != lease.RoleLeader || d.closing.Load() {
		return
	}
	d.mu.Lock()
	ctx := d.runCtx
	d.mu.Unlock()
	if ctx != nil {
		go d.begin(ctx, "leader")
	}
}

// runOnce is one reconcile run: Apply when this instance writes; else, with ha on, an
// observing run that writes nothing. A leader that loses the lease during Apply is stopped
// by the write gate (lease.Fence) before its next write, not by cancelling the run: a run
// waiting for MinIO to restart has nothing to write, and cutting that wait short would
// only leave a rotation half-confirmed.
func (d *Daemon) runOnce(ctx context.Context, r Runner) (*reconcile.Result, bool, error) {
	if d.isLeader() {
		res, err := r.Apply(ctx)
		return res, true, err
	}
	if o, ok := r.(Observer); ok {
		res, err := o.DryRun(ctx)
		return res, false, err
	}
	return nil, false, errNotLeader(d.opts.Leader.Status())
}

// mayRotate says whether this instance rotates now; it logs why not. With ha, only the
// leader rotates, and only when a time of schedule.rotate_secret has come since the last
// rotation recorded in the lease (by any leader, from its start), give or take the jitter
// and a second: a leader that took over just after another rotated does not rotate again
// on its own tick of the same schedule.
func (d *Daemon) mayRotate() bool {
	if d.opts.Leader == nil {
		return true
	}
	st := d.opts.Leader.Status()
	if !d.opts.Leader.IsLeader() {
		d.log.Info("secret rotation left to the leader", zap.String("holder", st.Holder))
		return false
	}
	if st.SecretRotatedAt.IsZero() {
		return true
	}
	cfg := d.config()
	sched, err := config.ParseSchedule(cfg.Schedule.RotateSecret)
	if err != nil {
		return true // no schedule: a rotation asked for now
	}
	if next := sched.Next(st.SecretRotatedAt); next.After(d.now().Add(cfg.Schedule.Jitter + time.Second)) {
		d.log.Info("secret rotation skipped: another leader rotated in this period",
			zap.Time("rotated_at", st.SecretRotatedAt), zap.Time("next_due", next))
		return false
	}
	return true
}

// sharedRotatedAt is the later of this host's last rotation and the lease's.
func (d *Daemon) sharedRotatedAt(local time.Time) time.Time {
	if d.opts.Leader == nil {
		return local
	}
	if t := d.opts.Leader.Status().SecretRotatedAt; t.After(local) {
		return t
	}
	return local
}

type notLeaderError struct{ st lease.Status }

func errNotLeader(st lease.Status) error { return notLeaderError{st} }

func (e notLeaderError) Error() string {
	return "not the leader (" + e.st.Reason + "): this runner cannot observe without writing"
}
