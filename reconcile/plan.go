package reconcile

import (
	"fmt"
	"slices"
	"strings"

	"github.com/akminio/akminio/config"
)

// ComputePlan is the pure diff between what the config declares and what was observed. It
// does no I/O and keeps no state; the same inputs give the same plan, in this order:
//
//  1. MinIO policies: create/update declared ones, external ones missing (blocked)
//  2. authentik: scope mapping, provider, application, groups, group bindings
//  3. MinIO identity_openid (needs a restart)
//  4. MinIO policies akminio created and no longer declares, when prune is on (delete)
//
// Only managed fields (spec section 4) are compared; everything else is left alone.
func ComputePlan(d *Desired, o *Observed) Plan {
	var p Plan
	p.Changes = append(p.Changes, planPolicies(d, o)...)
	p.Changes = append(p.Changes, planScopeMapping(d, o)...)
	p.Changes = append(p.Changes, planProvider(d, o)...)
	p.Changes = append(p.Changes, planApplication(d, o)...)
	p.Changes = append(p.Changes, planGroups(d, o)...)
	p.Changes = append(p.Changes, planBindings(d, o)...)
	p.Changes = append(p.Changes, planOpenID(d, o)...)
	prunes := planPrune(d, o)
	p.Changes = append(p.Changes, prunes...)
	p.Changes = append(p.Changes, planFeeds(d, o)...)
	p.Unmanaged = unmanagedPolicies(d, o, prunes)
	return p
}

// Drift is the number of changes in the plan: every one of them is drift an applier can
// remove, including blocked and pending ones (reported, not applied). Verification failures
// are not in a plan (see Result.Verification).
func (p Plan) Drift() int { return len(p.Changes) }

// ForSystem returns the plan's changes that belong to system, in plan order.
func (p Plan) ForSystem(system System) []Change { return FilterSystem(p.Changes, system) }

// FilterSystem returns the changes that belong to system, in order.
func FilterSystem(changes []Change, system System) []Change {
	var out []Change
	for _, c := range changes {
		if c.System == system {
			out = append(out, c)
		}
	}
	return out
}

// RestartPending reports whether an identity_openid write is waiting for a MinIO restart.
func (p Plan) RestartPending() bool {
	return slices.ContainsFunc(p.Changes, func(c Change) bool { return c.Pending })
}

// RestartRequired reports whether any change in the plan needs a MinIO restart to take effect.
func (p Plan) RestartRequired() bool {
	return slices.ContainsFunc(p.Changes, func(c Change) bool { return c.RestartRequired })
}

// Blocked returns the changes akminio cannot make itself.
func (p Plan) Blocked() []Change {
	var out []Change
	for _, c := range p.Changes {
		if c.Blocked != "" {
			out = append(out, c)
		}
	}
	return out
}

// planPolicies creates or updates declared policies and reports missing external ones.
func planPolicies(d *Desired, o *Observed) []Change {
	var out []Change
	for _, name := range sortedKeys(d.Policies) {
		if config.IsBuiltinPolicy(name) {
			continue // never touched
		}
		have, ok := o.MinIO.Policies[name]
		switch {
		case !ok:
			out = append(out, Change{System: SystemMinIO, Action: ActionCreate, Kind: KindPolicy, Name: name})
		case !PoliciesEqual(d.Policies[name], have):
			out = append(out, Change{System: SystemMinIO, Action: ActionUpdate, Kind: KindPolicy, Name: name, Fields: []string{"document"}})
		}
	}
	for _, name := range d.ExternalPolicies {
		if _, ok := o.MinIO.Policies[name]; ok || config.IsBuiltinPolicy(name) {
			continue
		}
		out = append(out, Change{System: SystemMinIO, Action: ActionCreate, Kind: KindPolicy, Name: name,
			Blocked: fmt.Sprintf("external policy %q is missing: managed elsewhere, akminio never writes it", name)})
	}
	return out
}

// planScopeMapping compares scope_name, expression and description.
func planScopeMapping(d *Desired, o *Observed) []Change {
	want, have := d.ScopeMapping, o.Authentik.ScopeMapping
	c := Change{System: SystemAuthentik, Kind: KindScopeMapping, Name: want.Name}
	if have == nil {
		c.Action = ActionCreate
		return []Change{c}
	}
	c.Fields = differing(
		field{"scope_name", want.ScopeName != have.ScopeName},
		field{"expression", want.Expression != have.Expression},
		field{"description", want.Description != have.Description},
	)
	if len(c.Fields) == 0 {
		return nil
	}
	c.Action = ActionUpdate
	return []Change{c}
}

