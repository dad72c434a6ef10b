package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"

	api "goauthentik.io/api/v3"

	"github.com/akminio/akminio/internal/e2eenv"
	"github.com/akminio/akminio/reconcile"
)

// TestReconcile is issue 4's acceptance against the real binary, the real MinIO and the
// simulator. The subtests share one environment and run in order; each leaves it in sync.
func TestReconcile(t *testing.T) {
	s := newSuite(t) // from nothing: the first apply exits 0

	t.Run("from nothing", func(t *testing.T) { testFromNothing(t, s) })
	t.Run("drift", func(t *testing.T) {
		for _, tc := range driftCases() {
			t.Run(tc.name, func(t *testing.T) { testDrift(t, s, tc) })
		}
	})
	t.Run("policy formatting is not drift", func(t *testing.T) { testFormatting(t, s) })
	t.Run("failed observation writes nothing", func(t *testing.T) {
		for _, tc := range faultCases() {
			t.Run(tc.name, func(t *testing.T) { testFault(t, s, tc) })
		}
	})
	t.Run("restart never", func(t *testing.T) { testRestartNever(t, s) })
	t.Run("verification in report mode", func(t *testing.T) { testVerification(t, s) })
	t.Run("logins after all", func(t *testing.T) { wantLogins(t, s.env) })
	t.Run("secrets never printed", func(t *testing.T) { testNoSecrets(t, s) })
}

// testFromNothing checks what the first apply made: a second plan finds nothing, and STS
// logins give each demo user what the bindings say.
func testFromNothing(t *testing.T, s *suite) {
	s.requireInSync(t)
	snap := s.snapshotMinIO(t)
	for _, p := range []string{e2eenv.CustomPolicy, "odd-format"} {
		if _, ok := snap.Policies[p]; !ok {
			t.Errorf("policy %q missing in MinIO after apply; have %v", p, snap.names())
		}
	}
	prov := s.provider(t, e2eenv.ProviderName)
	if got := s.openIDKey(t, "client_id"); got != prov.GetClientId() {
		t.Errorf("identity_openid client_id = %q, want the provider's %q", got, prov.GetClientId())
	}
	wantLogins(t, s.env)
}

// driftCase is one kind of drift an operator introduces, and what plan must say about it.
type driftCase struct {
	name      string
	introduce func(t *testing.T, s *suite)
	// lines must each appear in the text plan (whitespace collapsed).
	lines []string
	// changes are exactly the changes of the JSON plan (fields compared as sets).
	changes []reconcile.Change
}

