package minio

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	madmin "github.com/minio/madmin-go/v3"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/internal/httplimit"
	"github.com/akminio/akminio/reconcile"
)

// exportEnvDefault is a slice of a real export: the default target configured only through
// the environment (so its stored line is commented out), a named target stored with
// quoted values, and env lines of another subsystem before it.
const exportEnvDefault = `subnet license= api_key= proxy=
# compression enable=off allow_encryption=off extensions=.txt,.log
# MINIO_IDENTITY_OPENID_CONFIG_URL=http://127.0.0.1:43765/.well-known/openid-configuration
# MINIO_IDENTITY_OPENID_CLAIM_NAME=groups
# identity_openid enable= display_name= config_url= client_id= client_secret= claim_name=policy claim_userinfo= role_policy= redirect_uri_dynamic=off scopes= vendor=
identity_openid:two display_name="Hello World" config_url=http://127.0.0.1:43765/.well-known/openid-configuration client_id=abc client_secret="s e=cret" claim_name=policy claim_userinfo= role_policy=readonly redirect_uri_dynamic=off scopes=openid,profile vendor=
# MINIO_IDENTITY_LDAP_SERVER_ADDR=ldap:389
# identity_ldap enable= server_addr=
`

const exportStored = `site name= region=
identity_openid display_name=MinIO config_url=https://ak.example/application/o/minio/.well-known/openid-configuration client_id=cid client_secret=s3cr3t claim_name=policy claim_userinfo= role_policy= redirect_uri=https://minio.example/oauth_callback redirect_uri_dynamic=off scopes=openid,profile,email,minio vendor=
identity_openid:off enable=off display_name= config_url=https://other.example/.well-known/openid-configuration client_id=x client_secret=y claim_name=policy scopes=
`

func TestParseOpenID(t *testing.T) {
	tests := []struct {
		name, export, target string
		want                 string // fmt of the fields, "" for nil
		env                  []string
	}{
		{"env-configured default", exportEnvDefault, "identity_openid",
			"on|http://127.0.0.1:43765/.well-known/openid-configuration|||groups|||", []string{"claim_name", "config_url"}},
		{"quoted values of a named target", exportEnvDefault, "identity_openid:two",
			"on|http://127.0.0.1:43765/.well-known/openid-configuration|abc|s e=cret|policy|openid,profile|Hello World|", nil},
		{"stored default, enable omitted", exportStored, "identity_openid",
			"on|https://ak.example/application/o/minio/.well-known/openid-configuration|cid|s3cr3t|policy|openid,profile,email,minio|MinIO|https://minio.example/oauth_callback", nil},
		{"disabled target", exportStored, "identity_openid:off",
			"off|https://other.example/.well-known/openid-configuration|x|y|policy|||", nil},
		{"named target absent", exportStored, "identity_openid:nope", "", nil},
		{"commented default without config_url", strings.Replace(exportEnvDefault, "# MINIO_IDENTITY_OPENID_CONFIG_URL", "# MINIO_IDENTITY_OPENID_SCOPES", 1), "identity_openid", "", nil},
		{"empty export", "", "identity_openid", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseOpenID(tt.export, tt.target)
			if err != nil {
				t.Fatal(err)
			}
			if got == nil {
				if tt.want != "" {
					t.Fatalf("got nil, want %s", tt.want)
				}
				return
			}
			v := got.OpenIDKeys
			s := strings.Join([]string{v.Enable, v.ConfigURL, v.ClientID, v.ClientSecret.Reveal(),
				v.ClaimName, v.Scopes, v.DisplayName, v.RedirectURI}, "|")
			if s != tt.want {
				t.Errorf("got  %s\nwant %s", s, tt.want)
			}
			if env := slices.Sorted(maps.Keys(got.EnvKeys)); !slices.Equal(env, tt.env) {
				t.Errorf("EnvKeys = %v, want %v", env, tt.env)
			}
		})
	}
}

