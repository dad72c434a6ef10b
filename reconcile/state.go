package reconcile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/akminio/akminio/internal/statedir"
)

// StateFile is akminio's own record inside state_dir. It never holds a secret.
const StateFile = "state.json"

// LoadState reads dir/state.json; a missing file is the zero State.
func LoadState(dir string) (State, error) {
	var st State
	b, err := statedir.ReadFile(filepath.Join(dir, StateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("state: read: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("state: %s: %w", filepath.Join(dir, StateFile), err)
	}
	return st, nil
}

// SaveState writes dir/state.json atomically (statedir.WriteFile).
func SaveState(dir string, st State) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("state: encode: %w", err)
	}
	if err := statedir.WriteFile(filepath.Join(dir, StateFile), append(b, '\n')); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}