func driftCases() []driftCase {
	mapping := e2eenv.MappingName
	upd := func(system reconcile.System, kind reconcile.Kind, name string, fields ...string) reconcile.Change {
		return reconcile.Change{System: system, Action: reconcile.ActionUpdate, Kind: kind, Name: name, Fields: fields,
			RestartRequired: kind == reconcile.KindOpenID}
	}
	provider := func(fields ...string) reconcile.Change {
		return upd(reconcile.SystemAuthentik, reconcile.KindProvider, e2eenv.ProviderName, fields...)
	}
	return []driftCase{{
		name: "expression edited",
		introduce: func(t *testing.T, s *suite) {
			s.patchMapping(t, mapping, api.PatchedScopeMappingRequest{Expression: ptr(`return {"policy": "consoleAdmin"}`)})
		},
		lines:   []string{`authentik update scope mapping "OIDC-Scope-minio": expression differs`},
		changes: []reconcile.Change{upd(reconcile.SystemAuthentik, reconcile.KindScopeMapping, mapping, "expression")},
	}, {
		name: "mapping deleted",
		introduce: func(t *testing.T, s *suite) {
			done(s.ak.PropertymappingsAPI.PropertymappingsProviderScopeDestroy(context.Background(), s.mappingPK(t, mapping)).Execute())(t)
		},
		lines: []string{`authentik create scope mapping "OIDC-Scope-minio"`},
		changes: []reconcile.Change{
			{System: reconcile.SystemAuthentik, Action: reconcile.ActionCreate, Kind: reconcile.KindScopeMapping, Name: mapping},
			provider("property_mappings"),
		},
	}, {
		name: "provider redirect URI",
		introduce: func(t *testing.T, s *suite) {
			s.patchProvider(t, e2eenv.ProviderName, api.PatchedOAuth2ProviderRequest{RedirectUris: []api.RedirectURIRequest{{
				MatchingMode: api.MATCHINGMODEENUM_REGEX, Url: "https://.*", RedirectUriType: api.REDIRECTURITYPEENUM_AUTHORIZATION.Ptr(),
			}}})
		},
		lines:   []string{`authentik update provider "MinIO": redirect_uris differ`},
		changes: []reconcile.Change{provider("redirect_uris")},
	}, {
		name: "provider signing key removed",
		introduce: func(t *testing.T, s *suite) {
			s.patchProvider(t, e2eenv.ProviderName, api.PatchedOAuth2ProviderRequest{SigningKey: nullString()})
		},
		lines:   []string{`authentik update provider "MinIO": signing_key differs`},
		changes: []reconcile.Change{provider("signing_key")},
	}, {
		name: "provider flows",
		introduce: func(t *testing.T, s *suite) {
			s.patchProvider(t, e2eenv.ProviderName, api.PatchedOAuth2ProviderRequest{
				AuthorizationFlow: ptr(s.flowPK(t, "default-provider-authorization-explicit-consent")),
				InvalidationFlow:  ptr(s.flowPK(t, "default-authentication-flow")),
			})
		},
		lines:   []string{`authentik update provider "MinIO": authorization_flow differs, invalidation_flow differs`},
		changes: []reconcile.Change{provider("authorization_flow", "invalidation_flow")},
	}, {
		name: "provider property mappings",
		introduce: func(t *testing.T, s *suite) {
			s.patchProvider(t, e2eenv.ProviderName, api.PatchedOAuth2ProviderRequest{PropertyMappings: []string{
				s.builtinMappingPK(t, "openid"), s.builtinMappingPK(t, "offline_access"), s.mappingPK(t, mapping),
			}})
		},
		lines:   []string{`authentik update provider "MinIO": property_mappings differ`},
		changes: []reconcile.Change{provider("property_mappings")},
	}, {
		name: "application without provider",
		introduce: func(t *testing.T, s *suite) {
			s.patchApplication(t, e2eenv.AppSlug, api.PatchedApplicationRequest{Provider: nullInt()})
		},
		lines:   []string{`authentik update application "minio": provider differs`},
		changes: []reconcile.Change{upd(reconcile.SystemAuthentik, reconcile.KindApplication, e2eenv.AppSlug, "provider")},
	}, {
		name:      "application re-pointed to another provider",
		introduce: repointApplication,
		lines:     []string{`authentik update application "minio": provider differs`},
		changes:   []reconcile.Change{upd(reconcile.SystemAuthentik, reconcile.KindApplication, e2eenv.AppSlug, "provider")},
	}, {
		name: "policy document changed",
		introduce: func(t *testing.T, s *suite) {
			doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*"],"Resource":["arn:aws:s3:::*"]}]}`
			if err := s.adm.AddCannedPolicy(context.Background(), e2eenv.CustomPolicy, []byte(doc)); err != nil {
				t.Fatal(err)
			}
		},
		lines:   []string{`minio update policy "my-custom-policy": document differs`},
		changes: []reconcile.Change{upd(reconcile.SystemMinIO, reconcile.KindPolicy, e2eenv.CustomPolicy, "document")},
	}, {
		name: "policy deleted",
		introduce: func(t *testing.T, s *suite) {
			if err := s.adm.RemoveCannedPolicy(context.Background(), e2eenv.CustomPolicy); err != nil {
				t.Fatal(err)
			}
		},
		lines:   []string{`minio create policy "my-custom-policy"`},
		changes: []reconcile.Change{{System: reconcile.SystemMinIO, Action: reconcile.ActionCreate, Kind: reconcile.KindPolicy, Name: e2eenv.CustomPolicy}},
	}, {
		name:      "identity_openid client secret",
		introduce: func(t *testing.T, s *suite) { s.setOpenID(t, "client_secret="+operatorSecret) },
		lines:     []string{`minio update identity_openid: client_secret differs (restart required)`},
		changes:   []reconcile.Change{upd(reconcile.SystemMinIO, reconcile.KindOpenID, "identity_openid", "client_secret")},
	}, {
		// authentik's secret is the truth: MinIO follows it (a restart), and logins go on.
		name: "provider client secret changed by hand in authentik",
		introduce: func(t *testing.T, s *suite) {
			s.patchProvider(t, e2eenv.ProviderName, api.PatchedOAuth2ProviderRequest{ClientSecret: ptr(operatorSecret)})
		},
		lines:   []string{`minio update identity_openid: client_secret differs (restart required)`},
		changes: []reconcile.Change{upd(reconcile.SystemMinIO, reconcile.KindOpenID, "identity_openid", "client_secret")},
	}, {
		name:      "identity_openid scopes",
		introduce: func(t *testing.T, s *suite) { s.setOpenID(t, "scopes=openid") },
		lines:     []string{`minio update identity_openid: scopes differ (restart required)`},
		changes:   []reconcile.Change{upd(reconcile.SystemMinIO, reconcile.KindOpenID, "identity_openid", "scopes")},
	}}
}

