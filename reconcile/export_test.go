package reconcile

// Fixtures of the plan tests, for the tests of package reconcile_test (which may import
// reconcile/render; package reconcile's own tests may not).
var (
	FxDesired = fxDesired
	FxSynced  = fxSynced
)

// FxOpenIDTarget is the fixtures' identity_openid target.
const FxOpenIDTarget = oid

// The fixtures' secrets, which no output may show.
const (
	FxProviderSecret = fxProviderSecret
	FxCreatedSecret  = fxCreatedSecret
)
