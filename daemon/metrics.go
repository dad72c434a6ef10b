package daemon

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/akminio/akminio/reconcile"
)

// Results of a reconcile run, the values of akminio_reconcile_runs_total{result}.
//
//	result     the run...
//	error      returned a terminal error (or panicked, or timed out): it alerts at once
//	transient  returned a transient error (reconcile.IsTransient: the run lock held by another
//	           run, MinIO not ready after a restart, 429/5xx after retries, the write gate
//	           refusing): it alerts only from the Options.TransientAlertAfter-th in a row
//	repaired  applied changes and left no drift
//	drift     left drift (report mode, blocked changes, a restart pending, a failed verification)
//	in_sync   found nothing to do
const (
	ResultInSync    = "in_sync"
	ResultRepaired  = "repaired"
	ResultDrift     = "drift"
	ResultError     = "error"
	ResultTransient = "transient"
)

// Results of a secret rotation, the values of akminio_secret_rotations_total{result}.
const (
	RotationSuccess    = "success"
	RotationFailed     = "failed"      // failed, and the old secret could not be confirmed back
	RotationRolledBack = "rolled_back" // failed, and the old secret was put back on both sides
)

var (
	runResults      = []string{ResultInSync, ResultRepaired, ResultDrift, ResultError, ResultTransient}
	rotationResults = []string{RotationSuccess, RotationFailed, RotationRolledBack}
	systems         = []reconcile.System{reconcile.SystemAuthentik, reconcile.SystemMinIO}
	actions         = []reconcile.Action{reconcile.ActionCreate, reconcile.ActionUpdate, reconcile.ActionDelete}
	// kindsBySystem are the kinds of change each system can have; they label the drift and
	// change series, all initialised at start-up.
	kindsBySystem = map[reconcile.System][]reconcile.Kind{
		reconcile.SystemAuthentik: {reconcile.KindScopeMapping, reconcile.KindProvider, reconcile.KindApplication,
			reconcile.KindGroup, reconcile.KindBinding, reconcile.KindVerification,
			reconcile.KindWebhookMapping, reconcile.KindTransport, reconcile.KindEventMatcher, reconcile.KindRule},
		reconcile.SystemMinIO: {reconcile.KindPolicy, reconcile.KindOpenID, reconcile.KindVerification, reconcile.KindAuditWebhook},
	}
)

// metrics are the series of spec section 7. Every labelled series exists from start-up.
type metrics struct {
	runs           *prometheus.CounterVec
	duration       prometheus.Histogram
	driftItems     *prometheus.GaugeVec
	changes        *prometheus.CounterVec
	lastSuccess    prometheus.Gauge
	backendUp      *prometheus.GaugeVec
	secretRotated  prometheus.Gauge
	rotations      *prometheus.CounterVec
	restartPending prometheus.Gauge
	reloadOK       prometheus.Gauge
}

// newMetrics creates the metrics, registers them and the Go and process collectors on reg,
// and initialises every known label combination.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "akminio_reconcile_runs_total", Help: "Reconcile runs by result (in_sync, repaired, drift, error).",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "akminio_reconcile_duration_seconds", Help: "Duration of reconcile runs.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}),
		driftItems: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "akminio_drift_items", Help: "Drift left after the last run, by system and kind.",
		}, []string{"system", "kind"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "akminio_changes_applied_total", Help: "Changes applied, by system, kind and action.",
		}, []string{"system", "kind", "action"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "akminio_last_success_timestamp_seconds", Help: "Unix time the last run finished without error (0: never).",
		}),
		backendUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "akminio_backend_up", Help: "Whether the backend answered the last observation (1) or not (0).",
		}, []string{"system"}),
		secretRotated: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "akminio_client_secret_rotated_timestamp_seconds", Help: "Unix time the client secret was last rotated (0: never by akminio).",
		}),
		rotations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "akminio_secret_rotations_total", Help: "Client secret rotations by result (success, failed, rolled_back).",
		}, []string{"result"}),
		restartPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "akminio_minio_restart_pending", Help: "1 while an identity_openid write waits for a MinIO restart.",
		}),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "akminio_config_last_reload_successful", Help: "Whether the last config (re)load was accepted (1) or rejected (0).",
		}),
	}
	cs := []prometheus.Collector{m.runs, m.duration, m.driftItems, m.changes, m.lastSuccess, m.backendUp,
		m.secretRotated, m.rotations, m.restartPending, m.reloadOK,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, r := range runResults {
		m.runs.WithLabelValues(r)
	}
	for _, r := range rotationResults {
		m.rotations.WithLabelValues(r)
	}
	for _, s := range systems {
		m.backendUp.WithLabelValues(string(s)).Set(0)
		for _, k := range kindsBySystem[s] {
			m.driftItems.WithLabelValues(string(s), string(k)).Set(0)
			if k == reconcile.KindVerification {
				continue // verification failures are never applied
			}
			for _, a := range actions {
				m.changes.WithLabelValues(string(s), string(k), string(a))
			}
		}
	}
	m.reloadOK.Set(1)
	return m, nil
}

// observeRun records one finished run.
func (m *metrics) observeRun(o *outcome) {
	m.runs.WithLabelValues(o.Result).Inc()
	m.duration.Observe(o.Duration.Seconds())
	if o.Err == nil {
		m.lastSuccess.Set(float64(o.End.Unix()))
	}
	for _, c := range o.Applied {
		m.changes.WithLabelValues(string(c.System), string(c.Kind), string(c.Action)).Inc()
	}
	if o.Observed {
		for _, s := range systems {
			for _, k := range kindsBySystem[s] {
				m.driftItems.WithLabelValues(string(s), string(k)).Set(0)
			}
		}
		for _, c := range o.Drift {
			m.driftItems.WithLabelValues(string(c.System), string(c.Kind)).Inc()
		}
		m.restartPending.Set(boolFloat(o.RestartPending))
	}
	for s, b := range o.Backends {
		m.backendUp.WithLabelValues(string(s)).Set(boolFloat(b.Up))
	}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