// operatorSecret is a wrong client secret an operator types into MinIO; it must never be
// printed.
const operatorSecret = "operator-typo-secret-4f1d2c"

// repointApplication creates another provider and points the application at it.
func repointApplication(t *testing.T, s *suite) {
	ctx := context.Background()
	name := "Other provider"
	l := must(s.ak.ProvidersAPI.ProvidersOauth2List(ctx).Name(name).Execute())(t)
	var pk int32
	if len(l.Results) > 0 {
		pk = l.Results[0].Pk
	} else {
		p := must(s.ak.ProvidersAPI.ProvidersOauth2Create(ctx).OAuth2ProviderRequest(api.OAuth2ProviderRequest{
			Name:              name,
			AuthorizationFlow: s.flowPK(t, "default-provider-authorization-implicit-consent"),
			InvalidationFlow:  s.flowPK(t, "default-provider-invalidation-flow"),
			RedirectUris: []api.RedirectURIRequest{{
				MatchingMode: api.MATCHINGMODEENUM_STRICT, Url: "https://other.example/callback",
				RedirectUriType: api.REDIRECTURITYPEENUM_AUTHORIZATION.Ptr(),
			}},
		}).Execute())(t)
		pk = p.Pk
	}
	s.patchApplication(t, e2eenv.AppSlug, api.PatchedApplicationRequest{Provider: *api.NewNullableInt32(&pk)})
}

// testDrift introduces one drift, checks plan in text and JSON (exit 2), removes it with
// apply (exit 0) and checks plan is clean again.
func testDrift(t *testing.T, s *suite, tc driftCase) {
	tc.introduce(t, s)
	out, _, code := s.run(t, "plan")
	if code != 2 {
		t.Errorf("plan: exit %d, want 2", code)
	}
	text := collapse(out)
	for _, line := range tc.lines {
		if !strings.Contains(text, collapse(line)) {
			t.Errorf("plan text lacks %q:\n%s", line, out)
		}
	}
	p, code := s.planJSON(t)
	if code != 2 {
		t.Errorf("plan --output json: exit %d, want 2", code)
	}
	if p.Drift != len(tc.changes) || len(p.Changes) != len(tc.changes) {
		t.Errorf("plan JSON: drift %d, %d changes; want %d: %+v", p.Drift, len(p.Changes), len(tc.changes), p.Changes)
	}
	for _, want := range tc.changes {
		got, ok := findChange(p, want.Kind, want.Name)
		if !ok || got.System != want.System || got.Action != want.Action || !sameSet(got.Fields, want.Fields) ||
			got.RestartRequired != want.RestartRequired || got.Blocked != "" || got.Pending {
			t.Errorf("plan JSON: change %s %q = %+v (found %v), want %+v", want.Kind, want.Name, got, ok, want)
		}
	}
	s.requireApply(t, 0)
	s.requireInSync(t)
}

// testFormatting rewrites a declared policy with other key order, whitespace and list
// order: plan must see no drift, and apply must write nothing. (The config's "odd-format"
// policy, declared with a single Statement object and a string Action, is in sync after
// every apply of this test: MinIO stores it in its own form.)
func testFormatting(t *testing.T, s *suite) {
	doc := `{
	  "Statement": [ { "Resource": [ "arn:aws:s3:::shared/*", "arn:aws:s3:::shared" ],
	    "Effect": "Allow",
	    "Action": [ "s3:ListBucket", "s3:DeleteObject", "s3:PutObject", "s3:GetObject" ] } ],
	  "Version": "2012-10-17" }`
	if err := s.adm.AddCannedPolicy(context.Background(), e2eenv.CustomPolicy, []byte(doc)); err != nil {
		t.Fatal(err)
	}
	s.requireInSync(t)
	s.env.AK.ResetCounts()
	before := s.snapshotMinIO(t)
	out := s.requireApply(t, 0)
	if w := writes(s.env); len(w) != 0 {
		t.Errorf("apply of an estate in sync wrote to authentik: %v", w)
	}
	if !before.equal(s.snapshotMinIO(t)) {
		t.Errorf("apply of an estate in sync changed MinIO: %s\noutput:\n%s", before.diff(s.snapshotMinIO(t)), out)
	}
}

// collapse joins the whitespace-separated fields of s with single spaces.
func collapse(s string) string { return strings.Join(strings.Fields(s), " ") }

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}
