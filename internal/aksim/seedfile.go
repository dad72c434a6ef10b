package aksim

import (
	"encoding/json"
	"fmt"
	"io"
)

// Seed is extra state to load into a fresh simulator, as read by the
// aksim command's -seed file:
//
//	{"groups": [{"name": "Minio admins"}, {"name": "ops", "parents": ["Minio admins"]}],
//	 "users":  [{"username": "alice", "email": "alice@example.com", "groups": ["ops"]}]}
//
// Groups are created in order, so a parent must come before its children.
type Seed struct {
	Groups []SeedGroup `json:"groups"`
	Users  []SeedUser  `json:"users"`
}

// SeedGroup is a group and the names of its parents.
type SeedGroup struct {
	Name    string   `json:"name"`
	Parents []string `json:"parents"`
}

// SeedUser is a user and the names of the groups it is directly in.
type SeedUser struct {
	Username string   `json:"username"`
	Email    string   `json:"email"`
	Groups   []string `json:"groups"`
}

// ReadSeed decodes a seed file strictly (unknown keys are errors).
func ReadSeed(r io.Reader) (Seed, error) {
	var s Seed
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Seed{}, fmt.Errorf("aksim: seed: %w", err)
	}
	return s, nil
}

// ApplySeed creates the seed's groups, then its users and memberships.
func (s *Server) ApplySeed(seed Seed) error {
	for i, g := range seed.Groups {
		if _, err := s.AddGroup(g.Name, g.Parents...); err != nil {
			return fmt.Errorf("seed groups[%d]: %w", i, err)
		}
	}
	for i, u := range seed.Users {
		if _, err := s.AddUser(u.Username, u.Email); err != nil {
			return fmt.Errorf("seed users[%d]: %w", i, err)
		}
		for _, g := range u.Groups {
			if err := s.AddUserToGroup(u.Username, g); err != nil {
				return fmt.Errorf("seed users[%d]: %w", i, err)
			}
		}
	}
	return nil
}
