package aksim

import (
	"net/http"
	"slices"
	"sort"

	"github.com/google/uuid"
)

// renderGroup is the Group schema. users_obj, parents_obj, children_obj
// and inherited_roles_obj are null unless asked for, as in authentik
// (include_users defaults to true, the others to false).
func (st *store) renderGroup(g *record, c *call) map[string]any {
	out := copyMap(g.f)
	users := st.groupUsers(g.id)
	want := func(name string, def bool) bool {
		if v, ok := boolParam(c, name); ok {
			return v
		}
		return def
	}
	out["pk"] = g.id
	out["num_pk"] = g.num
	out["users"] = anyList(users)
	out["users_obj"] = nil
	if want("include_users", true) {
		objs := []any{}
		for _, pk := range users {
			objs = append(objs, st.renderPartialUser(st.userByPK(pk)))
		}
		out["users_obj"] = objs
	}
	children := st.groupChildren(g.id)
	out["children"] = anyList(children)
	out["children_obj"] = nil
	if want("include_children", false) {
		out["children_obj"] = st.relatedGroups(children)
	}
	out["parents_obj"] = nil
	if want("include_parents", false) {
		out["parents_obj"] = st.relatedGroups(strList(g.f["parents"]))
	}
	out["roles_obj"] = []any{}
	out["inherited_roles_obj"] = nil
	if want("include_inherited_roles", false) {
		out["inherited_roles_obj"] = []any{}
	}
	return out
}

// relatedGroups renders RelatedGroup objects.
func (st *store) relatedGroups(ids []string) []any {
	out := []any{}
	for _, id := range ids {
		if g := st.groups[id]; g != nil {
			out = append(out, map[string]any{"pk": g.id, "group_uuid": g.id, "name": g.f["name"],
				"is_superuser": g.f["is_superuser"], "attributes": g.f["attributes"]})
		}
	}
	return out
}

// groupUsers returns the pks of a group's direct members, ascending.
func (st *store) groupUsers(id string) []int {
	out := []int{}
	for pk, in := range st.members[id] {
		if in && st.userByPK(pk) != nil {
			out = append(out, pk)
		}
	}
	sort.Ints(out)
	return out
}

// groupChildren returns the uuids of groups that list id as a parent.
func (st *store) groupChildren(id string) []string {
	var kids []*record
	for _, g := range st.groups {
		if slices.Contains(strList(g.f["parents"]), id) {
			kids = append(kids, g)
		}
	}
	out := []string{}
	for _, g := range sortRecords(kids, byField("name")) {
		out = append(out, g.id)
	}
	return out
}

func (s *Server) groupsList(c *call) (int, any) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	var out []*record
	for _, g := range sorted(st.groups, byField("name")) {
		if has(c, "name") && str(g.f["name"]) != qget(c, "name") {
			continue
		}
		if q := qget(c, "search"); q != "" && !containsFold(str(g.f["name"]), q) {
			continue
		}
		if v, ok := boolParam(c, "is_superuser"); ok && g.f["is_superuser"] != v {
			continue
		}
		if !st.hasMembers(g, c) {
			continue
		}
		out = append(out, g)
	}
	return paginate(c, out, func(g *record) map[string]any { return st.renderGroup(g, c) })
}

// hasMembers applies members_by_pk and members_by_username: the group
// must have at least one of the listed users as a direct member.
func (st *store) hasMembers(g *record, c *call) bool {
	q := c.r.URL.Query()
	pks, names := q["members_by_pk"], q["members_by_username"]
	if len(pks) == 0 && len(names) == 0 {
		return true
	}
	for _, pk := range st.groupUsers(g.id) {
		if slices.Contains(pks, itoa(pk)) || slices.Contains(names, str(st.userByPK(pk).f["username"])) {
			return true
		}
	}
	return false
}

func (s *Server) groupsRetrieve(c *call) (int, any) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	g := st.groups[c.params["group_uuid"]]
	if g == nil {
		return errNotFound("Group")
	}
	return http.StatusOK, st.renderGroup(g, c)
}

