package adopt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/reconcile"
)

// ManagedScopePrefix is the managed name of authentik's built-in scope mappings, followed
// by the scope.
const ManagedScopePrefix = "goauthentik.io/providers/oauth2/scope-"

// Options changes what Build writes.
type Options struct {
	// OwnPolicies declares the custom MinIO policies no binding uses as akminio's own (a
	// file each), instead of external: true.
	OwnPolicies bool
}

// Import is what Build made: the config file's text, the policy files beside it, and
// what the operator must know.
type Import struct {
	Config []byte
	// Files are the policy documents (and moved secrets), path relative to the output
	// folder -> content and mode.
	Files []File
	// Problems are what keeps the result from reproducing today's access exactly, each
	// one line (or a few): the expression lines not read, mappings akminio would detach.
	// With any, the config is written in report mode, to be reviewed.
	Problems []string
	// Notes are differences plan will show besides the expression, and other facts.
	Notes   []string
	Reading Reading
	Mapping Mapping // the scope mapping that was read
	Target  string  // the identity_openid target
}

// File is one file to write beside the config.
type File struct {
	Path    string
	Content []byte
	Mode    uint32
}

// ImportError is an estate import cannot make a config from at all (nothing is written).
type ImportError struct{ Msg string }

func (e *ImportError) Error() string { return e.Msg }

// Build makes a complete config from the connection config conn (URLs, credentials,
// application slug) and what authentik and MinIO hold, such that plan on it shows no
// drift but the scope mapping's rendering when the expression was read.
func Build(conn *config.Config, ak AuthentikEstate, mc MinIOEstate, opt Options) (*Import, error) {
	out := &Import{}
	if ak.Provider == nil {
		return nil, &ImportError{fmt.Sprintf("application %q has no OAuth2/OpenID provider: nothing to adopt (run akminio apply with a config instead)", ak.Application.Slug)}
	}
	target, oid, err := pickTarget(conn, ak.Application.Slug, mc)
	if err != nil {
		return nil, err
	}
	out.Target = target
	claim := oid.ClaimName
	if claim == "" {
		claim = "policy" // MinIO's default
	}
	minioScopes := splitScopes(oid.Scopes)

	var builtin []string
	var custom []Mapping
	for _, m := range ak.Mappings {
		if scope, ok := strings.CutPrefix(m.Managed, ManagedScopePrefix); ok && m.Managed != "" {
			if slices.Contains(config.KnownProviderScopes, scope) {
				builtin = append(builtin, scope)
				continue
			}
		}
		if m.Managed != "" {
			out.Problems = append(out.Problems, fmt.Sprintf("the provider has the built-in mapping %q (%s), which akminio does not attach: plan would detach it", m.Name, m.Managed))
			continue
		}
		custom = append(custom, m)
	}
	var mapping Mapping
	switch {
	case len(custom) == 0:
		return nil, &ImportError{fmt.Sprintf("provider %q has no scope mapping of its own (only built-in ones): nothing to read the bindings from", ak.Provider.Name)}
	default:
		i := slices.IndexFunc(custom, func(m Mapping) bool { return slices.Contains(minioScopes, m.ScopeName) })
		if i < 0 {
			i = 0
			out.Problems = append(out.Problems, fmt.Sprintf("no scope mapping of provider %q has a scope MinIO asks for (%s): its claims never reach MinIO today", ak.Provider.Name, oid.Scopes))
		}
		mapping = custom[i]
		for j, m := range custom {
			if j != i {
				out.Problems = append(out.Problems, fmt.Sprintf("the provider has a second scope mapping of its own, %q (scope %q): akminio manages one, and plan would detach this one", m.Name, m.ScopeName))
			}
		}
	}
	out.Mapping = mapping

	r := ReadExpression(mapping.Expression, claim)
	out.Reading = r
	for _, p := range r.Problems {
		out.Problems = append(out.Problems, fmt.Sprintf("scope mapping %q, %s", mapping.Name, p))
	}
	for _, g := range r.DirectGroups {
		if kids := children(ak.Groups, g); len(kids) > 0 && len(r.Problems) == 0 {
			out.Problems = append(out.Problems, fmt.Sprintf("scope mapping %q tests direct membership of %q (request.user.groups or ak_groups), but %q has child groups (%s) whose members bindings would include", mapping.Name, g, g, strings.Join(kids, ", ")))
		}
	}
	for _, g := range r.Groups {
		if !slices.ContainsFunc(ak.Groups, func(x Group) bool { return x.Name == g }) && bound(r.Bindings, g) {
			out.Notes = append(out.Notes, fmt.Sprintf("group %q, named by the expression, does not exist in authentik: plan reports it", g))
		}
	}

	bindings := r.Bindings
	if len(r.Problems) > 0 {
		bindings = nil
	}
	pols, files, notes := policies(mc.Policies, bindings, opt)
	out.Files = append(out.Files, files...)
	out.Notes = append(out.Notes, notes...)
	out.Notes = append(out.Notes, providerNotes(ak.Provider, oid)...)
	if ak.Bindings > 0 {
		out.Notes = append(out.Notes, fmt.Sprintf("application %q has %d policy binding(s) made by hand that decide who may use it; akminio leaves them (restrict_access: false)", ak.Application.Slug, ak.Bindings))
	}

	w := &configWriter{conn: conn, ak: ak, oid: oid, target: target, claim: claim, mapping: mapping,
		builtin: builtin, policies: pols, bindings: bindings, match: r.Match, reading: r,
		review: len(out.Problems) > 0, problems: out.Problems}
	out.Config, err = w.write()
	if err != nil {
		return nil, err
	}
	out.Files = append(out.Files, w.files...)
	return out, nil
}

