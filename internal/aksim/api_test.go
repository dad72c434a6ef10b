package aksim_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	api "goauthentik.io/api/v3"

	"github.com/akminio/akminio/internal/aksim/aksimtest"
)

func TestSpecInvalidRequestGets400(t *testing.T) {
	s := aksimtest.Start(t)
	// name is required and must be a string.
	code, body := rawCall(t, s, "POST", "/api/v3/core/groups/", map[string]any{"name": 5})
	if code != 400 || body["name"] == nil {
		t.Fatalf("wrong type: got %d %v, want 400 with a name error", code, body)
	}
	code, body = rawCall(t, s, "POST", "/api/v3/core/groups/", map[string]any{"is_superuser": true})
	if code != 400 || len(body) != 1 {
		t.Fatalf("missing name: got %d %v, want 400 with one error", code, body)
	}
	code, body = rawCall(t, s, "GET", "/api/v3/core/groups/?page_size=abc", nil)
	if code != 400 || body["page_size"] == nil {
		t.Fatalf("bad query: got %d %v, want 400 {page_size: [...]}", code, body)
	}
	// Django answers 404 for a pk that is not a UUID (get_object_or_404).
	code, _ = rawCall(t, s, "GET", "/api/v3/core/groups/not-a-uuid/", nil)
	if code != 404 {
		t.Fatalf("bad path parameter: got %d, want 404", code)
	}
}

func TestAuthShapes(t *testing.T) {
	s := aksimtest.Start(t)
	for auth, want := range map[string]string{
		"":             "Authentication credentials were not provided.",
		"Bearer wrong": "Token invalid/expired",
		"Basic abc":    "Unsupported authentication type",
	} {
		code, body := rawCall(t, s, "GET", "/api/v3/core/groups/", nil, auth)
		if code != 403 || body["detail"] != want {
			t.Errorf("Authorization %q: got %d %v, want 403 %q", auth, code, body, want)
		}
	}
}

