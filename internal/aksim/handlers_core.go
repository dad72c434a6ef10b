package aksim

import (
	"net/http"
	"slices"
	"strconv"

	"github.com/google/uuid"
)

// apiHandlers maps authentik operationIds to the simulator's handlers.
var apiHandlers = map[string]handler{}

func init() {
	for id, h := range map[string]handler{
		"core_users_list":                (*Server).usersList,
		"core_users_retrieve":            (*Server).usersRetrieve,
		"core_users_create":              (*Server).usersCreate,
		"core_users_partial_update":      (*Server).usersUpdate,
		"core_users_update":              (*Server).usersUpdate,
		"core_users_destroy":             (*Server).usersDestroy,
		"core_users_me_retrieve":         (*Server).usersMe,
		"core_groups_list":               (*Server).groupsList,
		"core_groups_retrieve":           (*Server).groupsRetrieve,
		"core_groups_create":             (*Server).groupsCreate,
		"core_groups_partial_update":     (*Server).groupsUpdate,
		"core_groups_update":             (*Server).groupsUpdate,
		"core_groups_destroy":            (*Server).groupsDestroy,
		"core_groups_add_user_create":    (*Server).groupsAddUser,
		"core_groups_remove_user_create": (*Server).groupsRemoveUser,
	} {
		apiHandlers[id] = h
	}
}

// renderPartialUser is the PartialUser schema.
func (st *store) renderPartialUser(u *record) map[string]any {
	return map[string]any{
		"pk": u.num, "username": u.f["username"], "name": u.f["name"], "is_active": u.f["is_active"],
		"last_login": nil, "email": u.f["email"], "attributes": u.f["attributes"], "uid": st.uid(u.num),
	}
}

// renderPartialGroup is the PartialGroup schema.
func renderPartialGroup(g *record) map[string]any {
	return map[string]any{"pk": g.id, "num_pk": g.num, "name": g.f["name"], "is_superuser": g.f["is_superuser"], "attributes": g.f["attributes"]}
}

// renderUser is the User schema.
func (st *store) renderUser(u *record, withGroups bool) map[string]any {
	out := copyMap(u.f)
	groups := st.userGroups(u.num)
	var groupsObj any
	if withGroups {
		objs := []any{}
		for _, id := range groups {
			objs = append(objs, renderPartialGroup(st.groups[id]))
		}
		groupsObj = objs
	}
	delete(out, "_uuid")
	out["pk"] = u.num
	out["uuid"] = u.id2()
	out["uid"] = st.uid(u.num)
	out["groups"] = anyList(groups)
	out["groups_obj"] = groupsObj
	out["roles"] = []any{}
	out["roles_obj"] = []any{}
	out["is_superuser"] = st.isSuperuser(u.num)
	out["avatar"] = "/static/dist/assets/images/user_default.png"
	out["date_joined"] = ts(u.created)
	out["last_updated"] = ts(u.created)
	out["password_change_date"] = ts(u.created)
	out["last_login"] = nil
	return out
}

// id2 is the uuid of a user (users are keyed by integer pk).
func (r *record) id2() string { return str(r.f["_uuid"]) }

func (s *Server) usersList(c *call) (int, any) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	withGroups, set := boolParam(c, "include_groups")
	withGroups = withGroups || !set
	var out []*record
	for _, u := range sorted(st.users, byField("username")) {
		if !userMatches(st, c, u) {
			continue
		}
		out = append(out, u)
	}
	return paginate(c, out, func(u *record) map[string]any { return st.renderUser(u, withGroups) })
}

// userMatches applies the user list filters akminio can send.
func userMatches(st *store, c *call, u *record) bool {
	for _, f := range []string{"username", "email", "name"} {
		if has(c, f) && str(u.f[f]) != qget(c, f) {
			return false
		}
	}
	if v, ok := boolParam(c, "is_active"); ok && u.f["is_active"] != v {
		return false
	}
	if has(c, "uuid") && u.id2() != qget(c, "uuid") {
		return false
	}
	if s := qget(c, "search"); s != "" && !containsFold(str(u.f["username"]), s) &&
		!containsFold(str(u.f["name"]), s) && !containsFold(str(u.f["email"]), s) {
		return false
	}
	if names := c.r.URL.Query()["groups_by_name"]; len(names) > 0 {
		found := false
		for _, id := range st.userGroups(u.num) {
			found = found || slices.Contains(names, str(st.groups[id].f["name"]))
		}
		if !found {
			return false
		}
	}
	return true
}