func bound(bs []config.Binding, g string) bool {
	return slices.ContainsFunc(bs, func(b config.Binding) bool { return b.Group == g })
}

// pickTarget finds the identity_openid target that points at the application: the one the
// connection config names, else the one whose config_url is the application's discovery
// URL (any host: MinIO may reach authentik under another name).
func pickTarget(conn *config.Config, slug string, mc MinIOEstate) (string, *reconcile.ObservedOpenIDTarget, error) {
	suffix := "/application/o/" + slug + "/.well-known/openid-configuration"
	if conn.MinIO.OpenID.ConfigName != "" {
		t := conn.MinIO.OpenID.ConfigTarget()
		if o := mc.Targets[t]; o != nil {
			return t, o, nil
		}
		return "", nil, &ImportError{fmt.Sprintf("MinIO has no %s with a config_url (minio.openid.config_name)", t)}
	}
	var found []string
	for t, o := range mc.Targets {
		if strings.HasSuffix(strings.TrimRight(o.ConfigURL, "/"), suffix) || strings.HasSuffix(o.ConfigURL, suffix) {
			found = append(found, t)
		}
	}
	slices.Sort(found) // "identity_openid" sorts before "identity_openid:NAME"
	switch {
	case len(found) == 0:
		return "", nil, &ImportError{fmt.Sprintf("no identity_openid target in MinIO has a config_url ending in %s (set minio.openid.config_name to pick one)", suffix)}
	case len(found) > 1 && found[0] != "identity_openid":
		return "", nil, &ImportError{fmt.Sprintf("several identity_openid targets point at application %q (%s): set minio.openid.config_name to pick one", slug, strings.Join(found, ", "))}
	}
	return found[0], mc.Targets[found[0]], nil
}