// planProvider compares the provider's managed fields, resolving names through the lookups.
func planProvider(d *Desired, o *Observed) []Change {
	want, have := d.Provider, o.Authentik.Provider
	c := Change{System: SystemAuthentik, Kind: KindProvider, Name: want.Name}
	r := resolveProvider(d, o)
	if have == nil {
		c.Action = ActionCreate
		c.Blocked = r.blocked()
		return []Change{c}
	}
	c.Fields = differing(
		field{"client_type", have.ClientType != ClientTypeConfidential},
		field{"grant_types", !equalSets(have.GrantTypes, ProviderGrantTypes)},
		field{"client_id", want.ClientID != "" && want.ClientID != have.ClientID},
		field{"redirect_uris", !strictRedirects(want.RedirectURIs, have.RedirectURIs)},
		field{"property_mappings", !r.mappingsOK || !equalSets(have.PropertyMappings, r.mappings)},
		field{"signing_key", !r.signingKeyOK || have.SigningKey != r.signingKey},
		field{"authorization_flow", !r.authFlowOK || have.AuthorizationFlow != r.authFlow},
		field{"invalidation_flow", !r.invFlowOK || have.InvalidationFlow != r.invFlow},
	)
	if len(c.Fields) == 0 {
		return nil
	}
	c.Action = ActionUpdate
	c.Blocked = r.blocked()
	return []Change{c}
}

// resolvedProvider holds the provider's names resolved to primary keys. A name that cannot
// be resolved makes the field differ and the change blocked (Observe normally fails first).
type resolvedProvider struct {
	mappings                                        []string
	signingKey, authFlow, invFlow                   string
	mappingsOK, signingKeyOK, authFlowOK, invFlowOK bool
	problems                                        []string
}

func resolveProvider(d *Desired, o *Observed) resolvedProvider {
	ak, want := o.Authentik, d.Provider
	r := resolvedProvider{mappingsOK: true, signingKeyOK: true}
	for _, s := range want.Scopes {
		pk, ok := ak.BuiltinScopes[s]
		if !ok {
			r.mappingsOK = false
			r.problems = append(r.problems, fmt.Sprintf("no built-in scope mapping for scope %q", s))
			continue
		}
		r.mappings = append(r.mappings, pk)
	}
	if ak.ScopeMapping != nil {
		r.mappings = append(r.mappings, ak.ScopeMapping.PK)
	} else {
		r.mappingsOK = false // the scope mapping is created first; its pk is not known yet
	}
	if want.SigningKey != "" {
		r.signingKey, r.signingKeyOK = ak.Keypairs[want.SigningKey]
		if !r.signingKeyOK {
			r.problems = append(r.problems, fmt.Sprintf("no certificate keypair named %q", want.SigningKey))
		}
	}
	var ok bool
	if r.authFlow, ok = ak.Flows[want.AuthorizationFlow]; ok {
		r.authFlowOK = true
	} else {
		r.problems = append(r.problems, fmt.Sprintf("no flow with slug %q", want.AuthorizationFlow))
	}
	if r.invFlow, ok = ak.Flows[want.InvalidationFlow]; ok {
		r.invFlowOK = true
	} else {
		r.problems = append(r.problems, fmt.Sprintf("no flow with slug %q", want.InvalidationFlow))
	}
	return r
}

// blocked is the reason the provider cannot be written, or "".
func (r resolvedProvider) blocked() string {
	if len(r.problems) == 0 {
		return ""
	}
	return "cannot resolve " + strings.Join(r.problems, ", ")
}

// strictRedirects reports whether have is exactly the URL set want, every one matched strictly.
func strictRedirects(want []string, have []RedirectURI) bool {
	urls := make([]string, 0, len(have))
	for _, h := range have {
		if h.MatchingMode != MatchingModeStrict {
			return false
		}
		urls = append(urls, h.URL)
	}
	return equalSets(urls, want)
}

