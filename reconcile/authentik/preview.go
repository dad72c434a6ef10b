package authentik

import (
	"context"
	"fmt"

	api "goauthentik.io/api/v3"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/reconcile"
)

// PreviewUser implements reconcile.AuthentikAdapter: the user (by exact username), its
// groups with their ancestors (the groups ak_is_group_member matches), and the claims the
// provider's mappings give it (providers/oauth2/{id}/preview_user/).
//
// Requests: 1 (user) + 1 per group in the user's ancestry + 1 (preview).
func (a *Adapter) PreviewUser(ctx context.Context, providerPK int32, username string) (reconcile.UserPreview, error) {
	what := fmt.Sprintf("authentik: preview claims of user %q", username)
	l, resp, err := a.api.CoreAPI.CoreUsersList(ctx).Username(username).IncludeGroups(true).
		IncludeRoles(false).PageSize(a.pageSize).Execute()
	if err != nil {
		return reconcile.UserPreview{}, callError(what+": look up user", resp, err, bodyExcerpt)
	}
	var user *api.User
	for i := range l.Results {
		if l.Results[i].Username == username {
			user = &l.Results[i]
			break
		}
	}
	if user == nil {
		return reconcile.UserPreview{}, fmt.Errorf("%s: no user named %q in authentik", what, username)
	}
	groups, err := a.ancestry(ctx, what, user.GroupsObj)
	if err != nil {
		return reconcile.UserPreview{}, err
	}
	p, resp, err := a.api.ProvidersAPI.ProvidersOauth2PreviewUserRetrieve(ctx, providerPK).ForUser(user.Pk).Execute()
	if err != nil {
		// The preview holds claims, not the provider's secret, but stays quiet all the same.
		return reconcile.UserPreview{}, callError(fmt.Sprintf("%s from provider %d", what, providerPK), resp, err, bodyFieldNames)
	}
	return reconcile.UserPreview{Username: username, Groups: groups, Claims: p.Preview}, nil
}

// ancestry returns the names of the given groups and of all their ancestors (a group may
// have several parents), each once, direct groups first.
func (a *Adapter) ancestry(ctx context.Context, what string, direct []api.PartialGroup) ([]string, error) {
	seen := map[string]bool{}
	var names []string
	var queue []string
	for _, g := range direct {
		if !seen[g.Pk] {
			seen[g.Pk] = true
			names = append(names, g.Name)
			queue = append(queue, g.Pk)
		}
	}
	// Each group is queued once, so even a cycle of parents ends.
	for len(queue) > 0 {
		pk := queue[0]
		queue = queue[1:]
		g, resp, err := a.api.CoreAPI.CoreGroupsRetrieve(ctx, pk).IncludeUsers(false).IncludeParents(true).Execute()
		if err != nil {
			return nil, callError(fmt.Sprintf("%s: read group %s", what, pk), resp, err, bodyExcerpt)
		}
		for _, p := range g.ParentsObj {
			if !seen[p.Pk] {
				seen[p.Pk] = true
				names = append(names, p.Name)
				queue = append(queue, p.Pk)
			}
		}
	}
	return names, nil
}

// ClientSecret reads the provider's client secret (authentik returns it in clear text).
func (a *Adapter) ClientSecret(ctx context.Context, providerPK int32) (config.Secret, error) {
	p, resp, err := a.api.ProvidersAPI.ProvidersOauth2Retrieve(ctx, providerPK).Execute()
	if err != nil {
		return "", callError(fmt.Sprintf("authentik: read provider %d", providerPK), resp, err, bodyFieldNames)
	}
	return providerSecret(p)
}

// SetClientSecret sets the provider's client secret (PATCH of client_secret alone) and
// checks that the answer carries it.
func (a *Adapter) SetClientSecret(ctx context.Context, providerPK int32, secret config.Secret) error {
	what := fmt.Sprintf("authentik: set client secret of provider %d", providerPK)
	s := secret.Reveal()
	p, resp, err := a.api.ProvidersAPI.ProvidersOauth2PartialUpdate(ctx, providerPK).
		PatchedOAuth2ProviderRequest(api.PatchedOAuth2ProviderRequest{ClientSecret: &s}).Execute()
	if err != nil {
		return callError(what, resp, err, bodyFieldNames)
	}
	got, err := providerSecret(p)
	if err != nil {
		return err
	}
	if got.Reveal() != s {
		return fmt.Errorf("%s: authentik answered with a different secret", what)
	}
	return nil
}
