package e2e

import (
	"context"
	"strings"
	"testing"

	api "goauthentik.io/api/v3"

	"github.com/akminio/akminio/internal/e2eenv"
	"github.com/akminio/akminio/internal/e2eenv/e2eenvtest"
	"github.com/akminio/akminio/reconcile"
)

// testVerification: in report mode akminio repairs nothing, so an expression an operator
// edited stays; the canary users' claims are then wrong, and plan and apply say so with
// verification lines besides the expression drift.
func testVerification(t *testing.T, s *suite) {
	s.withConfig(t, func(cfg map[string]any) { cfg["mode"] = "report" })
	// Everyone in "Minio users" becomes an admin.
	s.patchMapping(t, e2eenv.MappingName, api.PatchedScopeMappingRequest{Expression: ptr(
		`if ak_is_group_member(request.user, name="Minio users"):
    return {"policy": ["consoleAdmin"]}
return None`)})

	for _, args := range [][]string{{"plan"}, {"apply"}} {
		out, _, code := s.run(t, args...)
		if code != 2 {
			t.Errorf("%s: exit %d, want 2", args[0], code)
		}
		text := collapse(out)
		for _, line := range []string{
			`authentik update scope mapping "OIDC-Scope-minio": expression differs`,
			`authentik verify verification "bob": claim "policy" is [consoleAdmin], want [readonly]`,
			`authentik verify verification "alice": claim "policy" missing, want [consoleAdmin]`,
		} {
			if !strings.Contains(text, line) {
				t.Errorf("%s output lacks %q:\n%s", args[0], line, out)
			}
		}
	}
	p, _ := s.planJSON(t)
	if c, ok := findChange(p, reconcile.KindVerification, "bob"); !ok || c.Action != reconcile.ActionVerify || c.System != reconcile.SystemAuthentik {
		t.Errorf("plan JSON has no verification change for bob: %+v", p.Changes)
	}
	// Report mode wrote nothing: bob is still an admin through STS.
	if a, err := s.env.Login(context.Background(), "bob"); err != nil || !a.CanWrite {
		t.Errorf("bob after apply in report mode: %+v, %v; want the operator's (wrong) write access", a, err)
	}
	// Back in repair mode, apply removes the drift and verification passes.
	s.write(t, s.withMode(t, "repair"))
	s.requireApply(t, 0)
	s.requireInSync(t)
}

// withMode returns the current config with mode set.
func (s *suite) withMode(t *testing.T, mode string) map[string]any {
	t.Helper()
	cfg := deepCopy(s.cfg)
	cfg["mode"] = mode
	return cfg
}

// testNoSecrets scans everything the binary printed so far in this test (plans, applies,
// errors and logs) and akminio's state files with the environment's leak scan, for every
// secret in play; the scan runs again over everything when the test ends.
func testNoSecrets(t *testing.T, s *suite) {
	prov := s.provider(t, e2eenv.ProviderName)
	if len(s.seen.String()) < 1000 {
		t.Fatalf("only %d bytes of output recorded; the scan would prove nothing", len(s.seen.String()))
	}
	if prov.GetClientSecret() == "" {
		t.Fatal("the provider has no client secret; cannot scan for it")
	}
	scan := e2eenvtest.Scan(s.env)
	scan.Secret("provider client secret", prov.GetClientSecret())
	scan.Secret("secret typed by operator", operatorSecret)
	scan.CheckNow(t)
}