// planApplication compares name, provider and meta_launch_url.
func planApplication(d *Desired, o *Observed) []Change {
	want, have := d.Application, o.Authentik.Application
	c := Change{System: SystemAuthentik, Kind: KindApplication, Name: want.Slug}
	if have == nil {
		c.Action = ActionCreate
		return []Change{c}
	}
	prov := o.Authentik.Provider
	c.Fields = differing(
		field{"name", want.Name != have.Name},
		field{"provider", prov == nil || have.Provider != prov.PK},
		field{"meta_launch_url", want.LaunchURL != have.LaunchURL},
	)
	if len(c.Fields) == 0 {
		return nil
	}
	c.Action = ActionUpdate
	return []Change{c}
}

// planGroups creates missing groups, or reports them when create_groups is off.
func planGroups(d *Desired, o *Observed) []Change {
	var out []Change
	for _, g := range d.Groups {
		if _, ok := o.Authentik.Groups[g]; ok {
			continue
		}
		c := Change{System: SystemAuthentik, Action: ActionCreate, Kind: KindGroup, Name: g}
		if !d.CreateGroups {
			c.Blocked = missingGroup(g)
		}
		out = append(out, c)
	}
	return out
}

func missingGroup(g string) string {
	return fmt.Sprintf("group %q does not exist and authentik.create_groups is false", g)
}

// planBindings, when restrict_access is on, binds every desired group to the application;
// it deletes only bindings akminio created (State.CreatedBindings) whose group is no longer
// desired. Other bindings are never touched.
//
// When restrict_access is off, akminio's bindings go only when they are the application's
// last ones, which opens it to every user. While someone else's bindings remain, the
// application stays restricted, and deleting akminio's would lock the bound groups out.
func planBindings(d *Desired, o *Observed) []Change {
	var out []Change
	ak := o.Authentik
	wanted := map[string]bool{} // group pks that should stay bound
	if d.RestrictAccess {
		for _, g := range d.Groups {
			pk, ok := ak.Groups[g]
			if ok {
				wanted[pk] = true
				if hasBinding(ak.Bindings, pk) {
					continue
				}
			}
			c := Change{System: SystemAuthentik, Action: ActionCreate, Kind: KindBinding, Name: g}
			if !ok && !d.CreateGroups {
				c.Blocked = missingGroup(g)
			}
			out = append(out, c)
		}
	}
	if !d.RestrictAccess && slices.ContainsFunc(ak.Bindings, func(b ObservedBinding) bool {
		return !slices.Contains(o.State.CreatedBindings, b.PK)
	}) {
		return out
	}
	names := map[string]string{} // group pk -> name, for the groups akminio knows
	for name, pk := range ak.Groups {
		names[pk] = name
	}
	for _, bpk := range o.State.CreatedBindings {
		i := slices.IndexFunc(ak.Bindings, func(b ObservedBinding) bool { return b.PK == bpk })
		if i < 0 || wanted[ak.Bindings[i].Group] {
			continue
		}
		name := names[ak.Bindings[i].Group]
		if name == "" {
			name = ak.Bindings[i].Group
		}
		out = append(out, Change{System: SystemAuthentik, Action: ActionDelete, Kind: KindBinding, Name: name, ID: bpk})
	}
	return out
}

func hasBinding(bs []ObservedBinding, groupPK string) bool {
	return slices.ContainsFunc(bs, func(b ObservedBinding) bool { return b.Group == groupPK })
}

// planOpenID compares identity_openid with WantedOpenIDKeys, key by key. Keys set by MinIO's
// environment block the change; a write already made and waiting for a restart is pending.
func planOpenID(d *Desired, o *Observed) []Change {
	want := WantedOpenIDKeys(d, o.Authentik.Provider)
	c := Change{System: SystemMinIO, Kind: KindOpenID, Name: d.OpenID.Target, RestartRequired: true}
	have := o.MinIO.OpenID
	if have == nil {
		c.Action = ActionCreate
	} else {
		c.Action = ActionUpdate
		c.Fields = openIDDiff(want, have.OpenIDKeys, o.Authentik.Provider == nil)
		if len(c.Fields) == 0 {
			return nil
		}
		c.Blocked = envBlocked(d.OpenID.Target, c.Fields, have.EnvKeys)
	}
	if rp := o.State.RestartPending; rp != nil && rp.Target == d.OpenID.Target && rp.Fingerprint == want.Fingerprint() {
		c.Pending = true
	}
	return []Change{c}
}

