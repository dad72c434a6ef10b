package rotate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/internal/statedir"
)

// IntentFile is the rotation intent inside state_dir. It exists only while a rotation is in
// flight and is the only place akminio ever writes a client secret.
const IntentFile = "rotation.json"

// LockFile is the lock in state_dir that keeps two rotations (two processes) apart.
const LockFile = "rotate.lock"

// Steps of the protocol, persisted in the intent as it advances, and the names of the
// test-only fault points (a fault point fires right after the step is persisted).
//
//	prepared         intent written; neither side touched
//	authentik_set    authentik holds the new secret (read back)
//	minio_writing    about to write MinIO: from here MinIO's stored config may hold the new
//	                 secret although its export (what it loaded) still shows the old one
//	minio_written    MinIO's stored identity_openid holds the new secret, not loaded yet
//	minio_restarted  MinIO restarted
//	confirmed        both sides confirmed to hold the new secret
//	rolling_back     a step failed (or recovery chose the old secret); the old secret is
//	                 being put back
//
// Three more fault points are not persisted: "recorded" (secret_rotated_at written to
// state.json, intent not yet removed), "cleared" (intent removed: the rotation is over) and
// "rolled_back" (the old secret confirmed back on both sides, intent not yet removed).
const (
	StepPrepared       = "prepared"
	StepAuthentikSet   = "authentik_set"
	StepMinIOWriting   = "minio_writing"
	StepMinIOWritten   = "minio_written"
	StepMinIORestarted = "minio_restarted"
	StepConfirmed      = "confirmed"
	StepRollingBack    = "rolling_back"
	StepRecorded       = "recorded"
	StepCleared        = "cleared"
	StepRolledBack     = "rolled_back"
)

// Steps lists every fault point in the order a rotation passes them (rolling_back and
// rolled_back only on failure).
var Steps = []string{
	StepPrepared, StepAuthentikSet, StepMinIOWriting, StepMinIOWritten, StepMinIORestarted,
	StepConfirmed, StepRecorded, StepCleared, StepRollingBack, StepRolledBack,
}

// Intent is a rotation in flight, as written to state_dir/rotation.json.
type Intent struct {
	Old, New   config.Secret
	Step       string
	ProviderPK int32
	Provider   string // provider name, for messages
	Target     string // MinIO identity_openid target
	// MinIOTouched says MinIO's stored config may hold a secret that its export does not
	// show yet (a write not followed by a restart). While it is set, MinIO's export cannot
	// be trusted to say what MinIO will load at its next start, so recovery writes and
	// restarts instead of trusting a matching export.
	MinIOTouched bool
	StartedAt    time.Time
	UpdatedAt    time.Time
	// LastError is the error that started a rollback (no secret in it), for the operator.
	LastError string
}

// intentJSON is Intent's file form. The secrets are plain strings here on purpose: config.Secret
// redacts itself when marshalled, and this file is the one place the values must survive.
type intentJSON struct {
	Version      int       `json:"version"`
	Step         string    `json:"step"`
	ProviderPK   int32     `json:"provider_pk"`
	Provider     string    `json:"provider"`
	Target       string    `json:"target"`
	OldSecret    string    `json:"old_secret"`
	NewSecret    string    `json:"new_secret"`
	MinIOTouched bool      `json:"minio_touched"`
	StartedAt    time.Time `json:"started_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	LastError    string    `json:"last_error,omitempty"`
}

const intentVersion = 1

// IntentPath is the intent file of state directory dir.
func IntentPath(dir string) string { return filepath.Join(dir, IntentFile) }

// LoadIntent reads dir/rotation.json; (nil, nil) when there is none.
func LoadIntent(dir string) (*Intent, error) {
	path := IntentPath(dir)
	b, err := statedir.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("rotation intent: read: %w", err)
	}
	var j intentJSON
	const fix = "check which secret authentik's provider and MinIO hold, make them equal, remove the file and run akminio apply"
	if err := json.Unmarshal(b, &j); err != nil {
		// json's syntax errors carry offsets, never the input.
		return nil, fmt.Errorf("rotation intent %s: %w (%s)", path, err, fix)
	}
	if j.Version != intentVersion || j.OldSecret == "" || j.NewSecret == "" || j.ProviderPK == 0 || j.Target == "" {
		return nil, fmt.Errorf("rotation intent %s: incomplete or of an unknown version %d (%s)", path, j.Version, fix)
	}
	return &Intent{
		Old: config.Secret(j.OldSecret), New: config.Secret(j.NewSecret), Step: j.Step,
		ProviderPK: j.ProviderPK, Provider: j.Provider, Target: j.Target,
		MinIOTouched: j.MinIOTouched, StartedAt: j.StartedAt, UpdatedAt: j.UpdatedAt,
		LastError: j.LastError,
	}, nil
}

// saveIntent writes in to dir/rotation.json atomically (0600, file and folder fsynced).
func saveIntent(dir string, in *Intent) error {
	b, err := json.MarshalIndent(intentJSON{
		Version: intentVersion, Step: in.Step, ProviderPK: in.ProviderPK, Provider: in.Provider,
		Target: in.Target, OldSecret: in.Old.Reveal(), NewSecret: in.New.Reveal(),
		MinIOTouched: in.MinIOTouched, StartedAt: in.StartedAt, UpdatedAt: in.UpdatedAt,
		LastError: in.LastError,
	}, "", "  ")
	if err != nil {
		return fmt.Errorf("rotation intent: encode: %w", err)
	}
	if err := statedir.WriteFile(IntentPath(dir), append(b, '\n')); err != nil {
		return fmt.Errorf("rotation intent: %w", err)
	}
	return nil
}

// removeIntent deletes dir/rotation.json, and any temporary copy a crash in the middle of
// saveIntent left (it holds the secrets too), and makes the removal durable. The caller
// holds the rotation lock.
func removeIntent(dir string) error {
	if err := os.Remove(IntentPath(dir)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("rotation intent: remove: %w", err)
	}
	if err := removeTemps(dir); err != nil {
		return err
	}
	if err := statedir.SyncDir(dir); err != nil {
		return fmt.Errorf("rotation intent: %w", err)
	}
	return nil
}

// removeTemps deletes the temporary copies of the intent that a crash in the middle of
// saveIntent left in dir; the caller holds the rotation lock and syncs dir.
func removeTemps(dir string) error {
	tmps, err := statedir.TempFiles(IntentPath(dir))
	if err != nil {
		return fmt.Errorf("rotation intent: %w", err)
	}
	for _, t := range tmps {
		if err := os.Remove(t); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("rotation intent: remove the leftover %s: %w", t, err)
		}
	}
	return nil
}
