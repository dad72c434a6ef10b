package reconcile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
)

// How MinIO treats a policy document, and therefore what NormalizePolicy does.
//
// MinIO (github.com/minio/pkg/v3/policy) parses every document into its own types and
// stores and returns its re-marshalled form, so bytes never survive a round trip:
//
//	element                          MinIO                              NormalizePolicy
//	key order, whitespace            re-marshalled                      sorted keys, compact
//	Statement                        must be a list                     a single object becomes [object]
//	statement order                  kept                               kept (an ordered list)
//	identical statements             dropped                            dropped (first one kept)
//	Action, NotAction, Resource,     sets: string or list in,           sorted list, duplicates removed
//	  NotResource                      list out, random order
//	Condition values                 sets, string or list in            sorted list, duplicates removed
//	Principal values                 string or list                     "*" kept; object values as sorted lists
//	empty Sid, empty ID              omitted                            omitted
//	Version                          kept as given                      kept as given
//
// PoliciesEqual compares normalised documents after two more rewrites that MinIO makes to
// condition values: scalars are compared by their text (MinIO stores a Bool condition's
// true as "true"), and IpAddress/NotIpAddress values are compared as CIDRs ("10.0.0.1" is
// "10.0.0.1/32"). A missing Version equals "" (MinIO always writes the key).

// Statement keys whose value is a set of strings.
var policySetKeys = []string{"Action", "NotAction", "Resource", "NotResource"}

// NormalizePolicy returns the canonical form of an IAM policy document (see the table
// above): compact JSON with sorted keys that MinIO accepts for AddCannedPolicy and that two
// documents with the same meaning share. It fails on a document that is not a JSON object
// with a Statement, or whose sets hold something other than strings.
func NormalizePolicy(doc []byte) ([]byte, error) {
	p, err := canonicalPolicy(doc)
	if err != nil {
		return nil, err
	}
	return marshalCanonical(p)
}

// PoliciesEqual reports whether two policy documents mean the same to MinIO. Documents
// that cannot be parsed are equal only when their bytes are.
func PoliciesEqual(a, b []byte) bool {
	ca, errA := comparablePolicy(a)
	cb, errB := comparablePolicy(b)
	if errA != nil || errB != nil {
		return bytes.Equal(a, b)
	}
	return bytes.Equal(ca, cb)
}

// comparablePolicy is the canonical form plus the rewrites only comparison needs.
func comparablePolicy(doc []byte) ([]byte, error) {
	p, err := canonicalPolicy(doc)
	if err != nil {
		return nil, err
	}
	if _, ok := p["Version"]; !ok {
		p["Version"] = ""
	}
	for _, st := range p["Statement"].([]any) {
		cond, ok := st.(map[string]any)["Condition"].(map[string]any)
		if !ok {
			continue
		}
		for op, keys := range cond {
			ip := strings.HasSuffix(strings.ToLower(op), "ipaddress")
			for key, values := range keys.(map[string]any) {
				keys.(map[string]any)[key] = comparableValues(values.([]any), ip)
			}
		}
	}
	return marshalCanonical(p)
}

// comparableValues turns condition values into sorted, unique text as MinIO stores them.
func comparableValues(values []any, ip bool) []any {
	out := make([]string, 0, len(values))
	for _, v := range values {
		s := scalarText(v)
		if ip {
			s = canonicalCIDR(s)
		}
		out = append(out, s)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	res := make([]any, len(out))
	for i, s := range out {
		res[i] = s
	}
	return res
}

// scalarText is a condition value's text: strings as they are, numbers and booleans as JSON.
func scalarText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// canonicalCIDR mirrors MinIO: an address without a prefix gets /32, then the network is
// printed as net.IPNet does. Values MinIO would reject are left as they are.
func canonicalCIDR(s string) string {
	c := s
	if !strings.Contains(c, "/") {
		c += "/32"
	}
	if _, n, err := net.ParseCIDR(c); err == nil {
		return n.String()
	}
	return s
}

// canonicalPolicy parses doc and rewrites it into the canonical form, as generic JSON.
func canonicalPolicy(doc []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("policy is not valid JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("policy has data after the JSON document")
	}
	p, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("policy is not a JSON object")
	}
	dropEmptyString(p, "ID")
	stmts, err := statementList(p["Statement"])
	if err != nil {
		return nil, err
	}
	out := make([]any, 0, len(stmts))
	seen := map[string]bool{}
	for i, s := range stmts {
		st, err := canonicalStatement(s)
		if err != nil {
			return nil, fmt.Errorf("Statement[%d]: %w", i, err)
		}
		key, _ := marshalCanonical(st)
		if seen[string(key)] {
			continue // MinIO drops identical statements
		}
		seen[string(key)] = true
		out = append(out, st)
	}
	p["Statement"] = out
	return p, nil
}

