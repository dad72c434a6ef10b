package reconcile

import (
	"context"
	"errors"
	"slices"
)

// The engine's part of the event feeds: observing them (only when events.install is on or
// akminio created feeds it may have to remove), planning (PlanFeeds, from ComputePlan) and
// applying them after the other changes, recording what it created in the ownership
// registry (State.CreatedFeeds).

// PartFeeds names the event feeds among the parts of an observation (adapters that cannot
// manage them).
const PartFeeds System = "feeds"

// FeedsState is the feeds' part of Observed.
type FeedsState struct {
	Observed  bool // false: the feeds were not read (not installed and nothing to remove)
	Authentik ObservedFeeds
	MinIO     *ObservedAuditWebhook
}

// AuthentikFeeds is implemented by an AuthentikAdapter that can manage the authentik feed
// (reconcile/authentik's).
type AuthentikFeeds interface {
	ObserveFeeds(ctx context.Context) (ObservedFeeds, error)
	ApplyFeeds(ctx context.Context, d DesiredFeeds, obs *ObservedFeeds, changes []Change, done Done) (created, deleted []string, err error)
}

// MinIOFeeds is implemented by a MinIOAdapter that can manage the MinIO feed
// (reconcile/minio's); its Observe fills MinIOState.Audit.
type MinIOFeeds interface {
	ApplyAudit(ctx context.Context, d DesiredFeeds, obs **ObservedAuditWebhook, changes []Change, done Done) (created, deleted []string, err error)
}

// needFeeds says whether a run reads the feeds.
func (e *Engine) needFeeds(st State) bool { return e.Desired.Feeds.Install || len(st.CreatedFeeds) > 0 }

// observeFeeds reads both feeds when needed, recording failures in failed by system.
func (e *Engine) observeFeeds(ctx context.Context, obs *Observed, failed map[System]error) {
	if !e.needFeeds(obs.State) || failed[SystemAuthentik] != nil || failed[SystemMinIO] != nil {
		return
	}
	ak, okA := e.Authentik.(AuthentikFeeds)
	_, okM := e.MinIO.(MinIOFeeds)
	if !okA || !okM {
		failed[PartFeeds] = errors.New("events: the adapters cannot manage event feeds")
		return
	}
	var err error
	if obs.Feeds.Authentik, err = ak.ObserveFeeds(ctx); err != nil {
		failed[SystemAuthentik] = err
		return
	}
	obs.Feeds.MinIO = obs.MinIO.Audit
	obs.Feeds.Observed = true
}

// planFeeds is ComputePlan's part for the feeds.
func planFeeds(d *Desired, o *Observed) []Change {
	if !o.Feeds.Observed {
		return nil
	}
	return PlanFeeds(d.Feeds, o.Feeds.Authentik, o.Feeds.MinIO, o.State)
}

// isFeedChange says whether c is about a feed object.
func isFeedChange(c Change) bool { return slices.Contains(FeedKinds[c.System], c.Kind) }

// applyFeed applies one feed change through the adapter of its system and records in the
// ownership registry (obs.State.CreatedFeeds) what was created and deleted; the state is
// saved after it.
func (e *Engine) applyFeed(ctx context.Context, obs *Observed, c Change, done Done) error {
	ak, okA := e.Authentik.(AuthentikFeeds)
	mc, okM := e.MinIO.(MinIOFeeds)
	if !okA || !okM {
		return errors.New("events: the adapters cannot manage event feeds")
	}
	var w Written
	var err error
	if c.System == SystemAuthentik {
		w.Created, w.Deleted, err = ak.ApplyFeeds(ctx, e.Desired.Feeds, &obs.Feeds.Authentik, []Change{c}, done)
	} else {
		w.Created, w.Deleted, err = mc.ApplyAudit(ctx, e.Desired.Feeds, &obs.Feeds.MinIO, []Change{c}, done)
	}
	own(&obs.State.CreatedFeeds, w)
	return e.save(obs, err)
}
