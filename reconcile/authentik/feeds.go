package authentik

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	api "goauthentik.io/api/v3"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/reconcile"
)

// The event feed in authentik (reconcile/feeds.go): a header mapping holding the hook token,
// a webhook transport to the daemon's /hooks/authentik, one event matcher policy per watched
// model, and a notification rule bound to the matchers that sends to the event's user once.
// As authentik's event_trigger_handler needs: a rule without bindings never matches, and a
// rule without destination users sends nothing; destination_event_user with send_once sends
// one notification per event.

// ObserveFeeds reads the feed objects by name, completely, or returns an error.
func (a *Adapter) ObserveFeeds(ctx context.Context) (reconcile.ObservedFeeds, error) {
	var out reconcile.ObservedFeeds
	maps, err := listAll(ctx, a, "authentik: list notification webhook mappings", bodyFieldNames,
		func(ctx context.Context, page int32) ([]api.NotificationWebhookMapping, api.Pagination, *http.Response, error) {
			l, resp, err := a.api.PropertymappingsAPI.PropertymappingsNotificationList(ctx).Name(reconcile.FeedMappingName).
				Page(page).PageSize(a.pageSize).Execute()
			if err != nil {
				return nil, api.Pagination{}, resp, err
			}
			return l.Results, l.Pagination, resp, nil
		})
	if err != nil {
		return out, err
	}
	for _, m := range maps {
		out.Mapping = observedWebhookMapping(&m)
	}
	transports, err := listAll(ctx, a, "authentik: list notification transports", bodyExcerpt,
		func(ctx context.Context, page int32) ([]api.NotificationTransport, api.Pagination, *http.Response, error) {
			l, resp, err := a.api.EventsAPI.EventsTransportsList(ctx).Name(reconcile.FeedName).
				Page(page).PageSize(a.pageSize).Execute()
			if err != nil {
				return nil, api.Pagination{}, resp, err
			}
			return l.Results, l.Pagination, resp, nil
		})
	if err != nil {
		return out, err
	}
	for _, t := range transports {
		out.Transport = observedTransport(&t)
	}
	out.Matchers = map[string]*reconcile.ObservedMatcher{}
	for _, model := range reconcile.WatchedModels {
		name := reconcile.MatcherName(model)
		found, err := listAll(ctx, a, fmt.Sprintf("authentik: list event matcher policies named %q", name), bodyExcerpt,
			func(ctx context.Context, page int32) ([]api.EventMatcherPolicy, api.Pagination, *http.Response, error) {
				l, resp, err := a.api.PoliciesAPI.PoliciesEventMatcherList(ctx).Name(name).
					Page(page).PageSize(a.pageSize).Execute()
				if err != nil {
					return nil, api.Pagination{}, resp, err
				}
				return l.Results, l.Pagination, resp, nil
			})
		if err != nil {
			return out, err
		}
		for _, p := range found {
			out.Matchers[name] = observedMatcher(&p)
		}
	}
	rules, err := listAll(ctx, a, "authentik: list notification rules", bodyExcerpt,
		func(ctx context.Context, page int32) ([]api.NotificationRule, api.Pagination, *http.Response, error) {
			l, resp, err := a.api.EventsAPI.EventsRulesList(ctx).Name(reconcile.FeedName).
				Page(page).PageSize(a.pageSize).Execute()
			if err != nil {
				return nil, api.Pagination{}, resp, err
			}
			return l.Results, l.Pagination, resp, nil
		})
	if err != nil {
		return out, err
	}
	for _, r := range rules {
		out.Rule = observedRule(&r)
	}
	if out.Rule != nil {
		if out.Rule.Bindings, err = a.ruleBindings(ctx, out.Rule.PK); err != nil {
			return out, err
		}
	}
	return out, nil
}

func (a *Adapter) ruleBindings(ctx context.Context, rule string) ([]reconcile.ObservedRuleBinding, error) {
	found, err := listAll(ctx, a, "authentik: list policy bindings of notification rule "+reconcile.FeedName, bodyExcerpt,
		func(ctx context.Context, page int32) ([]api.PolicyBinding, api.Pagination, *http.Response, error) {
			l, resp, err := a.api.PoliciesAPI.PoliciesBindingsList(ctx).Target(rule).
				Page(page).PageSize(a.pageSize).Execute()
			if err != nil {
				return nil, api.Pagination{}, resp, err
			}
			return l.Results, l.Pagination, resp, nil
		})
	if err != nil {
		return nil, err
	}
	out := []reconcile.ObservedRuleBinding{}
	for _, b := range found {
		out = append(out, reconcile.ObservedRuleBinding{PK: b.Pk, Policy: b.GetPolicy(), Enabled: b.GetEnabled(), Negate: b.GetNegate()})
	}
	return out, nil
}