// openIDDiff names the managed keys whose values differ. Without a provider client_id and
// client_secret are unknown yet, so they differ; redirect_uri counts only when desired.
func openIDDiff(want, have OpenIDKeys, noProvider bool) []string {
	return differing(
		field{"enable", want.Enable != have.Enable},
		field{"config_url", want.ConfigURL != have.ConfigURL},
		field{"client_id", noProvider || want.ClientID != have.ClientID},
		field{"client_secret", noProvider || want.ClientSecret.Reveal() != have.ClientSecret.Reveal()},
		field{"claim_name", want.ClaimName != have.ClaimName},
		field{"scopes", want.Scopes != have.Scopes},
		field{"display_name", want.DisplayName != have.DisplayName},
		field{"redirect_uri", want.RedirectURI != "" && want.RedirectURI != have.RedirectURI},
	)
}

// envBlocked says which differing keys MinIO's environment sets, or "". The whole change is
// blocked then: MinIO would not take the write of those keys.
func envBlocked(target string, fields []string, env map[string]bool) string {
	var vars []string
	for _, f := range fields {
		if env[f] {
			vars = append(vars, EnvVarName(target, f))
		}
	}
	if len(vars) == 0 {
		return ""
	}
	noun := "variable"
	if len(vars) > 1 {
		noun = "variables"
	}
	return fmt.Sprintf("set by MinIO's environment %s %s: akminio cannot change it; change the environment of MinIO instead",
		noun, strings.Join(vars, ", "))
}

// EnvVarName is the environment variable that sets key of an identity_openid target:
// MINIO_IDENTITY_OPENID_<KEY> for the default target, MINIO_IDENTITY_OPENID_<KEY>_<NAME>
// for identity_openid:NAME.
func EnvVarName(target, key string) string {
	v := "MINIO_IDENTITY_OPENID_" + strings.ToUpper(key)
	if _, name, ok := strings.Cut(target, ":"); ok {
		v += "_" + strings.ToUpper(name)
	}
	return v
}

// planPrune deletes policies akminio created and no longer declares, only when prune is on.
func planPrune(d *Desired, o *Observed) []Change {
	if !d.Prune {
		return nil
	}
	var out []Change
	created := slices.Clone(o.State.CreatedPolicies)
	slices.Sort(created)
	for _, name := range slices.Compact(created) {
		if _, declared := d.Policies[name]; declared || !prunable(d, o, name) {
			continue
		}
		out = append(out, Change{System: SystemMinIO, Action: ActionDelete, Kind: KindPolicy, Name: name})
	}
	return out
}

// prunable: exists, is neither built in, external nor still bound.
func prunable(d *Desired, o *Observed, name string) bool {
	_, exists := o.MinIO.Policies[name]
	return exists && !config.IsBuiltinPolicy(name) && !slices.Contains(d.ExternalPolicies, name) &&
		!slices.Contains(d.BoundPolicies, name)
}

// unmanagedPolicies lists MinIO policies that are not built in, declared, external or
// about to be pruned; sorted.
func unmanagedPolicies(d *Desired, o *Observed, prunes []Change) []string {
	var out []string
	for _, name := range sortedKeys(o.MinIO.Policies) {
		_, declared := d.Policies[name]
		pruned := slices.ContainsFunc(prunes, func(c Change) bool { return c.Name == name })
		if declared || pruned || config.IsBuiltinPolicy(name) || slices.Contains(d.ExternalPolicies, name) {
			continue
		}
		out = append(out, name)
	}
	return out
}

// field is a managed field and whether it differs.
type field struct {
	name    string
	differs bool
}

// differing returns the names of the fields that differ, in the order given.
func differing(fields ...field) []string {
	var out []string
	for _, f := range fields {
		if f.differs {
			out = append(out, f.name)
		}
	}
	return out
}

// equalSets reports whether a and b hold the same strings, ignoring order and repetition.
func equalSets(a, b []string) bool {
	return slices.Equal(sortedUnique(a), sortedUnique(b))
}

func sortedUnique(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return slices.Compact(c)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
