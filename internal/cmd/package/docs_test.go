package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// testRefRE finds "`pkg` TestA/sub, TestB" in the last cell of a docs/operations.md row.
var testRefRE = regexp.MustCompile("`([a-z0-9/]+)` ((?:Test[A-Za-z0-9]+(?:/[^,;|]+)?(?:, )?)+)")

// TestOperationsGuideNamesRealTests: every test docs/operations.md (which the package ships)
// names exists: the function in that package's tests, and each subtest name as a t.Run or
// table-case name there (an invalid config's name as its file under config/testdata/invalid);
// and every alert it names is a rule of deploy/prometheus/akminio-alerts.yml.
func TestOperationsGuideNamesRealTests(t *testing.T) {
	const root = "../../.."
	doc, err := os.ReadFile(filepath.Join(root, "docs/operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows, refs := 0, 0
	for _, line := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(line, "| **") {
			continue
		}
		rows++
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		last := cells[len(cells)-1]
		found := testRefRE.FindAllStringSubmatch(last, -1)
		if len(found) == 0 {
			t.Errorf("row names no test: %s", cells[0])
		}
		for _, m := range found {
			pkg := m[1]
			src := testSources(t, filepath.Join(root, pkg))
			for _, name := range strings.Split(strings.TrimSuffix(m[2], ", "), ", ") {
				refs++
				parts := strings.Split(name, "/")
				if !strings.Contains(src, "func "+parts[0]+"(t *testing.T)") {
					t.Errorf("docs/operations.md names %s in %s: no such test function", parts[0], pkg)
					continue
				}
				for _, sub := range parts[1:] {
					if sub == "*" {
						continue
					}
					// t.Run turns spaces into underscores: each "_" stands for either.
					quoted := regexp.MustCompile(`"` + strings.ReplaceAll(regexp.QuoteMeta(sub), "_", "[ _]") + `"`)
					_, errFile := os.Stat(filepath.Join(root, "config/testdata/invalid", sub+".yaml"))
					if !quoted.MatchString(src) && errFile != nil {
						t.Errorf("docs/operations.md names %s in %s: no subtest %q", name, pkg, sub)
					}
				}
			}
		}
	}
	// Every alert it names is one of deploy/prometheus/akminio-alerts.yml.
	rules, err := os.ReadFile(filepath.Join(root, "deploy/prometheus/akminio-alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, alert := range regexp.MustCompile(`\bAkminio[A-Z][A-Za-z]+`).FindAllString(string(doc), -1) {
		if !strings.Contains(string(rules), "alert: "+alert+"\n") {
			t.Errorf("docs/operations.md names alert %s, which deploy/prometheus/akminio-alerts.yml lacks", alert)
		}
	}
	if rows < 8 || refs < 20 {
		t.Errorf("found %d problem rows naming %d tests; want the 8 problems of issue 13 at least", rows, refs)
	}
}

// testSources is the text of every _test.go file of a package folder.
func testSources(t *testing.T, dir string) string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	if err != nil || len(files) == 0 {
		t.Errorf("%s: no test files (%v)", dir, err)
		return ""
	}
	var b strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(data)
	}
	return b.String()
}