func observedWebhookMapping(m *api.NotificationWebhookMapping) *reconcile.ObservedWebhookMapping {
	return &reconcile.ObservedWebhookMapping{PK: m.Pk, Name: m.Name, Expression: config.Secret(m.Expression)}
}

func observedTransport(t *api.NotificationTransport) *reconcile.ObservedTransport {
	return &reconcile.ObservedTransport{PK: t.Pk, Name: t.Name, Mode: string(t.GetMode()), URL: t.GetWebhookUrl(),
		HeaderMapping: t.GetWebhookMappingHeaders(), BodyMapping: t.GetWebhookMappingBody(), SendOnce: t.GetSendOnce()}
}

func observedMatcher(p *api.EventMatcherPolicy) *reconcile.ObservedMatcher {
	return &reconcile.ObservedMatcher{PK: p.Pk, Name: p.Name, Action: string(p.GetAction()), App: string(p.GetApp()),
		Model: string(p.GetModel()), ClientIP: p.GetClientIp(), Query: p.GetQuery()}
}

func observedRule(r *api.NotificationRule) *reconcile.ObservedRule {
	return &reconcile.ObservedRule{PK: r.Pk, Name: r.Name, Transports: r.GetTransports(), Severity: string(r.GetSeverity()),
		DestinationEventUser: r.GetDestinationEventUser(), DestinationGroup: r.GetDestinationGroup()}
}

// ApplyFeeds makes the authentik feed changes of changes, in order, writing each object
// whole from d, and updates obs to what it wrote. It returns the FeedKeys of the objects it
// created and deleted (the engine records them in the ownership registry). It stops at the
// first error.
func (a *Adapter) ApplyFeeds(ctx context.Context, d reconcile.DesiredFeeds, obs *reconcile.ObservedFeeds, changes []reconcile.Change, done reconcile.Done) (created, deleted []string, err error) {
	for _, c := range changes {
		if c.System != reconcile.SystemAuthentik || !slices.Contains(reconcile.FeedKinds[reconcile.SystemAuthentik], c.Kind) || c.Blocked != "" {
			continue
		}
		if err := a.applyFeed(ctx, d, obs, c); err != nil {
			return created, deleted, err
		}
		switch c.Action {
		case reconcile.ActionCreate:
			created = append(created, reconcile.FeedKey(c.Kind, c.Name))
		case reconcile.ActionDelete:
			deleted = append(deleted, reconcile.FeedKey(c.Kind, c.Name))
		}
		if done != nil {
			done(c)
		}
	}
	return created, deleted, nil
}

func (a *Adapter) applyFeed(ctx context.Context, d reconcile.DesiredFeeds, obs *reconcile.ObservedFeeds, c reconcile.Change) error {
	del := c.Action == reconcile.ActionDelete
	switch c.Kind {
	case reconcile.KindWebhookMapping:
		if del {
			return a.deleteFeedObject(ctx, c, obs.Mapping != nil, func() (*http.Response, error) {
				return a.api.PropertymappingsAPI.PropertymappingsNotificationDestroy(ctx, obs.Mapping.PK).Execute()
			}, func() { obs.Mapping = nil })
		}
		return a.writeWebhookMapping(ctx, d, obs)
	case reconcile.KindTransport:
		if del {
			return a.deleteFeedObject(ctx, c, obs.Transport != nil, func() (*http.Response, error) {
				return a.api.EventsAPI.EventsTransportsDestroy(ctx, obs.Transport.PK).Execute()
			}, func() { obs.Transport = nil })
		}
		return a.writeTransport(ctx, d, obs)
	case reconcile.KindEventMatcher:
		p := obs.Matchers[c.Name]
		if del {
			return a.deleteFeedObject(ctx, c, p != nil, func() (*http.Response, error) {
				return a.api.PoliciesAPI.PoliciesEventMatcherDestroy(ctx, p.PK).Execute()
			}, func() { delete(obs.Matchers, c.Name) })
		}
		return a.writeMatcher(ctx, c.Name, obs)
	case reconcile.KindRule:
		if del {
			return a.deleteFeedObject(ctx, c, obs.Rule != nil, func() (*http.Response, error) {
				return a.api.EventsAPI.EventsRulesDestroy(ctx, obs.Rule.PK).Execute()
			}, func() { obs.Rule = nil })
		}
		return a.writeRule(ctx, obs)
	}
	return fmt.Errorf("authentik: cannot %s %s %q: akminio does not make such changes", c.Action, c.Kind, c.Name)
}

