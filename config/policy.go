package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/minio/pkg/v3/policy"
)

// IAMPolicyVersion is the only policy language version MinIO accepts.
const IAMPolicyVersion = "2012-10-17"

// IsBuiltinPolicy reports whether name is one of MinIO's built-in policies.
func IsBuiltinPolicy(name string) bool { return slices.Contains(BuiltinPolicies, name) }

// loadPolicies checks each declared policy's shape and sets Policy.JSON for the ones
// akminio owns (file or document), normalised: "Statement" is always a list, because MinIO
// rejects a single statement object.
func loadPolicies(c *Config, p *problems) {
	names := make([]string, 0, len(c.Policies))
	for name := range c.Policies {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		pol := c.Policies[name]
		key := "policies." + name
		checkPolicyName(name, key, p)
		hasFile, hasDoc := pol.File != "", pol.Document != nil
		switch {
		case pol.External && (hasFile || hasDoc):
			p.add(key, "an external policy is managed elsewhere: remove file and document")
			continue
		case pol.External:
			continue
		case hasFile && hasDoc:
			p.add(key, "set file or document, not both")
			continue
		case !hasFile && !hasDoc:
			p.add(key, "needs file or document (or external: true for a policy managed elsewhere)")
			continue
		}
		var raw []byte
		srcKey := key + ".document"
		if hasFile {
			srcKey = key + ".file"
			b, ok := readPolicyFile(pol.File, c.shownPath(srcKey, pol.File), srcKey, p)
			if !ok {
				continue
			}
			raw = b
		} else {
			b, err := json.Marshal(pol.Document)
			if err != nil {
				p.add(srcKey, "cannot be written as JSON: %v", err)
				continue
			}
			raw = b
		}
		doc, err := ParsePolicy(raw)
		if err != nil {
			p.add(srcKey, "%v", err)
			continue
		}
		pol.JSON = doc
		c.Policies[name] = pol
	}
}

// checkPolicyName rejects names that MinIO or the policy claim cannot carry.
func checkPolicyName(name, key string, p *problems) {
	switch {
	case strings.TrimSpace(name) == "":
		p.add(key, "a policy name cannot be empty")
	case IsBuiltinPolicy(name):
		p.add(key, "%q is a built-in MinIO policy; use it in bindings without declaring it", name)
	case strings.Contains(name, ","):
		p.add(key, "a policy name cannot contain a comma (MinIO splits the claim on commas)")
	}
}

// readPolicyFile reads a policy file; shown is the name used in messages.
func readPolicyFile(path, shown, key string, p *problems) ([]byte, bool) {
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		p.add(key, "%s does not exist", shown)
		return nil, false
	case err != nil:
		p.add(key, "cannot read %s: %v", shown, unwrapPath(err))
		return nil, false
	}
	return b, true
}

// ParsePolicy checks that doc is an IAM policy MinIO accepts (Version 2012-10-17, a
// Statement list or single statement, each with a valid Effect, Action, Resource, ...) and
// returns it as compact JSON with "Statement" always a list.
func ParsePolicy(doc []byte) ([]byte, error) {
	var top map[string]any
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if err := dec.Decode(&top); err != nil {
		return nil, fmt.Errorf("not valid JSON: %v", err)
	}
	if top == nil {
		return nil, errors.New("not an IAM policy: the document must be a JSON object")
	}
	for k := range top {
		if k != "Version" && k != "Statement" && k != "Id" && k != "ID" {
			return nil, fmt.Errorf("not an IAM policy: unknown field %q (a policy has Version, Statement and Id)", k)
		}
	}
	if v, ok := top["Version"]; !ok {
		return nil, fmt.Errorf("not an IAM policy: Version is missing (use %q)", IAMPolicyVersion)
	} else if v != IAMPolicyVersion {
		return nil, fmt.Errorf("not an IAM policy: Version must be %q", IAMPolicyVersion)
	}
	switch st := top["Statement"].(type) {
	case nil:
		return nil, errors.New("not an IAM policy: Statement is missing")
	case map[string]any:
		top["Statement"] = []any{st}
	case []any:
		if len(st) == 0 {
			return nil, errors.New("not an IAM policy: Statement is empty")
		}
	default:
		return nil, errors.New("not an IAM policy: Statement must be a list of statements or one statement")
	}
	if err := checkStatementFields(top["Statement"].([]any)); err != nil {
		return nil, err
	}
	norm, err := json.Marshal(top)
	if err != nil {
		return nil, fmt.Errorf("not an IAM policy: %v", err)
	}
	if _, err := policy.ParseConfig(bytes.NewReader(norm)); err != nil {
		return nil, fmt.Errorf("not an IAM policy: %v", err)
	}
	return norm, nil
}

// statementFields are the fields of a MinIO policy statement.
var statementFields = []string{"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"}

// checkStatementFields rejects a statement field MinIO does not know. MinIO's parser drops
// such a field silently, so a misspelt "Condtion" would make the stored policy grant more
// than the one written. Field names match case-insensitively, as MinIO's do.
func checkStatementFields(statements []any) error {
	for i, st := range statements {
		m, ok := st.(map[string]any)
		if !ok {
			return fmt.Errorf("not an IAM policy: Statement[%d] must be an object", i)
		}
		for k := range m {
			if !slices.ContainsFunc(statementFields, func(f string) bool { return strings.EqualFold(f, k) }) {
				return fmt.Errorf("not an IAM policy: Statement[%d] has unknown field %q (a statement has %s); MinIO would drop it silently",
					i, k, strings.Join(statementFields, ", "))
			}
		}
	}
	return nil
}