// checkGroup validates a group's name, parents and users before a write;
// self is nil on create.
func (st *store) checkGroup(self *record, body map[string]any) (int, any) {
	if name, ok := body["name"]; ok {
		if o := find(st.groups, "name", str(name)); o != nil && o != self {
			return errField("name", "Group with this name already exists.")
		}
	}
	for _, p := range strList(body["parents"]) {
		if st.groups[p] == nil {
			return errField("parents", `Invalid pk "`+p+`" - object does not exist.`)
		}
		if self != nil && (p == self.id || st.isAncestor(self.id, p)) {
			return errField("parents", "Cannot set group as parent of itself or of one of its ancestors.")
		}
	}
	for _, u := range intList(body["users"]) {
		if st.userByPK(u) == nil {
			return errField("users", `Invalid pk "`+itoa(u)+`" - object does not exist.`)
		}
	}
	return 0, nil
}

// isAncestor reports whether g is candidate or one of candidate's
// ancestors, i.e. whether making candidate a parent of g would close a loop.
func (st *store) isAncestor(g, candidate string) bool {
	seen := map[string]bool{}
	var up func(id string) bool
	up = func(id string) bool {
		if id == g {
			return true
		}
		if seen[id] || st.groups[id] == nil {
			return false
		}
		seen[id] = true
		for _, p := range strList(st.groups[id].f["parents"]) {
			if up(p) {
				return true
			}
		}
		return false
	}
	return up(candidate)
}

// writeGroupFields applies writable fields; users replaces the membership.
func (st *store) writeGroupFields(g *record, body map[string]any) {
	for k, v := range body {
		switch k {
		case "users":
			for pk := range st.member(g.id) {
				delete(st.members[g.id], pk)
			}
			for _, pk := range intList(v) {
				st.member(g.id)[pk] = true
			}
		case "roles":
		default:
			g.f[k] = v
		}
	}
}

func (s *Server) groupsCreate(c *call) (int, any) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if code, body := st.checkGroup(nil, c.body); code != 0 {
		return code, body
	}
	g := st.newGroup(c.body)
	return http.StatusCreated, st.renderGroup(g, c)
}

// newGroup stores a checked group; callers hold st.mu.
func (st *store) newGroup(body map[string]any) *record {
	f := map[string]any{"is_superuser": false, "parents": []any{}, "attributes": map[string]any{}}
	g := st.add(st.groups, uuid.NewString(), nextNum(st.groups), f)
	st.writeGroupFields(g, body)
	return g
}

func (s *Server) groupsUpdate(c *call) (int, any) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	g := st.groups[c.params["group_uuid"]]
	if g == nil {
		return errNotFound("Group")
	}
	if code, body := st.checkGroup(g, c.body); code != 0 {
		return code, body
	}
	st.writeGroupFields(g, c.body)
	return http.StatusOK, st.renderGroup(g, c)
}

func (s *Server) groupsDestroy(c *call) (int, any) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	id := c.params["group_uuid"]
	if st.groups[id] == nil {
		return errNotFound("Group")
	}
	delete(st.groups, id)
	delete(st.members, id)
	for _, g := range st.groups {
		ps := strList(g.f["parents"])
		if i := slices.Index(ps, id); i >= 0 {
			g.f["parents"] = anyList(slices.Delete(ps, i, i+1))
		}
	}
	for bid, b := range st.bindings {
		if str(b.f["group"]) == id {
			delete(st.bindings, bid)
		}
	}
	return http.StatusNoContent, nil
}

func (s *Server) groupsAddUser(c *call) (int, any)    { return s.groupMembership(c, true) }
func (s *Server) groupsRemoveUser(c *call) (int, any) { return s.groupMembership(c, false) }

// groupMembership adds or removes the user given as {"pk": N}; an unknown
// user is 404 (no body), as documented.
func (s *Server) groupMembership(c *call, add bool) (int, any) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	g := st.groups[c.params["group_uuid"]]
	if g == nil {
		return errNotFound("Group")
	}
	pk, _ := intOf(c.body["pk"])
	if st.userByPK(pk) == nil {
		return http.StatusNotFound, nil
	}
	if add {
		st.member(g.id)[pk] = true
	} else {
		delete(st.member(g.id), pk)
	}
	return http.StatusNoContent, nil
}