func (s *Server) userFromPath(c *call) *record {
	pk, _ := strconv.Atoi(c.params["id"])
	return s.st.userByPK(pk)
}

func (s *Server) usersRetrieve(c *call) (int, any) {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	u := s.userFromPath(c)
	if u == nil {
		return errNotFound("User")
	}
	return http.StatusOK, s.st.renderUser(u, true)
}

func (s *Server) usersMe(c *call) (int, any) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	u := st.userByPK(s.tokenUser(c.r))
	groups := []any{}
	for _, id := range st.userGroups(u.num) {
		groups = append(groups, map[string]any{"pk": id, "name": st.groups[id].f["name"]})
	}
	self := map[string]any{
		"pk": u.num, "username": u.f["username"], "name": u.f["name"], "is_active": u.f["is_active"],
		"is_superuser": st.isSuperuser(u.num), "groups": groups, "roles": []any{}, "email": u.f["email"],
		"avatar": "/static/dist/assets/images/user_default.png", "uid": st.uid(u.num), "settings": map[string]any{},
		"type": u.f["type"], "system_permissions": []any{},
	}
	return http.StatusOK, map[string]any{"user": self}
}

func (s *Server) usersCreate(c *call) (int, any) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if find(st.users, "username", str(c.body["username"])) != nil {
		return errField("username", "This field must be unique.")
	}
	if code, body := st.checkGroupRefs(c.body["groups"]); code != 0 {
		return code, body
	}
	u := st.newUser(c.body)
	return http.StatusCreated, st.renderUser(u, true)
}

// newUser stores a user from writable fields; callers hold st.mu and have
// checked uniqueness and references.
func (st *store) newUser(body map[string]any) *record {
	f := map[string]any{"name": "", "is_active": true, "email": "", "attributes": map[string]any{},
		"path": "users", "type": "internal", "_uuid": uuid.NewString()}
	groups := body["groups"]
	delete(body, "groups")
	delete(body, "roles")
	delete(body, "last_login")
	for k, v := range body {
		f[k] = v
	}
	n := nextNum(st.users)
	u := st.add(st.users, strconv.Itoa(n), n, f)
	st.setUserGroups(n, strList(groups))
	return u
}

// setUserGroups replaces a user's direct group memberships.
func (st *store) setUserGroups(pk int, groups []string) {
	for _, m := range st.members {
		delete(m, pk)
	}
	for _, g := range groups {
		st.member(g)[pk] = true
	}
}

// member returns (creating) the member set of a group.
func (st *store) member(group string) map[int]bool {
	if st.members[group] == nil {
		st.members[group] = map[int]bool{}
	}
	return st.members[group]
}

// checkGroupRefs rejects unknown group uuids as DRF's related field does.
func (st *store) checkGroupRefs(v any) (int, any) {
	for _, id := range strList(v) {
		if st.groups[id] == nil {
			return errField("groups", `Invalid pk "`+id+`" - object does not exist.`)
		}
	}
	return 0, nil
}

func (s *Server) usersUpdate(c *call) (int, any) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	u := s.userFromPath(c)
	if u == nil {
		return errNotFound("User")
	}
	if name, ok := c.body["username"]; ok {
		if o := find(st.users, "username", str(name)); o != nil && o != u {
			return errField("username", "This field must be unique.")
		}
	}
	if g, ok := c.body["groups"]; ok {
		if code, body := st.checkGroupRefs(g); code != 0 {
			return code, body
		}
		st.setUserGroups(u.num, strList(g))
	}
	for k, v := range c.body {
		if k != "groups" && k != "roles" && k != "last_login" {
			u.f[k] = v
		}
	}
	return http.StatusOK, st.renderUser(u, true)
}

func (s *Server) usersDestroy(c *call) (int, any) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	u := s.userFromPath(c)
	if u == nil {
		return errNotFound("User")
	}
	st.setUserGroups(u.num, nil)
	delete(st.users, u.id)
	for id, b := range st.bindings {
		if n, ok := intOf(b.f["user"]); ok && n == u.num {
			delete(st.bindings, id)
		}
	}
	return http.StatusNoContent, nil
}
