package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/minio/madmin-go/v3"
	"github.com/minio/minio-go/v7/pkg/credentials"
	api "goauthentik.io/api/v3"

	"github.com/akminio/akminio/config"
)

// backendResult is the outcome of reaching one backend.
type backendResult struct {
	system string // "authentik" or "minio"
	detail string // what answered, on success
	err    error
}

// checkBackends reaches authentik and MinIO concurrently, each bounded by its timeout, and
// returns their results in a fixed order.
func checkBackends(ctx context.Context, cfg *config.Config) []backendResult {
	results := []backendResult{{system: "authentik"}, {system: "minio"}}
	var wg sync.WaitGroup
	wg.Go(func() { results[0].detail, results[0].err = checkAuthentik(ctx, cfg.Authentik) })
	wg.Go(func() { results[1].detail, results[1].err = checkMinIO(ctx, cfg.MinIO) })
	wg.Wait()
	return results
}

// checkAuthentik asks authentik who the token belongs to (GET /api/v3/core/users/me/).
func checkAuthentik(ctx context.Context, a config.Authentik) (string, error) {
	tlsCfg, err := a.TLSConfig()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, a.Timeout)
	defer cancel()
	acfg := api.NewConfiguration()
	acfg.Servers = api.ServerConfigurations{{URL: a.APIURL()}}
	acfg.AddDefaultHeader("Authorization", "Bearer "+a.Token.Reveal())
	acfg.UserAgent = userAgent()
	acfg.HTTPClient = &http.Client{Transport: &http.Transport{
		Proxy:           http.ProxyFromEnvironment,
		TLSClientConfig: tlsCfg,
	}}
	client := api.NewAPIClient(acfg)
	me, resp, err := client.CoreAPI.CoreUsersMeRetrieve(ctx).Execute()
	if err != nil {
		return "", describeHTTPError("GET "+a.APIURL()+"/core/users/me/", resp, err)
	}
	return fmt.Sprintf("%s answers as user %q", a.URL, me.User.Username), nil
}

// describeHTTPError says what failed in terms an operator can act on.
func describeHTTPError(what string, resp *http.Response, err error) error {
	if resp == nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("%s: %s: the token was refused (check authentik.token)", what, resp.Status)
	}
	var oe *api.GenericOpenAPIError
	if errors.As(err, &oe) {
		return fmt.Errorf("%s: %s", what, resp.Status)
	}
	return fmt.Errorf("%s: %s: %w", what, resp.Status, err)
}

// checkMinIO asks MinIO for its server info with the admin credentials.
func checkMinIO(ctx context.Context, m config.MinIO) (string, error) {
	tlsCfg, err := m.TLSConfig()
	if err != nil {
		return "", err
	}
	adm, err := madmin.NewWithOptions(m.HostPort(), &madmin.Options{
		Creds:  credentials.NewStaticV4(m.AccessKey.Reveal(), m.SecretKey.Reveal(), ""),
		Secure: m.Secure(),
		Transport: &http.Transport{
			Proxy:           http.ProxyFromEnvironment,
			TLSClientConfig: tlsCfg,
		},
	})
	if err != nil {
		return "", fmt.Errorf("%s: %w", m.Endpoint, err)
	}
	adm.SetAppInfo("akminio", userAgent())
	ctx, cancel := context.WithTimeout(ctx, m.Timeout)
	defer cancel()
	info, err := adm.ServerInfo(ctx)
	if err != nil {
		return "", fmt.Errorf("%s: server info: %w", m.Endpoint, err)
	}
	return fmt.Sprintf("%s answers: %d server(s), mode %s", m.Endpoint, len(info.Servers), info.Mode), nil
}