func TestNormaliseEnable(t *testing.T) {
	for in, want := range map[string]string{"": "on", "on": "on", "ON": "on", "true": "on", "enabled": "on",
		"off": "off", "false": "off", "disabled": "off", "bogus": "off"} {
		if got := normaliseEnable(in); got != want {
			t.Errorf("normaliseEnable(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCheckTarget(t *testing.T) {
	for _, ok := range []string{"identity_openid", "identity_openid:authentik", "identity_openid:a-b_c.1"} {
		if err := checkTarget(ok); err != nil {
			t.Errorf("checkTarget(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "identity_ldap", "identity_openid:", "identity_openid:a b", "identity_openid:a=b"} {
		if err := checkTarget(bad); err == nil {
			t.Errorf("checkTarget(%q) accepted", bad)
		}
	}
}

func TestConfigLine(t *testing.T) {
	got, err := configLine("identity_openid:x", []kv{{"client_secret", "a b=c"}, {"display_name", ""}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `identity_openid:x client_secret="a b=c" display_name=""`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestConfigLineRefusesWhatMinIOWouldMangle(t *testing.T) {
	const secret = "TOPSECRET"
	for _, v := range []string{
		secret + `"`, secret + "\n", secret + "\t", " " + secret, secret + " ", "'" + secret, secret + "'",
		secret + "?scopes=x", "x" + secret + "client_id=1", secret + "comment=",
	} {
		_, err := configLine("identity_openid", []kv{{"client_secret", v}})
		if err == nil {
			t.Errorf("value %q accepted", v)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error shows the value: %v", err)
		}
		if !strings.Contains(err.Error(), "client_secret") {
			t.Errorf("error does not name the key: %v", err)
		}
	}
}

func TestRedact(t *testing.T) {
	const secret = config.Secret("hunter2-xyz")
	err := redact(fmt.Errorf("bad value hunter2-xyz in %q", "hunter2-xyz"), secret)
	if strings.Contains(err.Error(), secret.Reveal()) || !strings.Contains(err.Error(), config.Redacted) {
		t.Errorf("redact: %v", err)
	}
	plain := errors.New("no secret here")
	if got := redact(plain, secret); got != plain {
		t.Errorf("redact changed an error without the secret: %v", got)
	}
}

func TestRetryable(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{madmin.ErrorResponse{Code: "InternalError"}, true},
		{madmin.ErrorResponse{Code: "504 Gateway Timeout"}, true},
		{madmin.ErrorResponse{Code: "XMinioServerNotInitialized"}, true},
		{fmt.Errorf("x: %w", ErrNotReady), true},
		{madmin.ErrorResponse{Code: "AccessDenied"}, false},
		{madmin.ErrorResponse{Code: "XMinioAdminConfigBadJSON"}, false},
		{madmin.ErrorResponse{Code: "400 Bad Request"}, false},
		{errors.New("plain"), false},
	}
	for _, tt := range tests {
		if got := retryable(tt.err); got != tt.want {
			t.Errorf("retryable(%#v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestNewRejectsBadSettings(t *testing.T) {
	for _, tt := range []struct {
		cfg  config.MinIO
		want string
	}{
		{config.MinIO{Endpoint: "ftp://x:9000"}, "want http://host:port"},
		{config.MinIO{Endpoint: "127.0.0.1:9000"}, "want http://host:port"},
		{config.MinIO{Endpoint: "https://x:9000", CAFile: "/nonexistent/ca.pem"}, "ca_file"},
		{config.MinIO{Endpoint: "https://x:9000", CAFile: "parse_test.go"}, "no PEM certificate"},
	} {
		_, err := New(tt.cfg)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%s): %v, want an error with %q", tt.cfg.Endpoint, err, tt.want)
		}
	}
}

// TestOpenIDTargets lists every identity_openid target an export has a line for, commented
// (unconfigured or environment-set) ones included; other subsystems are not targets.
func TestOpenIDTargets(t *testing.T) {
	if got := openIDTargets(exportEnvDefault); !slices.Equal(got, []string{"identity_openid", "identity_openid:two"}) {
		t.Errorf("env default export: %v", got)
	}
	if got := openIDTargets(exportStored); !slices.Equal(got, []string{"identity_openid", "identity_openid:off"}) {
		t.Errorf("stored export: %v", got)
	}
	if got := openIDTargets("identity_openidx a=b\nidentity_ldap enable=on\n"); len(got) != 0 {
		t.Errorf("not targets: %v", got)
	}
}

// TestHugeAnswerIsRefused: a peer in MinIO's place that answers every admin call with a
// 50 MB body is refused at MaxResponseBytes (a failed observation), not read whole.
func TestHugeAnswerIsRefused(t *testing.T) {
	chunk := bytes.Repeat([]byte(`{"a":"`), 1<<16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		for n := 0; n < 50<<20; n += len(chunk) {
			_, err := w.Write(chunk)
			if err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	a, err := New(config.MinIO{Endpoint: srv.URL, AccessKey: "ak", SecretKey: "secret-key", Timeout: 10 * time.Second}, WithRetry(1, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = a.Observe(ctx, &reconcile.Desired{})
	var tl *httplimit.TooLargeError
	if !errors.As(err, &tl) || !strings.Contains(err.Error(), "exceeds akminio's limit of 32 MiB") {
		t.Fatalf("Observe against a 50 MB answer: %v, want the body refused at 32 MiB", err)
	}
}
