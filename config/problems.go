package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Error is an invalid or unloadable config. Every command prints Problems one per line and
// exits 78 (EX_CONFIG). Each problem starts with the key path it is about
// ("bindings[1].policies[0]: ...") or, for a file that cannot be read or parsed, the file.
type Error struct {
	Problems []string
}

// Error implements error: the problems, one per line.
func (e *Error) Error() string { return strings.Join(e.Problems, "\n") }

// Warning is something worth telling the operator that does not make the config invalid,
// such as a secret file readable by others or a secret file that does not exist (yet).
type Warning struct {
	Key     string // key path or environment variable it is about
	Message string
}

// String renders the warning as "key: message".
func (w Warning) String() string { return w.Key + ": " + w.Message }

// problem is one validation finding, kept apart until the end so the output can be sorted.
type problem struct {
	key string
	msg string
}

// problems accumulates findings; the zero value is ready to use.
type problems struct {
	list    []problem
	skipped map[string]bool
}

// add records a finding, unless key (or a key above it) already failed to decode.
func (p *problems) add(key, format string, args ...any) {
	for k := range p.skipped {
		if key == k || strings.HasPrefix(key, k+".") || strings.HasPrefix(key, k+"[") {
			return
		}
	}
	p.list = append(p.list, problem{key: key, msg: fmt.Sprintf(format, args...)})
}

// skip silences later findings about key and everything under it: a key whose value could
// not be decoded is reported once, not again as "missing" or "out of range".
func (p *problems) skip(key string) {
	if p.skipped == nil {
		p.skipped = map[string]bool{}
	}
	p.skipped[key] = true
}

// err returns nil when nothing was found, otherwise an *Error with the findings sorted by
// key path (list indices compared as numbers) and deduplicated.
func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	sort.SliceStable(p.list, func(i, j int) bool { return keyLess(p.list[i].key, p.list[j].key) })
	e := &Error{}
	seen := map[string]bool{}
	for _, pr := range p.list {
		line := pr.key + ": " + pr.msg
		if pr.key == "" {
			line = pr.msg
		}
		if !seen[line] {
			seen[line] = true
			e.Problems = append(e.Problems, line)
		}
	}
	return e
}

// keyLess orders key paths segment by segment, comparing "[12]" indices numerically so
// bindings[2] comes before bindings[10].
func keyLess(a, b string) bool {
	as, bs := splitKey(a), splitKey(b)
	for i := 0; i < len(as) && i < len(bs); i++ {
		if as[i] == bs[i] {
			continue
		}
		ai, aerr := strconv.Atoi(as[i])
		bi, berr := strconv.Atoi(bs[i])
		if aerr == nil && berr == nil {
			return ai < bi
		}
		return as[i] < bs[i]
	}
	return len(as) < len(bs)
}

// splitKey splits "a.b[3].c" into ["a", "b", "3", "c"].
func splitKey(k string) []string {
	return strings.FieldsFunc(k, func(r rune) bool { return r == '.' || r == '[' || r == ']' })
}
