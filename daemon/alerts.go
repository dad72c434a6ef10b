package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/reconcile"
)

// Webhook events (the "event" field of alerts.webhook_url's JSON).
const (
	EventDriftDetected        = "drift_detected"         // a run found drift that the run before did not have
	EventDriftRepaired        = "drift_repaired"         // a run repaired drift, or drift reported before is gone
	EventReconcileFailed      = "reconcile_failed"       // a run failed after one that did not
	EventRestartPending       = "restart_pending"        // a MinIO restart became pending
	EventSecretRotated        = "secret_rotated"         // a rotation succeeded
	EventSecretRotationFailed = "secret_rotation_failed" // a rotation failed (rolled back or not)
)

// Alertmanager alert names and what keeps them firing.
//
//	AkminioDrift                 drift left after the last run that observed both sides
//	AkminioReconcileFailed       the last run failed
//	AkminioRestartPending        an identity_openid write waits for a MinIO restart
//	AkminioSecretRotationFailed  the last rotation failed
const (
	AlertDrift          = "AkminioDrift"
	AlertFailed         = "AkminioReconcileFailed"
	AlertRestartPending = "AkminioRestartPending"
	AlertRotationFailed = "AkminioSecretRotationFailed"
)

// Event is the JSON body POSTed to alerts.webhook_url. It never holds a secret: changes name
// fields, never values, and error texts go through the scrubber.
type Event struct {
	Event    string             `json:"event"`
	Time     time.Time          `json:"time"`
	Summary  string             `json:"summary"`
	Instance string             `json:"instance"`
	Changes  []reconcile.Change `json:"changes,omitempty"`
	Error    string             `json:"error,omitempty"`
}

// Delivery bounds.
const (
	alertQueueSize = 64
	alertAttempts  = 4
	alertBackoff   = time.Second // doubled after each failed attempt
)

// alerter sends webhook events and Alertmanager alerts from its own goroutine, through a
// bounded queue: a slow or failing receiver delays only other alerts, never a run; when
// the queue is full the alert is dropped and logged.
type alerter struct {
	client   *http.Client
	log      *zap.Logger
	instance string
	resend   time.Duration
	now      func() time.Time
	queue    chan delivery
	inflight atomic.Int32

	mu         sync.Mutex
	webhookURL string
	amURL      string
	active     map[string]amAlert
}

type delivery struct {
	what string // for logs: the event or alert name
	url  string
	body []byte
}

// amAlert is one Alertmanager v2 postable alert.
type amAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

func newAlerter(client *http.Client, log *zap.Logger, instance string, resend time.Duration, now func() time.Time) *alerter {
	return &alerter{client: client, log: log.Named("alerts"), instance: instance, resend: resend, now: now,
		queue: make(chan delivery, alertQueueSize), active: map[string]amAlert{}}
}

// configure takes the receivers of a (re)loaded config.
func (a *alerter) configure(c config.Alerts) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.webhookURL = c.WebhookURL
	a.amURL = ""
	if c.AlertmanagerURL != "" {
		a.amURL = strings.TrimRight(c.AlertmanagerURL, "/") + "/api/v2/alerts"
	}
}

// event queues a webhook event, when a webhook is configured.
func (a *alerter) event(e Event) {
	a.mu.Lock()
	target := a.webhookURL
	a.mu.Unlock()
	if target == "" {
		return
	}
	e.Time, e.Instance = a.now().UTC(), a.instance
	body, err := json.Marshal(e)
	if err != nil {
		a.log.Error("cannot encode alert event", zap.String("event", e.Event), zap.Error(err))
		return
	}
	a.enqueue(delivery{what: e.Event, url: target, body: body})
}

// fire makes an Alertmanager alert active (sent now if new or its summary changed, then
// every resend interval).
func (a *alerter) fire(name, severity, summary string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.amURL == "" {
		return
	}
	al, ok := a.active[name]
	if ok && al.Annotations["summary"] == summary {
		return
	}
	if !ok {
		al = amAlert{StartsAt: a.now().UTC(), Labels: map[string]string{
			"alertname": name, "severity": severity, "instance": a.instance, "service": "akminio"}}
	}
	al.Annotations = map[string]string{"summary": summary}
	a.active[name] = al
	a.sendLocked(name, []amAlert{a.withEnd(al)})
}

// resolve ends an active Alertmanager alert: it is sent once more with endsAt = now.
func (a *alerter) resolve(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	al, ok := a.active[name]
	if !ok || a.amURL == "" {
		return
	}
	delete(a.active, name)
	al.EndsAt = a.now().UTC()
	a.sendLocked(name+" (resolved)", []amAlert{al})
}

// withEnd sets a firing alert's endsAt a few resend intervals ahead, as Prometheus does, so
// that the alert resolves by itself if akminio stops sending it.
func (a *alerter) withEnd(al amAlert) amAlert {
	al.EndsAt = a.now().UTC().Add(4 * a.resend)
	return al
}

func (a *alerter) sendLocked(what string, alerts []amAlert) {
	body, err := json.Marshal(alerts)
	if err != nil {
		a.log.Error("cannot encode alerts", zap.String("alert", what), zap.Error(err))
		return
	}
	a.enqueue(delivery{what: what, url: a.amURL, body: body})
}

func (a *alerter) enqueue(d delivery) {
	a.inflight.Add(1)
	select {
	case a.queue <- d:
	default:
		a.inflight.Add(-1)
		a.log.Warn("alert queue full; alert dropped", zap.String("alert", d.what), zap.Int("queue", alertQueueSize))
	}
}

// run delivers queued alerts and resends active Alertmanager alerts until ctx ends.
func (a *alerter) run(ctx context.Context) {
	t := time.NewTicker(a.resend)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case d := <-a.queue:
			a.deliver(ctx, d)
			a.inflight.Add(-1)
		case <-t.C:
			a.mu.Lock()
			if a.amURL != "" && len(a.active) > 0 {
				var all []amAlert
				for _, al := range a.active {
					all = append(all, a.withEnd(al))
				}
				a.sendLocked("resend", all)
			}
			a.mu.Unlock()
		}
	}
}

// drain waits until every queued alert has been delivered (or given up), or ctx ends; it
// says whether the queue was emptied.
func (a *alerter) drain(ctx context.Context) bool {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for a.inflight.Load() > 0 {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	return true
}

// deliver POSTs d with retries and exponential backoff; 4xx answers other than 429 are not
// retried (the receiver will not accept it later either).
func (a *alerter) deliver(ctx context.Context, d delivery) {
	backoff := alertBackoff
	var err error
	for attempt := 1; attempt <= alertAttempts; attempt++ {
		var retry bool
		if retry, err = a.post(ctx, d); err == nil || !retry {
			break
		}
		if attempt == alertAttempts {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff *= 2
	}
	if err != nil {
		a.log.Warn("alert not delivered", zap.String("alert", d.what), zap.Error(err))
	}
}

func (a *alerter) post(ctx context.Context, d delivery) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(d.body))
	if err != nil {
		return false, fmt.Errorf("POST %s: invalid URL", config.RedactURL(d.url))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "akminio")
	// The URL may carry credentials: errors name its scheme and host only.
	shown := config.RedactURL(d.url)
	resp, err := a.client.Do(req)
	if err != nil {
		var uerr *url.Error // its text quotes the whole URL
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return true, fmt.Errorf("POST %s: %w", shown, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 == 2 {
		return false, nil
	}
	retry = resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests
	return retry, fmt.Errorf("POST %s: %s", shown, resp.Status)
}
