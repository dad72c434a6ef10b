package aksim

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/google/uuid"
)

func init() {
	for id, h := range map[string]handler{
		"core_applications_list":           (*Server).appsList,
		"core_applications_retrieve":       (*Server).appsRetrieve,
		"core_applications_create":         (*Server).appsCreate,
		"core_applications_partial_update": (*Server).appsUpdate,
		"core_applications_update":         (*Server).appsUpdate,
		"core_applications_destroy":        (*Server).appsDestroy,
		"policies_bindings_list":           (*Server).bindingsList,
		"policies_bindings_retrieve":       (*Server).bindingsRetrieve,
		"policies_bindings_create":         (*Server).bindingsCreate,
		"policies_bindings_partial_update": (*Server).bindingsUpdate,
		"policies_bindings_update":         (*Server).bindingsUpdate,
		"policies_bindings_destroy":        (*Server).bindingsDestroy,
	} {
		apiHandlers[id] = h
	}
}

// renderApp is the Application schema.
func (st *store) renderApp(a *record) map[string]any {
	out := copyMap(a.f)
	out["pk"] = a.id
	out["provider_obj"] = nil
	out["launch_url"] = nil
	if pk, ok := intOf(a.f["provider"]); ok {
		if p := st.providers[strconv.Itoa(pk)]; p != nil {
			out["provider_obj"] = st.renderProviderBase(p)
		}
	}
	if u := str(a.f["meta_launch_url"]); u != "" {
		out["launch_url"] = u
	}
	out["backchannel_providers_obj"] = []any{}
	out["meta_icon_url"] = nil
	out["meta_icon_themed_urls"] = nil
	return out
}

// appBySlug finds an application by slug.
func (st *store) appBySlug(slug string) *record { return find(st.apps, "slug", slug) }

// canAccess reports whether user pk passes an application's policy
// bindings, as authentik's policy engine does for the simulated binding
// kinds: no enabled binding means open; a group binding passes for
// members of the group or of any of its descendants (all_groups); a user
// binding passes for that user; a policy binding never passes here (the
// simulator has no policies); negate inverts; policy_engine_mode any/all.
func (st *store) canAccess(a *record, pk int) bool {
	var results []bool
	groups := map[string]bool{}
	for _, g := range st.allGroups(pk) {
		groups[g.id] = true
	}
	for _, b := range sorted(st.bindings, byField("target")) {
		if str(b.f["target"]) != a.id || b.f["enabled"] == false {
			continue
		}
		pass := false
		if g := str(b.f["group"]); g != "" {
			pass = groups[g]
		} else if u, ok := intOf(b.f["user"]); ok {
			pass = u == pk
		}
		if b.f["negate"] == true {
			pass = !pass
		}
		results = append(results, pass)
	}
	if len(results) == 0 {
		return true
	}
	all := str(a.f["policy_engine_mode"]) == "all"
	for _, r := range results {
		if r && !all {
			return true
		}
		if !r && all {
			return false
		}
	}
	return all
}

func (s *Server) appsList(c *call) (int, any) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	full, _ := boolParam(c, "superuser_full_list")
	forUser := adminPK
	if v, err := strconv.Atoi(qget(c, "for_user")); err == nil {
		if st.userByPK(v) == nil {
			return errField("for_user", "User not found")
		}
		forUser = v
	}
	var out []*record
	for _, a := range sorted(st.apps, byField("name")) {
		if !full && !st.canAccess(a, forUser) {
			continue
		}
		if !fieldFilters(c, a, "name", "slug", "group", "meta_launch_url", "meta_publisher", "meta_description") {
			continue
		}
		if q := qget(c, "search"); q != "" && !containsFold(str(a.f["name"]), q) && !containsFold(str(a.f["slug"]), q) {
			continue
		}
		out = append(out, a)
	}
	return paginate(c, out, st.renderApp)
}

// fieldFilters applies exact-match query filters on string fields.
func fieldFilters(c *call, r *record, fields ...string) bool {
	for _, f := range fields {
		if has(c, f) && str(r.f[f]) != qget(c, f) {
			return false
		}
	}
	return true
}

func (s *Server) appsRetrieve(c *call) (int, any) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	a := st.appBySlug(c.params["slug"])
	if a == nil {
		return errNotFound("Application")
	}
	return http.StatusOK, st.renderApp(a)
}

// checkApp validates slug uniqueness and the provider reference.
func (st *store) checkApp(self *record, body map[string]any) (int, any) {
	if slug, ok := body["slug"]; ok {
		if o := st.appBySlug(str(slug)); o != nil && o != self {
			return errField("slug", "Application with this slug already exists.")
		}
	}
	if v, ok := body["provider"]; ok && v != nil {
		pk, _ := intOf(v)
		if st.providers[strconv.Itoa(pk)] == nil {
			return errField("provider", `Invalid pk "`+itoa(pk)+`" - object does not exist.`)
		}
		if o := st.appForProvider(pk); o != nil && o != self {
			return errField("provider", "Application with this provider already exists.")
		}
	}
	return 0, nil
}

func (s *Server) appsCreate(c *call) (int, any) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if code, body := st.checkApp(nil, c.body); code != 0 {
		return code, body
	}
	f := map[string]any{"provider": nil, "backchannel_providers": []any{}, "open_in_new_tab": false,
		"meta_launch_url": "", "meta_icon": "", "meta_description": "", "meta_publisher": "",
		"policy_engine_mode": "any", "group": "", "meta_hide": false}
	for k, v := range c.body {
		f[k] = v
	}
	a := st.add(st.apps, uuid.NewString(), 0, f)
	return http.StatusCreated, st.renderApp(a)
}

