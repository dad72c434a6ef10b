package aksim

import (
	"fmt"
	"slices"
)

// AddUser creates an active internal user and returns its pk. It is the
// Go shortcut for POST /api/v3/core/users/; a taken username is an error.
func (s *Server) AddUser(username, email string) (int, error) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if find(st.users, "username", username) != nil {
		return 0, fmt.Errorf("aksim: add user %q: username taken", username)
	}
	return st.newUser(map[string]any{"username": username, "name": username, "email": email}).num, nil
}

// AddGroup creates a group under the named parents (each must exist) and
// returns its uuid.
func (s *Server) AddGroup(name string, parents ...string) (string, error) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if find(st.groups, "name", name) != nil {
		return "", fmt.Errorf("aksim: add group %q: name taken", name)
	}
	ids := []any{}
	for _, p := range parents {
		g := find(st.groups, "name", p)
		if g == nil {
			return "", fmt.Errorf("aksim: add group %q: parent group %q does not exist", name, p)
		}
		ids = append(ids, g.id)
	}
	return st.newGroup(map[string]any{"name": name, "parents": ids}).id, nil
}

// AddUserToGroup makes the user a direct member of the group.
func (s *Server) AddUserToGroup(username, group string) error {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	u := find(st.users, "username", username)
	if u == nil {
		return fmt.Errorf("aksim: add %q to group %q: %w: user", username, group, ErrNotFound)
	}
	g := find(st.groups, "name", group)
	if g == nil {
		return fmt.Errorf("aksim: add %q to group %q: %w: group", username, group, ErrNotFound)
	}
	st.member(g.id)[u.num] = true
	return nil
}

// UserPK returns the pk of a user by username.
func (s *Server) UserPK(username string) (int, bool) {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	if u := find(s.st.users, "username", username); u != nil {
		return u.num, true
	}
	return 0, false
}

// GroupUUID returns the uuid of a group by name.
func (s *Server) GroupUUID(name string) (string, bool) {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	if g := find(s.st.groups, "name", name); g != nil {
		return g.id, true
	}
	return "", false
}

// GroupMembers returns the usernames of a group's direct members, sorted.
func (s *Server) GroupMembers(name string) []string {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	g := find(st.groups, "name", name)
	if g == nil {
		return nil
	}
	out := []string{}
	for _, pk := range st.groupUsers(g.id) {
		out = append(out, str(st.userByPK(pk).f["username"]))
	}
	slices.Sort(out)
	return out
}
