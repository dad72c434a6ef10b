package daemon

import (
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/akminio/akminio/reconcile"
)

// Sources of hook events, the values of akminio_events_received_total{source}.
const (
	SourceAuthentik = "authentik"
	SourceMinIO     = "minio"
)

var eventSources = []string{SourceAuthentik, SourceMinIO}

// recentRuns is how many finished runs /status lists.
const recentRuns = 20

// FeedStatus is one event feed in /status.
type FeedStatus struct {
	// Installed: events.install is on and the last run that observed found the feed's
	// objects as declared (no drift on them).
	Installed bool `json:"installed"`
	// LastDelivered is when the feed last delivered a well-formed event (null: never since
	// start).
	LastDelivered *time.Time `json:"last_delivered"`
	Received      uint64     `json:"received"`
}

// RunSummary is one finished run in /status's recent_runs, newest first.
type RunSummary struct {
	Start  time.Time `json:"start"`
	Reason string    `json:"reason"`
	Result string    `json:"result"`
}

// feedState is what the daemon knows of the feeds (guarded by Daemon.mu).
type feedState struct {
	lastDelivered map[string]time.Time
	received      map[string]uint64
	hookSources   map[string]bool // sources whose events wait for the debounce
	recent        []RunSummary
	observed      bool // a run has observed both systems
	retries       int  // hook runs retried in a row (retryHookRun)
}

func newEventsMetric(reg prometheus.Registerer) (*prometheus.CounterVec, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "akminio_events_received_total",
		Help: "Well-formed hook deliveries received, by source (authentik, minio), whether or not they triggered a run.",
	}, []string{"source"})
	if err := reg.Register(c); err != nil {
		return nil, err
	}
	for _, s := range eventSources {
		c.WithLabelValues(s)
	}
	return c, nil
}

// eventReceived records a well-formed delivery from source.
func (d *Daemon) eventReceived(source string) {
	d.eventsReceived.WithLabelValues(source).Inc()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.feeds.lastDelivered[source] = d.now()
	d.feeds.received[source]++
}

// takeHookReason returns the reason of a debounced run ("hook:authentik", "hook:minio",
// "hook:authentik,minio") and forgets the sources.
func (d *Daemon) takeHookReason() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var srcs []string
	for s := range d.feeds.hookSources {
		srcs = append(srcs, s)
	}
	clear(d.feeds.hookSources)
	if len(srcs) == 0 {
		return "hook"
	}
	sort.Strings(srcs)
	return "hook:" + strings.Join(srcs, ",")
}

// maxHookRetries bounds how often a hook run that could not observe is retried.
const maxHookRetries = 5

// retryHookRun says whether to run again, one debounce later, after o: a run caused by an
// event that could not observe (a backend restarting, say, as MinIO does after a config
// change someone made) is retried up to maxHookRetries times, so that the event is not lost
// until the next scheduled run. It keeps the event's sources for the retry's reason.
func (d *Daemon) retryHookRun(o *outcome) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	hook := strings.HasPrefix(o.Reason, "hook")
	if !hook || o.Result != ResultError || o.Observed {
		if hook {
			d.feeds.retries = 0
		}
		return false
	}
	if d.feeds.retries >= maxHookRetries {
		d.feeds.retries = 0
		return false
	}
	d.feeds.retries++
	if srcs, ok := strings.CutPrefix(o.Reason, "hook:"); ok {
		for s := range strings.SplitSeq(srcs, ",") {
			d.feeds.hookSources[s] = true
		}
	}
	return true
}

// recordRun keeps the run for /status's recent_runs; callers hold d.mu.
func (d *Daemon) recordRun(o *outcome) {
	d.feeds.observed = d.feeds.observed || o.Observed
	d.feeds.recent = append([]RunSummary{{Start: o.Start.UTC(), Reason: o.Reason, Result: o.Result}}, d.feeds.recent...)
	if len(d.feeds.recent) > recentRuns {
		d.feeds.recent = d.feeds.recent[:recentRuns]
	}
}

// feedStatus is /status's events; callers hold d.mu.
func (d *Daemon) feedStatus() map[string]FeedStatus {
	out := map[string]FeedStatus{}
	for _, src := range eventSources {
		fs := FeedStatus{Received: d.feeds.received[src]}
		if t, ok := d.feeds.lastDelivered[src]; ok {
			t := t.UTC()
			fs.LastDelivered = &t
		}
		fs.Installed = d.cfg.Events.Install && d.feeds.observed && !slices.ContainsFunc(d.drift, func(c reconcile.Change) bool {
			return c.System == reconcile.System(src) && slices.Contains(reconcile.FeedKinds[reconcile.System(src)], c.Kind)
		})
		out[src] = fs
	}
	return out
}

// notification is what akminio reads of an authentik notification webhook.
type notification struct {
	Action    string // the event's action
	Model     string // "<app>.<model_name>" of a model event; "" when the body names none
	UserAgent string // the user agent of the request that caused the event
}

// authentikBody is authentik's webhook body (NotificationTransport.send_webhook):
// {"body", "severity", "user_email", "user_username", "event_user_email",
// "event_user_username"}; user_* are the recipient's, event_user_* the event's user's. The
// body is the event's summary: its context["message"] when there is one, otherwise
// "<action>: <context>" with the context as Python prints a dict, e.g.
//
//	model_updated: {'model': {'app': 'authentik_core', 'model_name': 'group', 'pk': '…',
//	'name': 'Minio admins'}, 'http_request': {'path': '/api/v3/core/groups/…/',
//	'method': 'PATCH', 'args': {}, 'user_agent': '…', 'request_id': '…'}}
type authentikBody struct {
	Body     *string `json:"body"`
	Severity string  `json:"severity"`
}

var (
	actionRE = regexp.MustCompile(`^([a-z_]+): \{`)
	// Python's repr quotes with ' unless the text holds a ' and no ".
	modelRE = regexp.MustCompile(`'model': \{'app': '([a-z0-9_]+)', 'model_name': '([a-z0-9_]+)'`)
	uaRE    = regexp.MustCompile(`'user_agent': (?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")`)
)

// errNotNotification is a body that is not authentik's webhook body.
var errNotNotification = errors.New(`not an authentik notification: want a JSON object with a string "body" (the default webhook body; akminio installs no body mapping)`)

// decodeNotification reads authentik's default webhook body.
func decodeNotification(raw []byte) (notification, error) {
	var b authentikBody
	if err := json.Unmarshal(raw, &b); err != nil || b.Body == nil {
		return notification{}, errNotNotification
	}
	var n notification
	if m := actionRE.FindStringSubmatch(*b.Body); m != nil {
		n.Action = m[1]
	}
	if m := modelRE.FindStringSubmatch(*b.Body); m != nil {
		n.Model = m[1] + "." + m[2]
	}
	if m := uaRE.FindStringSubmatch(*b.Body); m != nil {
		n.UserAgent = m[1] + m[2]
	}
	return n, nil
}

// ignored says why a notification triggers no run ("" when it does): not a model event,
// a model akminio does not manage, or akminio's own write (its authentik client marks its
// User-Agent with OwnUserAgent, which authentik records in the event). A model event whose
// model cannot be read triggers a run: a run too many finds nothing and writes nothing.
func (n notification) ignored() string {
	switch {
	case n.Action != "model_created" && n.Action != "model_updated" && n.Action != "model_deleted":
		return "not a model event"
	case isOwnUserAgent(n.UserAgent):
		return "akminio's own write"
	case n.Model != "" && !slices.Contains(reconcile.WatchedModels, n.Model):
		return "a model akminio does not manage"
	}
	return ""
}
