package reconcile

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/akminio/akminio/config"
)

// ScopeMappingDescription is the description akminio writes on its scope mapping, so that
// whoever opens it in authentik's admin interface knows not to edit it by hand.
const ScopeMappingDescription = "Managed by akminio: MinIO policies from authentik group membership. Changes here are overwritten."

// NewDesired builds the desired state from a validated config: it renders the scope
// mapping's expression, normalises every declared policy document and derives the
// identity_openid settings. It fails only on a policy document that cannot be normalised
// (or is missing), naming the policy.
func NewDesired(cfg *config.Config) (*Desired, error) {
	if cfg == nil {
		return nil, errors.New("desired state: no config")
	}
	ak := cfg.Authentik
	d := &Desired{
		Feeds: NewDesiredFeeds(cfg),
		ScopeMapping: ScopeMapping{
			Name:        ak.ScopeMapping.Name,
			ScopeName:   ak.ScopeMapping.Scope,
			Expression:  RenderExpression(cfg.Bindings, cfg.Match, ak.ScopeMapping.Claim),
			Description: ScopeMappingDescription,
		},
		Provider: Provider{
			Name:              ak.Provider.Name,
			ClientID:          ak.Provider.ClientID,
			RedirectURIs:      slices.Clone(ak.Provider.RedirectURIs),
			SigningKey:        ak.Provider.SigningKey,
			AuthorizationFlow: ak.Provider.AuthorizationFlow,
			InvalidationFlow:  ak.Provider.InvalidationFlow,
			Scopes:            slices.Clone(ak.Provider.Scopes),
		},
		Application: Application{
			Slug:      ak.Application.Slug,
			Name:      ak.Application.Name,
			LaunchURL: ak.Application.LaunchURL,
		},
		CreateGroups:   ak.CreateGroups,
		RestrictAccess: ak.RestrictAccess,
		Policies:       map[string][]byte{},
		OpenID:         desiredOpenIDConfig(cfg),
		Prune:          cfg.Prune,
		Restart:        cfg.MinIO.Restart,
		Bindings:       slices.Clone(cfg.Bindings),
		Match:          cfg.Match,
	}
	for _, b := range cfg.Bindings {
		if !b.Everyone {
			d.Groups = appendUnique(d.Groups, b.Group)
		}
		for _, p := range b.Policies {
			d.BoundPolicies = appendUnique(d.BoundPolicies, p)
		}
	}
	names := make([]string, 0, len(cfg.Policies))
	for name := range cfg.Policies {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		p := cfg.Policies[name]
		if p.External {
			d.ExternalPolicies = append(d.ExternalPolicies, name)
			continue
		}
		doc, err := policyDocument(p)
		if err == nil {
			doc, err = NormalizePolicy(doc)
		}
		if err != nil {
			return nil, fmt.Errorf("policies.%s: %w", name, err)
		}
		d.Policies[name] = doc
	}
	return d, nil
}

// policyDocument is the declared document: as loaded, or marshalled from an inline one.
func policyDocument(p config.Policy) ([]byte, error) {
	if len(p.JSON) > 0 {
		return p.JSON, nil
	}
	if p.Document != nil {
		b, err := json.Marshal(p.Document)
		if err != nil {
			return nil, fmt.Errorf("encode document: %w", err)
		}
		return b, nil
	}
	return nil, errors.New("no document loaded (neither file nor document)")
}

// desiredOpenIDConfig derives the identity_openid target from the config.
func desiredOpenIDConfig(cfg *config.Config) OpenIDSettings {
	o := cfg.MinIO.OpenID
	return OpenIDSettings{
		Target:      o.ConfigTarget(),
		ConfigURL:   DiscoveryURL(cfg.Authentik.URL, cfg.Authentik.Application.Slug),
		ClaimName:   o.ClaimName,
		Scopes:      slices.Clone(o.Scopes),
		DisplayName: o.DisplayName,
		RedirectURI: o.RedirectURI,
	}
}

// DiscoveryURL is authentik's OpenID discovery document for an application.
func DiscoveryURL(authentikURL, slug string) string {
	return strings.TrimRight(authentikURL, "/") + "/application/o/" + slug + "/.well-known/openid-configuration"
}

// appendUnique appends s unless list already holds it.
func appendUnique(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}
