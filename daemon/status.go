package daemon

import (
	"time"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/reconcile"
)

// Status is the /status document. It holds no secret: changes name fields, never values,
// and error texts pass through the scrubber.
type Status struct {
	Version        string                             `json:"version"`
	Mode           config.Mode                        `json:"mode"`
	Running        string                             `json:"running,omitempty"` // what the loop runs now
	LastRun        *LastRun                           `json:"last_run"`          // null before the first run ends
	Drift          DriftStatus                        `json:"drift"`
	NextRuns       NextRuns                           `json:"next_runs"`
	Secret         SecretStatus                       `json:"secret"`
	RestartPending bool                               `json:"restart_pending"`
	Backends       map[reconcile.System]BackendStatus `json:"backends"`
	Config         ConfigStatus                       `json:"config"`
	// Events are the event feeds by source (authentik, minio); RecentRuns the last runs.
	Events     map[string]FeedStatus `json:"events"`
	RecentRuns []RunSummary          `json:"recent_runs"`
	// HA says who writes: this instance (leader) or another (follower), with the lease.
	HA HAStatus `json:"ha"`
}

// LastRun describes the last finished reconcile run.
type LastRun struct {
	Start           time.Time          `json:"start"`
	DurationSeconds float64            `json:"duration_seconds"`
	Result          string             `json:"result"`
	Reason          string             `json:"reason"`
	Error           string             `json:"error,omitempty"`
	Changes         []reconcile.Change `json:"changes"` // applied
}

// DriftStatus is the drift left by the last run that observed both systems, as the plan
// JSON shows it.
type DriftStatus struct {
	Changes []reconcile.Change `json:"changes"`
	Drift   int                `json:"drift"`
}

// NextRuns are the next scheduled times, jitter not included; null when not scheduled.
type NextRuns struct {
	Reconcile    *time.Time `json:"reconcile"`
	RotateSecret *time.Time `json:"rotate_secret"`
}

// SecretStatus is the client secret's age as state.json records it.
type SecretStatus struct {
	RotatedAt  *time.Time `json:"rotated_at"`  // null: never rotated by akminio
	AgeSeconds *float64   `json:"age_seconds"` // null: unknown
}

// BackendStatus is "up", "down" or "unknown" (no run has reached it yet), with the last error.
type BackendStatus struct {
	Status    string `json:"status"`
	LastError string `json:"last_error,omitempty"`
}

// ConfigStatus says which config is in force, whether the last reload was accepted, and
// the config's security warnings ("key: message", see config.SecurityWarnings; [] when
// none).
type ConfigStatus struct {
	Path                 string   `json:"path"`
	LastReloadSuccessful bool     `json:"last_reload_successful"`
	Warnings             []string `json:"warnings"`
}

// Status returns the daemon's status now.
func (d *Daemon) Status() Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := Status{
		Version: d.opts.Version, Mode: d.cfg.Mode, Running: d.running,
		Drift:          DriftStatus{Changes: nonNil(d.drift), Drift: len(d.drift)},
		RestartPending: d.restartPend,
		Backends:       map[reconcile.System]BackendStatus{},
		Config:         ConfigStatus{Path: d.cfg.Path, LastReloadSuccessful: d.reloadOK, Warnings: configWarnings(d.cfg)},
		Events:         d.feedStatus(),
		RecentRuns:     append([]RunSummary{}, d.feeds.recent...),
		HA:             d.haStatus(),
	}
	if d.last != nil {
		st.LastRun = lastRunOf(d.last)
	}
	for _, s := range systems {
		b, ok := d.backends[s]
		switch {
		case !ok:
			st.Backends[s] = BackendStatus{Status: "unknown"}
		case b.Up:
			st.Backends[s] = BackendStatus{Status: "up"}
		default:
			st.Backends[s] = BackendStatus{Status: "down", LastError: b.LastError}
		}
	}
	if d.sched != nil {
		rec, rot := d.sched.next()
		st.NextRuns = NextRuns{Reconcile: timePtr(rec), RotateSecret: timePtr(rot)}
	}
	if !d.rotatedAt.IsZero() {
		age := d.now().Sub(d.rotatedAt).Seconds()
		st.Secret = SecretStatus{RotatedAt: timePtr(d.rotatedAt), AgeSeconds: &age}
	}
	return st
}

func lastRunOf(o *outcome) *LastRun {
	lr := &LastRun{Start: o.Start.UTC(), DurationSeconds: o.Duration.Seconds(), Result: o.Result, Reason: o.Reason, Changes: nonNil(o.Applied)}
	if o.Err != nil {
		lr.Error = o.Err.Error()
	}
	return lr
}

// nonNil copies changes so that lists are never null in JSON.
func nonNil(cs []reconcile.Change) []reconcile.Change {
	out := make([]reconcile.Change, len(cs))
	for i, c := range cs {
		if c.Fields == nil {
			c.Fields = []string{}
		}
		out[i] = c
	}
	return out
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// configWarnings renders cfg's security warnings for /status.
func configWarnings(cfg *config.Config) []string {
	out := []string{}
	for _, w := range cfg.SecurityWarnings() {
		out = append(out, w.String())
	}
	return out
}
