package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/invalid/*.err from the current output")

// TestInvalidConfigs loads every testdata/invalid/*.yaml and compares the problems, line by
// line, with the .err file beside it.
func TestInvalidConfigs(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 15 {
		t.Fatalf("found %d invalid configs, want at least 15", len(files))
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			cfg, _, err := Load(file, nil)
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("Load = %v, %v; want an *Error", cfg, err)
			}
			got := strings.Join(cerr.Problems, "\n") + "\n"
			golden := strings.TrimSuffix(file, ".yaml") + ".err"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("problems differ from %s\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
			for _, line := range cerr.Problems {
				if strings.Contains(line, "\n") {
					t.Errorf("problem spans lines: %q", line)
				}
			}
		})
	}
}

// TestValidConfigs loads every testdata/valid/*.yaml and the repository's example.
func TestValidConfigs(t *testing.T) {
	files, _ := filepath.Glob("testdata/valid/*.yaml")
	files = append(files, "../testdata/example-config.yaml")
	for _, file := range files {
		if _, _, err := Load(file, nil); err != nil {
			t.Errorf("%s: %v", file, err)
		}
	}
}