func splitScopes(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// children lists the names of the groups whose parents include the group named name.
func children(groups []Group, name string) []string {
	var pks []string
	for _, g := range groups {
		if g.Name == name {
			pks = append(pks, g.PK)
		}
	}
	var out []string
	for _, g := range groups {
		if slices.ContainsFunc(g.Parents, func(p string) bool { return slices.Contains(pks, p) }) {
			out = append(out, g.Name)
		}
	}
	slices.Sort(out)
	return out
}

// declaredPolicy is how the config declares one custom policy.
type declaredPolicy struct {
	name     string
	file     string // relative path, "" for external
	external bool
	comment  string
}

// policies declares every custom MinIO policy: bound ones (and all with OwnPolicies) as
// files akminio owns, the others external. A bound policy MinIO does not have is declared
// external too (akminio never invents one). Each document is written to policies/.
func policies(have map[string][]byte, bindings []config.Binding, opt Options) ([]declaredPolicy, []File, []string) {
	var boundNames []string
	for _, b := range bindings {
		for _, p := range b.Policies {
			if !slices.Contains(boundNames, p) {
				boundNames = append(boundNames, p)
			}
		}
	}
	var names []string
	for n := range have {
		if !config.IsBuiltinPolicy(n) {
			names = append(names, n)
		}
	}
	for _, n := range boundNames {
		if _, ok := have[n]; !ok && !config.IsBuiltinPolicy(n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	var out []declaredPolicy
	var files []File
	var notes []string
	used := map[string]bool{}
	for _, n := range names {
		doc, exists := have[n]
		isBound := slices.Contains(boundNames, n)
		d := declaredPolicy{name: n}
		if !exists {
			d.external = true
			d.comment = "named by the expression but missing in MinIO"
			notes = append(notes, fmt.Sprintf("policy %q, named by the expression, does not exist in MinIO: declared external, plan reports it missing", n))
			out = append(out, d)
			continue
		}
		file := policyFileName(n, used)
		pretty, err := prettyJSON(doc)
		if err != nil {
			pretty = doc
		}
		files = append(files, File{Path: file, Content: pretty, Mode: 0o644})
		_, parseErr := config.ParsePolicy(doc)
		switch {
		case parseErr != nil:
			d.external, d.comment = true, "akminio cannot read its document ("+parseErr.Error()+"); copy in "+file
			notes = append(notes, fmt.Sprintf("policy %q: %v; declared external", n, parseErr))
		case isBound || opt.OwnPolicies:
			d.file = file
		default:
			d.external, d.comment = true, "no binding uses it; its document is saved in "+file
		}
		out = append(out, d)
	}
	return out, files, notes
}

// policyFileName is policies/<name>.json with any character outside [A-Za-z0-9._-]
// replaced, made unique.
func policyFileName(name string, used map[string]bool) string {
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, name)
	safe = strings.TrimLeft(safe, ".")
	if safe == "" {
		safe = "policy"
	}
	file := path.Join("policies", safe+".json")
	for i := 2; used[file]; i++ {
		file = path.Join("policies", fmt.Sprintf("%s-%d.json", safe, i))
	}
	used[file] = true
	return file
}

func prettyJSON(doc []byte) ([]byte, error) {
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// providerNotes names the managed fields plan will change on the provider and in MinIO.
func providerNotes(p *Provider, oid *reconcile.ObservedOpenIDTarget) []string {
	var notes []string
	if p.ClientType != reconcile.ClientTypeConfidential {
		notes = append(notes, fmt.Sprintf("provider %q is %s: akminio makes it confidential (plan: client_type differs)", p.Name, p.ClientType))
	}
	if !sameSet(p.GrantTypes, reconcile.ProviderGrantTypes) {
		notes = append(notes, fmt.Sprintf("provider %q has grant types %v: akminio sets %v (plan: grant_types differ)", p.Name, p.GrantTypes, reconcile.ProviderGrantTypes))
	}
	for _, u := range p.RedirectURIs {
		if u.MatchingMode != reconcile.MatchingModeStrict {
			notes = append(notes, fmt.Sprintf("provider %q matches redirect URI %q by %s: akminio matches strictly (plan: redirect_uris differ)", p.Name, u.URL, u.MatchingMode))
		}
	}
	if p.SigningKey == "" {
		notes = append(notes, fmt.Sprintf("provider %q has no signing key: tokens are signed with the client secret, so secret rotation is off (schedule.rotate_secret: \"\")", p.Name))
	}
	if oid.Enable == "off" {
		notes = append(notes, "identity_openid is disabled in MinIO: akminio enables it (plan: enable differs)")
	}
	if len(oid.EnvKeys) > 0 {
		notes = append(notes, "some identity_openid keys come from MINIO_IDENTITY_OPENID_* variables; akminio cannot change those")
	}
	return notes
}

// Read reads both systems concurrently; either failing fails the whole, and nothing is
// written.
func Read(ctx context.Context, slug string, ak AuthentikReader, mc MinIOReader) (AuthentikEstate, MinIOEstate, error) {
	var ae AuthentikEstate
	var me MinIOEstate
	var akErr, mcErr error
	var wg sync.WaitGroup
	wg.Go(func() { ae, akErr = ak.ReadEstate(ctx, slug) })
	wg.Go(func() { me, mcErr = mc.ReadEstate(ctx) })
	wg.Wait()
	if err := errors.Join(akErr, mcErr); err != nil {
		return AuthentikEstate{}, MinIOEstate{}, err
	}
	return ae, me, nil
}

// ConfigFile is the name of the config Write writes.
const ConfigFile = "config.yaml"

// Write writes the config and its files under dir (created if needed). It refuses, writing
// nothing, when any of them exists already, unless force.
func Write(dir string, imp *Import, force bool) (string, error) {
	all := append([]File{{Path: ConfigFile, Content: imp.Config, Mode: 0o600}}, imp.Files...)
	if !force {
		for _, f := range all {
			p := filepath.Join(dir, filepath.FromSlash(f.Path))
			if _, err := os.Lstat(p); err == nil {
				return "", fmt.Errorf("%s exists already: give another --output-dir, or --force to overwrite", p)
			}
		}
	}
	for _, f := range all {
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", err
		}
		if err := writeAtomic(p, f.Content, os.FileMode(f.Mode)); err != nil {
			return "", err
		}
	}
	return filepath.Join(dir, ConfigFile), nil
}

// writeAtomic writes through a temporary file and a rename, so a reader never sees half.
func writeAtomic(path string, content []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(content); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