// deleteFeedObject deletes one feed object; one already gone counts as deleted.
func (a *Adapter) deleteFeedObject(_ context.Context, c reconcile.Change, exists bool, call func() (*http.Response, error), forget func()) error {
	if !exists {
		return nil
	}
	resp, err := call()
	if err != nil && (resp == nil || resp.StatusCode != http.StatusNotFound) {
		return callError(fmt.Sprintf("authentik: delete %s %q", c.Kind, c.Name), resp, err, bodyExcerpt)
	}
	forget()
	return nil
}

func (a *Adapter) writeWebhookMapping(ctx context.Context, d reconcile.DesiredFeeds, obs *reconcile.ObservedFeeds) error {
	req := api.NotificationWebhookMappingRequest{Name: reconcile.FeedMappingName, Expression: d.MappingExpression().Reveal()}
	what := "authentik: write notification webhook mapping " + reconcile.FeedMappingName
	var m *api.NotificationWebhookMapping
	var resp *http.Response
	var err error
	if obs.Mapping == nil {
		m, resp, err = a.api.PropertymappingsAPI.PropertymappingsNotificationCreate(ctx).NotificationWebhookMappingRequest(req).Execute()
	} else {
		m, resp, err = a.api.PropertymappingsAPI.PropertymappingsNotificationUpdate(ctx, obs.Mapping.PK).NotificationWebhookMappingRequest(req).Execute()
	}
	if err != nil {
		// The mapping's body holds the hook token: name the fields, never quote them.
		return callError(what, resp, err, bodyFieldNames)
	}
	obs.Mapping = observedWebhookMapping(m)
	return nil
}

func (a *Adapter) writeTransport(ctx context.Context, d reconcile.DesiredFeeds, obs *reconcile.ObservedFeeds) error {
	what := "authentik: write notification transport " + reconcile.FeedName
	if obs.Mapping == nil {
		return fmt.Errorf("%s: its header mapping %q does not exist", what, reconcile.FeedMappingName)
	}
	mode := api.TRANSPORTMODEENUM_WEBHOOK
	req := api.NotificationTransportRequest{Name: reconcile.FeedName, Mode: &mode, WebhookUrl: &d.AuthentikURL,
		SendOnce: api.PtrBool(true)}
	req.SetWebhookMappingHeaders(obs.Mapping.PK)
	req.SetWebhookMappingBodyNil()
	var t *api.NotificationTransport
	var resp *http.Response
	var err error
	if obs.Transport == nil {
		t, resp, err = a.api.EventsAPI.EventsTransportsCreate(ctx).NotificationTransportRequest(req).Execute()
	} else {
		t, resp, err = a.api.EventsAPI.EventsTransportsUpdate(ctx, obs.Transport.PK).NotificationTransportRequest(req).Execute()
	}
	if err != nil {
		return callError(what, resp, err, bodyExcerpt)
	}
	obs.Transport = observedTransport(t)
	return nil
}