// statementList accepts a Statement list or a single Statement object.
func statementList(v any) ([]any, error) {
	switch s := v.(type) {
	case []any:
		return s, nil
	case map[string]any:
		return []any{s}, nil
	case nil:
		return nil, errors.New("policy has no Statement")
	default:
		return nil, errors.New("policy Statement is neither a list nor an object")
	}
}

// canonicalStatement normalises one statement's sets, Principal and Condition.
func canonicalStatement(v any) (map[string]any, error) {
	st, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("statement is not a JSON object")
	}
	dropEmptyString(st, "Sid")
	for _, k := range policySetKeys {
		if err := setKey(st, k); err != nil {
			return nil, err
		}
	}
	if pr, ok := st["Principal"].(map[string]any); ok {
		for k := range pr {
			if err := setKey(pr, k); err != nil {
				return nil, fmt.Errorf("Principal: %w", err)
			}
		}
	}
	if c, ok := st["Condition"]; ok {
		cond, err := canonicalCondition(c)
		if err != nil {
			return nil, err
		}
		if cond == nil {
			delete(st, "Condition")
		} else {
			st["Condition"] = cond
		}
	}
	return st, nil
}

// canonicalCondition normalises {operator: {key: value-or-list}}; nil when empty.
func canonicalCondition(v any) (map[string]any, error) {
	if v == nil {
		return nil, nil
	}
	cond, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("Condition is not a JSON object")
	}
	if len(cond) == 0 {
		return nil, nil
	}
	for op, kv := range cond {
		keys, ok := kv.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("Condition %q is not a JSON object", op)
		}
		for k, val := range keys {
			list, err := scalarSet(val)
			if err != nil {
				return nil, fmt.Errorf("Condition %q key %q: %w", op, k, err)
			}
			keys[k] = list
		}
	}
	return cond, nil
}

// setKey rewrites m[k] (a string or a list of strings) into a sorted list without
// duplicates; a missing, null or empty value removes the key, as MinIO omits it.
func setKey(m map[string]any, k string) error {
	v, ok := m[k]
	if !ok {
		return nil
	}
	var list []string
	switch s := v.(type) {
	case nil:
	case string:
		list = []string{s}
	case []any:
		for _, e := range s {
			str, ok := e.(string)
			if !ok {
				return fmt.Errorf("%s holds %v, not a string", k, e)
			}
			list = append(list, str)
		}
	default:
		return fmt.Errorf("%s is neither a string nor a list of strings", k)
	}
	if len(list) == 0 {
		delete(m, k)
		return nil
	}
	slices.Sort(list)
	list = slices.Compact(list)
	out := make([]any, len(list))
	for i, s := range list {
		out[i] = s
	}
	m[k] = out
	return nil
}

// scalarSet turns a condition value (a scalar or a list of scalars) into a list sorted by
// its JSON text, without duplicates. Types are kept: MinIO accepts what the user wrote.
func scalarSet(v any) ([]any, error) {
	list, ok := v.([]any)
	if !ok {
		list = []any{v}
	}
	type item struct {
		text string
		v    any
	}
	items := make([]item, 0, len(list))
	for _, e := range list {
		switch e.(type) {
		case string, bool, json.Number:
		default:
			return nil, fmt.Errorf("value %v is not a string, number or boolean", e)
		}
		b, _ := json.Marshal(e)
		items = append(items, item{string(b), e})
	}
	if len(items) == 0 {
		return nil, errors.New("empty value list")
	}
	slices.SortFunc(items, func(a, b item) int { return strings.Compare(a.text, b.text) })
	items = slices.CompactFunc(items, func(a, b item) bool { return a.text == b.text })
	out := make([]any, len(items))
	for i, it := range items {
		out[i] = it.v
	}
	return out, nil
}

// dropEmptyString removes m[k] when it is "" (MinIO omits an empty Sid or ID).
func dropEmptyString(m map[string]any, k string) {
	if s, ok := m[k].(string); ok && s == "" {
		delete(m, k)
	}
}

// marshalCanonical writes generic JSON compactly with sorted keys and no HTML escaping.
func marshalCanonical(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode policy: %w", err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}
