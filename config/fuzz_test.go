package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// fuzzSecret is given through the environment; it must never appear in what Load returns.
const fuzzSecret = "fuzz-env-secret-Zq8v"

// FuzzLoad loads a fuzzed YAML file with a fuzzed AKMINIO_* variable beside a secret set
// in the environment. Load never panics; it returns a config or an *Error whose problems
// are one line each; the same input gives the same answer; and the secret is in none of
// the problems, the warnings, or the config as printed or marshalled.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/*.yaml")
	seeds = append(seeds, "../testdata/example-config.yaml")
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, "MINIO__ENDPOINT", "http://127.0.0.1:9000")
	}
	f.Add([]byte("authentik: {url: x}\n"), "BINDINGS", "[]")
	f.Add([]byte("log:\n  level: debug\n"), "LOG__LEVEL", "verbose")
	f.Add([]byte("a\nb: 1\n"), "AUTHENTIK__PROVIDER__CLIENT_ID", "")
	f.Fuzz(func(t *testing.T, yaml []byte, envKey, envVal string) {
		if strings.Contains(string(yaml), fuzzSecret) || strings.Contains(envKey+envVal, fuzzSecret) {
			t.Skip("the input holds the secret itself")
		}
		path := filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(path, yaml, 0o600); err != nil {
			t.Fatal(err)
		}
		environ := []string{"AKMINIO_MINIO__SECRET_KEY=" + fuzzSecret, EnvPrefix + envKey + "=" + envVal}
		cfg, warnings, err := Load(path, environ)
		cfg2, warnings2, err2 := Load(path, environ)
		var shown []string
		for _, w := range warnings {
			shown = append(shown, w.String())
		}
		if err != nil {
			var cerr *Error
			if !errors.As(err, &cerr) || len(cerr.Problems) == 0 {
				t.Fatalf("Load failed without problems: %#v", err)
			}
			for _, p := range cerr.Problems {
				if strings.TrimSpace(p) == "" || strings.Contains(p, "\n") {
					t.Errorf("problem %q is empty or spans lines", p)
				}
			}
			if err2 == nil || err2.Error() != err.Error() {
				t.Fatalf("two loads differ: %v / %v", err, err2)
			}
			shown = append(shown, err.Error())
		} else {
			if cfg == nil || err2 != nil || !reflect.DeepEqual(cfg, cfg2) {
				t.Fatalf("two loads differ: %v", err2)
			}
			if cfg.MinIO.SecretKey.Reveal() != fuzzSecret && cfg.MinIO.SecretKeyFile == "" {
				t.Errorf("the environment's secret was not used: minio.secret_key is %d bytes", len(cfg.MinIO.SecretKey.Reveal()))
			}
			j, _ := json.Marshal(cfg)
			shown = append(shown, fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg), string(j))
		}
		if !reflect.DeepEqual(warnings, warnings2) {
			t.Fatalf("two loads warn differently: %v / %v", warnings, warnings2)
		}
		for _, s := range shown {
			if strings.Contains(s, fuzzSecret) {
				t.Fatalf("the secret is shown: %s", s)
			}
		}
	})
}