func (a *Adapter) writeMatcher(ctx context.Context, name string, obs *reconcile.ObservedFeeds) error {
	what := fmt.Sprintf("authentik: write event matcher policy %q", name)
	var model string
	for _, m := range reconcile.WatchedModels {
		if reconcile.MatcherName(m) == name {
			model = m
		}
	}
	if model == "" {
		return fmt.Errorf("%s: not one of akminio's", what)
	}
	req := api.EventMatcherPolicyRequest{Name: name}
	req.SetModel(api.ModelEnum(model))
	req.SetActionNil()
	req.SetAppNil()
	req.SetClientIpNil()
	req.SetQueryNil()
	var p *api.EventMatcherPolicy
	var resp *http.Response
	var err error
	if old := obs.Matchers[name]; old == nil {
		p, resp, err = a.api.PoliciesAPI.PoliciesEventMatcherCreate(ctx).EventMatcherPolicyRequest(req).Execute()
	} else {
		p, resp, err = a.api.PoliciesAPI.PoliciesEventMatcherUpdate(ctx, old.PK).EventMatcherPolicyRequest(req).Execute()
	}
	if err != nil {
		return callError(what, resp, err, bodyExcerpt)
	}
	if obs.Matchers == nil {
		obs.Matchers = map[string]*reconcile.ObservedMatcher{}
	}
	obs.Matchers[name] = observedMatcher(p)
	return nil
}

// writeRule writes the rule, then its bindings: one enabled binding to each matcher, and no
// other binding.
func (a *Adapter) writeRule(ctx context.Context, obs *reconcile.ObservedFeeds) error {
	what := "authentik: write notification rule " + reconcile.FeedName
	if obs.Transport == nil {
		return fmt.Errorf("%s: its transport %q does not exist", what, reconcile.FeedName)
	}
	sev := api.SeverityEnum(reconcile.RuleSeverity)
	req := api.NotificationRuleRequest{Name: reconcile.FeedName, Transports: []string{obs.Transport.PK},
		Severity: &sev, DestinationEventUser: api.PtrBool(true)}
	req.SetDestinationGroupNil()
	var r *api.NotificationRule
	var resp *http.Response
	var err error
	var bindings []reconcile.ObservedRuleBinding
	if obs.Rule == nil {
		r, resp, err = a.api.EventsAPI.EventsRulesCreate(ctx).NotificationRuleRequest(req).Execute()
	} else {
		bindings = obs.Rule.Bindings
		r, resp, err = a.api.EventsAPI.EventsRulesUpdate(ctx, obs.Rule.PK).NotificationRuleRequest(req).Execute()
	}
	if err != nil {
		return callError(what, resp, err, bodyExcerpt)
	}
	obs.Rule = observedRule(r)
	obs.Rule.Bindings = bindings
	return a.writeRuleBindings(ctx, obs)
}

func (a *Adapter) writeRuleBindings(ctx context.Context, obs *reconcile.ObservedFeeds) error {
	rule := obs.Rule
	want := map[string]bool{}
	for _, model := range reconcile.WatchedModels {
		p := obs.Matchers[reconcile.MatcherName(model)]
		if p == nil {
			return fmt.Errorf("authentik: bind event matcher policies to notification rule %s: %q does not exist", rule.Name, reconcile.MatcherName(model))
		}
		want[p.PK] = true
	}
	var kept []reconcile.ObservedRuleBinding
	have := map[string]bool{}
	for _, b := range rule.Bindings {
		if want[b.Policy] && b.Enabled && !b.Negate && !have[b.Policy] {
			have[b.Policy] = true
			kept = append(kept, b)
			continue
		}
		resp, err := a.api.PoliciesAPI.PoliciesBindingsDestroy(ctx, b.PK).Execute()
		if err != nil && (resp == nil || resp.StatusCode != http.StatusNotFound) {
			return callError("authentik: delete a policy binding of notification rule "+rule.Name, resp, err, bodyExcerpt)
		}
	}
	for i, model := range reconcile.WatchedModels {
		p := obs.Matchers[reconcile.MatcherName(model)]
		if have[p.PK] {
			continue
		}
		req := api.PolicyBindingRequest{Target: rule.PK, Order: int32(i), Enabled: api.PtrBool(true), Negate: api.PtrBool(false)}
		req.SetPolicy(p.PK)
		b, resp, err := a.api.PoliciesAPI.PoliciesBindingsCreate(ctx).PolicyBindingRequest(req).Execute()
		if err != nil {
			return callError(fmt.Sprintf("authentik: bind %q to notification rule %s", p.Name, rule.Name), resp, err, bodyExcerpt)
		}
		kept = append(kept, reconcile.ObservedRuleBinding{PK: b.Pk, Policy: b.GetPolicy(), Enabled: b.GetEnabled(), Negate: b.GetNegate()})
	}
	rule.Bindings = kept
	return nil
}