func (s *Server) appsUpdate(c *call) (int, any) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	a := st.appBySlug(c.params["slug"])
	if a == nil {
		return errNotFound("Application")
	}
	if code, body := st.checkApp(a, c.body); code != 0 {
		return code, body
	}
	for k, v := range c.body {
		a.f[k] = v
	}
	return http.StatusOK, st.renderApp(a)
}

func (s *Server) appsDestroy(c *call) (int, any) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	a := st.appBySlug(c.params["slug"])
	if a == nil {
		return errNotFound("Application")
	}
	delete(st.apps, a.id)
	for id, b := range st.bindings {
		if str(b.f["target"]) == a.id {
			delete(st.bindings, id)
		}
	}
	return http.StatusNoContent, nil
}

// renderBinding is the PolicyBinding schema.
func (st *store) renderBinding(b *record) map[string]any {
	out := copyMap(b.f)
	out["pk"] = b.id
	out["policy_obj"] = nil
	out["group_obj"] = nil
	out["user_obj"] = nil
	if p := b.f["policy"]; p != nil {
		out["policy_obj"] = st.bindingPolicy(str(p))
	}
	if g := st.groups[str(b.f["group"])]; g != nil {
		out["group_obj"] = renderPartialGroup(g)
	}
	if pk, ok := intOf(b.f["user"]); ok && st.userByPK(pk) != nil {
		out["user_obj"] = st.renderPartialUser(st.userByPK(pk))
	}
	return out
}

func (s *Server) bindingsList(c *call) (int, any) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	targets := c.r.URL.Query()["target_in"]
	var out []*record
	for _, b := range st.sortedBindings() {
		if !fieldFilters(c, b, "target", "policy") {
			continue
		}
		if len(targets) > 0 && !slices.Contains(targets, str(b.f["target"])) {
			continue
		}
		if v, ok := boolParam(c, "enabled"); ok && b.f["enabled"] != v {
			continue
		}
		if v, ok := boolParam(c, "policy__isnull"); ok && (b.f["policy"] == nil) != v {
			continue
		}
		out = append(out, b)
	}
	return paginate(c, out, st.renderBinding)
}

// sortedBindings orders bindings by target, order, creation.
func (st *store) sortedBindings() []*record {
	return sorted(st.bindings, func(r *record) string {
		o, _ := intOf(r.f["order"])
		return fmt.Sprintf("%s/%011d", str(r.f["target"]), int64(o)+1<<31)
	})
}

func (s *Server) bindingsRetrieve(c *call) (int, any) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	b := st.bindings[c.params["policy_binding_uuid"]]
	if b == nil {
		return errNotFound("Policy Binding")
	}
	return http.StatusOK, st.renderBinding(b)
}

// checkBinding applies authentik's PolicyBindingSerializer.validate:
// exactly one of policy, group and user; and the references must exist.
func (st *store) checkBinding(f map[string]any) (int, any) {
	set := 0
	for _, k := range []string{"policy", "group", "user"} {
		if f[k] != nil {
			set++
		}
	}
	switch {
	case set == 0:
		return http.StatusBadRequest, map[string]any{"non_field_errors": []string{"One of 'policy', 'group' or 'user' must be set."}}
	case set > 1:
		return http.StatusBadRequest, map[string]any{"non_field_errors": []string{"Only one of 'policy', 'group' or 'user' can be set."}}
	}
	target := str(f["target"])
	if st.apps[target] == nil && st.flows[target] == nil && !st.isBindingTarget(target) {
		return errField("target", `Invalid pk "`+target+`" - object does not exist.`)
	}
	if p := f["policy"]; p != nil && st.bindingPolicy(str(p)) == nil {
		return errField("policy", `Invalid pk "`+str(p)+`" - object does not exist.`)
	}
	if g := f["group"]; g != nil && st.groups[str(g)] == nil {
		return errField("group", `Invalid pk "`+str(g)+`" - object does not exist.`)
	}
	if u := f["user"]; u != nil {
		if pk, _ := intOf(u); st.userByPK(pk) == nil {
			return errField("user", `Invalid pk "`+itoa(pk)+`" - object does not exist.`)
		}
	}
	return 0, nil
}

func (s *Server) bindingsCreate(c *call) (int, any) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	f := map[string]any{"policy": nil, "group": nil, "user": nil, "negate": false, "enabled": true,
		"timeout": 30, "failure_result": false}
	for k, v := range c.body {
		f[k] = v
	}
	if code, body := st.checkBinding(f); code != 0 {
		return code, body
	}
	b := st.add(st.bindings, uuid.NewString(), 0, f)
	return http.StatusCreated, st.renderBinding(b)
}

func (s *Server) bindingsUpdate(c *call) (int, any) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	b := st.bindings[c.params["policy_binding_uuid"]]
	if b == nil {
		return errNotFound("Policy Binding")
	}
	f := copyMap(b.f)
	for k, v := range c.body {
		f[k] = v
	}
	if code, body := st.checkBinding(f); code != 0 {
		return code, body
	}
	b.f = f
	return http.StatusOK, st.renderBinding(b)
}

func (s *Server) bindingsDestroy(c *call) (int, any) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.bindings[c.params["policy_binding_uuid"]] == nil {
		return errNotFound("Policy Binding")
	}
	delete(st.bindings, c.params["policy_binding_uuid"])
	return http.StatusNoContent, nil
}