func TestPagination(t *testing.T) {
	s := aksimtest.Start(t)
	c := aksimtest.Client(s)
	ctx := context.Background()
	for i := range 204 { // plus "authentik Admins": 205 groups
		if _, err := s.AddGroup(fmt.Sprintf("g%03d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, size := range []int32{1, 2, 100, 500} {
		seen := map[string]bool{}
		var last string
		page := int32(1)
		for pages := 0; page != 0; pages++ {
			l, _, err := c.CoreAPI.CoreGroupsList(ctx).Page(page).PageSize(size).IncludeUsers(false).Execute()
			must(t, err)
			p := l.Pagination
			eff := min(size, 100)
			wantPages := (205 + eff - 1) / eff
			if int32(p.TotalPages) != wantPages || p.Count != 205 || int32(len(l.Results)) > eff || int32(p.Current) != page {
				t.Fatalf("size %d page %d: pagination %+v with %d results", size, page, p, len(l.Results))
			}
			if int32(p.StartIndex) != (page-1)*eff+1 || int32(p.EndIndex) != (page-1)*eff+int32(len(l.Results)) {
				t.Fatalf("size %d page %d: indexes %+v", size, page, p)
			}
			for _, g := range l.Results {
				if seen[g.Name] || g.Name < last {
					t.Fatalf("size %d: %q repeated or out of order", size, g.Name)
				}
				seen[g.Name], last = true, g.Name
			}
			if pages > 300 {
				t.Fatal("pagination does not end")
			}
			page = int32(p.Next)
		}
		if len(seen) != 205 {
			t.Fatalf("size %d: saw %d groups, want 205", size, len(seen))
		}
		last = ""
	}
	code, body := rawCall(t, s, "GET", "/api/v3/core/groups/?page=99", nil)
	if code != 404 || body["detail"] != "Invalid page." {
		t.Fatalf("page past the end: %d %v", code, body)
	}
}

// TestDefaultPageSize: a list without page_size gets the tenant's
// pagination_default_page_size, 20 (authentik/tenants/models.py), not the cap of 100.
func TestDefaultPageSize(t *testing.T) {
	s := aksimtest.Start(t)
	c := aksimtest.Client(s)
	for i := range 24 { // plus "authentik Admins": 25 groups
		if _, err := s.AddGroup(fmt.Sprintf("g%02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	l, _, err := c.CoreAPI.CoreGroupsList(context.Background()).IncludeUsers(false).Execute()
	must(t, err)
	if p := l.Pagination; len(l.Results) != 20 || p.Count != 25 || p.TotalPages != 2 || p.Next != 2 || p.EndIndex != 20 {
		t.Fatalf("list without page_size: %d results, pagination %+v; want 20 of 25 on 2 pages", len(l.Results), p)
	}
	l, _, err = c.CoreAPI.CoreGroupsList(context.Background()).Page(2).IncludeUsers(false).Execute()
	must(t, err)
	if p := l.Pagination; len(l.Results) != 5 || p.StartIndex != 21 || p.EndIndex != 25 {
		t.Fatalf("page 2 without page_size: %d results, pagination %+v; want 21..25", len(l.Results), p)
	}
}

func TestGroupsUsersAndParents(t *testing.T) {
	s := aksimtest.Start(t)
	c := aksimtest.Client(s)
	ctx := context.Background()
	a, _ := s.AddGroup("a")
	b, _ := s.AddGroup("b")
	alice, _ := s.AddUser("alice", "alice@example.com")
	req := api.NewGroupRequest("child")
	req.SetParents([]string{a, b})
	req.SetUsers([]int32{int32(alice)})
	child, _, err := c.CoreAPI.CoreGroupsCreate(ctx).GroupRequest(*req).Execute()
	must(t, err)
	if len(child.Parents) != 2 {
		t.Fatalf("parents: %v", child.Parents)
	}
	got, _, err := c.CoreAPI.CoreGroupsList(ctx).Name("child").Execute()
	must(t, err)
	if len(got.Results) != 1 || len(got.Results[0].UsersObj) != 1 || got.Results[0].UsersObj[0].Username != "alice" {
		t.Fatalf("default list must include users: %+v", got.Results)
	}
	got, _, err = c.CoreAPI.CoreGroupsList(ctx).Name("child").IncludeUsers(false).Execute()
	must(t, err)
	if got.Results[0].UsersObj != nil || len(got.Results[0].Users) != 1 {
		t.Fatalf("include_users=false: users_obj %v users %v", got.Results[0].UsersObj, got.Results[0].Users)
	}
	pa, _, err := c.CoreAPI.CoreGroupsRetrieve(ctx, a).IncludeChildren(true).Execute()
	must(t, err)
	if len(pa.Children) != 1 || pa.Children[0] != child.Pk {
		t.Fatalf("children of a: %v", pa.Children)
	}
	bob, _ := s.AddUser("bob", "")
	_, err = c.CoreAPI.CoreGroupsAddUserCreate(ctx, child.Pk).UserAccountRequest(*api.NewUserAccountRequest(int32(bob))).Execute()
	must(t, err)
	_, err = c.CoreAPI.CoreGroupsRemoveUserCreate(ctx, child.Pk).UserAccountRequest(*api.NewUserAccountRequest(int32(alice))).Execute()
	must(t, err)
	if m := s.GroupMembers("child"); len(m) != 1 || m[0] != "bob" {
		t.Fatalf("members after add/remove: %v", m)
	}
	patch := api.NewPatchedGroupRequest()
	patch.SetParents([]string{child.Pk})
	_, resp, err := c.CoreAPI.CoreGroupsPartialUpdate(ctx, a).PatchedGroupRequest(*patch).Execute()
	if err == nil || resp.StatusCode != 400 {
		t.Fatalf("a parent loop must be rejected, got %v", err)
	}
	_, resp, err = c.CoreAPI.CoreGroupsCreate(ctx).GroupRequest(*api.NewGroupRequest("a")).Execute()
	if err == nil || resp.StatusCode != 400 || !strings.Contains(describe(err), `{"name":["Group with this name already exists."]}`) {
		t.Fatalf("duplicate group name must be rejected as DRF's UniqueValidator does, got %v", err)
	}
	_, err = c.CoreAPI.CoreGroupsDestroy(ctx, child.Pk).Execute()
	must(t, err)
	_, resp, err = c.CoreAPI.CoreGroupsRetrieve(ctx, child.Pk).Execute()
	if resp == nil || resp.StatusCode != 404 {
		t.Fatalf("deleted group: %v", err)
	}
}

func TestScopeMappingRules(t *testing.T) {
	s := aksimtest.Start(t)
	c := aksimtest.Client(s)
	ctx := context.Background()
	create := func(name, expr string) (*http.Response, error) {
		_, resp, err := c.PropertymappingsAPI.PropertymappingsProviderScopeCreate(ctx).
			ScopeMappingRequest(*api.NewScopeMappingRequest(name, expr, "minio")).Execute()
		return resp, err
	}
	_, err := create("m", "return None")
	must(t, err)
	resp, err := create("m", "return None")
	if resp == nil || resp.StatusCode != 400 || !strings.Contains(describe(err), `{"name":["Property Mapping with this name already exists."]}`) {
		t.Fatalf("duplicate name: %v", err)
	}
	resp, err = create("authentik default OAuth Mapping: OpenID 'email'", "return None")
	if resp == nil || resp.StatusCode != 400 {
		t.Fatalf("name of a built-in mapping: %v", err)
	}
	resp, err = create("broken", "return {")
	if resp == nil || resp.StatusCode != 400 || !strings.Contains(describe(err), `"expression"`) {
		t.Fatalf("non-compiling expression: %v", err)
	}
	l, _, err := c.PropertymappingsAPI.PropertymappingsProviderScopeList(ctx).ScopeName("email").Execute()
	must(t, err)
	if len(l.Results) != 1 || l.Results[0].GetManaged() != "goauthentik.io/providers/oauth2/scope-email" ||
		!strings.Contains(l.Results[0].Expression, "request.user.email") {
		t.Fatalf("built-in email mapping: %+v", l.Results)
	}
}

func TestApplicationListFiltering(t *testing.T) {
	s := aksimtest.Start(t)
	c := aksimtest.Client(s)
	ctx := context.Background()
	open, _, err := c.CoreAPI.CoreApplicationsCreate(ctx).ApplicationRequest(*api.NewApplicationRequest("Open", "open")).Execute()
	must(t, err)
	closed, _, err := c.CoreAPI.CoreApplicationsCreate(ctx).ApplicationRequest(*api.NewApplicationRequest("Closed", "closed")).Execute()
	must(t, err)
	g, _ := s.AddGroup("Minio admins")
	b := api.NewPolicyBindingRequest(closed.Pk, 0)
	b.SetGroup(g)
	_, _, err = c.PoliciesAPI.PoliciesBindingsCreate(ctx).PolicyBindingRequest(*b).Execute()
	must(t, err)
	slugs := func(full bool) []string {
		r := c.CoreAPI.CoreApplicationsList(ctx)
		if full {
			r = r.SuperuserFullList(true)
		}
		l, _, err := r.Execute()
		must(t, err)
		var out []string
		for _, a := range l.Results {
			out = append(out, a.Slug)
		}
		return out
	}
	if got := slugs(false); len(got) != 1 || got[0] != open.Slug {
		t.Fatalf("filtered list: %v, want only %q (akadmin is not in Minio admins)", got, open.Slug)
	}
	if got := slugs(true); len(got) != 2 {
		t.Fatalf("superuser_full_list: %v", got)
	}
	must(t, s.AddUserToGroup("akadmin", "Minio admins"))
	if got := slugs(false); len(got) != 2 {
		t.Fatalf("after joining the bound group: %v", got)
	}
	if _, _, err := c.CoreAPI.CoreApplicationsRetrieve(ctx, "closed").Execute(); err != nil {
		t.Fatalf("retrieve by slug: %v", err)
	}
	both := api.NewPolicyBindingRequest(closed.Pk, 1)
	both.SetGroup(g)
	both.SetUser(1)
	_, resp, err := c.PoliciesAPI.PoliciesBindingsCreate(ctx).PolicyBindingRequest(*both).Execute()
	if resp == nil || resp.StatusCode != 400 || !strings.Contains(describe(err), "Only one of") {
		t.Fatalf("binding with group and user: %v", err)
	}
}

func TestProviderCreateGeneratesCredentials(t *testing.T) {
	s := aksimtest.Start(t)
	c := aksimtest.Client(s)
	m := setupMinio(t, c)
	p := m.provider
	if len(p.GetClientId()) != 40 || len(p.GetClientSecret()) != 128 {
		t.Fatalf("client_id %d chars, client_secret %d chars; want 40 and 128", len(p.GetClientId()), len(p.GetClientSecret()))
	}
	for _, r := range p.GetClientId() + p.GetClientSecret() {
		if !strings.ContainsRune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", r) {
			t.Fatalf("generated credential has %q", r)
		}
	}
	if p.AssignedApplicationSlug.Get() == nil || *p.AssignedApplicationSlug.Get() != "minio" {
		t.Fatalf("assigned_application_slug: %v", p.AssignedApplicationSlug.Get())
	}
	patch := api.NewPatchedOAuth2ProviderRequest()
	patch.SetClientSecret("new-secret")
	got, _, err := c.ProvidersAPI.ProvidersOauth2PartialUpdate(context.Background(), p.Pk).PatchedOAuth2ProviderRequest(*patch).Execute()
	must(t, err)
	if got.GetClientSecret() != "new-secret" || got.GetClientId() != p.GetClientId() {
		t.Fatalf("patch client_secret: %q %q", got.GetClientSecret(), got.GetClientId())
	}
}

func TestPreviewUserGuideExpression(t *testing.T) {
	s := aksimtest.Start(t)
	c := aksimtest.Client(s)
	m := setupMinio(t, c)
	_, _ = s.AddGroup("Minio admins")
	_, _ = s.AddGroup("Minio users")
	_, _ = s.AddGroup("ops", "Minio admins")
	for user, group := range map[string]string{"admin": "Minio admins", "reader": "Minio users", "op": "ops", "nobody": ""} {
		if _, err := s.AddUser(user, user+"@example.com"); err != nil {
			t.Fatal(err)
		}
		if group != "" {
			must(t, s.AddUserToGroup(user, group))
		}
	}
	for user, want := range map[string]string{"admin": "consoleAdmin", "op": "consoleAdmin", "reader": "[readonly my-custom-policy]", "nobody": "<nil>"} {
		pk, _ := s.UserPK(user)
		got, _, err := c.ProvidersAPI.ProvidersOauth2PreviewUserRetrieve(context.Background(), m.provider.Pk).ForUser(int32(pk)).Execute()
		must(t, err)
		if p := fmt.Sprint(got.Preview["policy"]); p != want {
			t.Errorf("%s: policy claim %s, want %s (preview %v)", user, p, want, got.Preview)
		}
		if got.Preview["preferred_username"] != user || got.Preview["email"] != user+"@example.com" {
			t.Errorf("%s: profile/email claims missing: %v", user, got.Preview)
		}
	}
	code, _ := rawCall(t, s, "GET", fmt.Sprintf("/api/v3/providers/oauth2/%d/preview_user/?for_user=999", m.provider.Pk), nil)
	if code != 400 {
		t.Fatalf("preview for a missing user: %d, want 400", code)
	}
}
