package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/golang-jwt/jwt/v5"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/akminio/akminio/internal/e2eenv"
	"github.com/akminio/akminio/internal/miniotest"
)

// login is what one demo user got: the claims authentik put in the ID token and what
// MinIO then allowed.
type login struct {
	user     string
	groups   []string // the ID token's "groups" claim: the user's direct groups
	policies []string // the ID token's policy claim
	access   miniotest.Access
	refusal  string // MinIO STS's message when it refused the token; "" when it accepted
}

// logins logs each demo user in through MinIO's STS and prints what each may do.
func (s *session) logins(ctx context.Context) error {
	s.heading(fmt.Sprintf("Logging each demo user in to MinIO (STS AssumeRoleWithWebIdentity) and probing bucket %q", s.env.Bucket))
	results := make([]login, 0, len(e2eenv.Users))
	for _, user := range e2eenv.Users {
		l, err := s.login(ctx, user)
		if err != nil {
			return failed("log in "+user, err)
		}
		results = append(results, l)
	}
	tw := tabwriter.NewWriter(s.out, 0, 0, 2, ' ', 0)
	const readHeader = "CAN READ"
	fmt.Fprintf(tw, "  USER\tGROUPS\tPOLICIES CLAIMED\t%s  CAN WRITE\n", readHeader)
	for _, l := range results {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t", l.user, list(l.groups), list(l.policies))
		if l.refusal != "" {
			fmt.Fprintf(tw, "refused by MinIO STS: %s\n", l.refusal)
			continue
		}
		// Padded by hand: a refusal row ends the tabwriter's column block.
		fmt.Fprintf(tw, "%-*s  %s\n", len(readHeader), yesNo(l.access.CanRead), yesNo(l.access.CanWrite))
	}
	if err := tw.Flush(); err != nil {
		return failed("print the logins", err)
	}
	s.printf("  (GROUPS and POLICIES CLAIMED are the claims of the user's ID token; read: GetObject,\n")
	s.printf("  write: PutObject on bucket %q with the temporary credentials MinIO's STS issued)\n", s.env.Bucket)
	return nil
}

// login reads the claims of an ID token for user, then logs user in with e2eenv.Login.
// A refusal by MinIO's STS is a result; any other error is returned.
func (s *session) login(ctx context.Context, user string) (login, error) {
	l := login{user: user}
	tok, err := s.env.AK.MintIDToken(ctx, "", e2eenv.AppSlug, user)
	if err != nil {
		return l, fmt.Errorf("mint an ID token: %w", err)
	}
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok, claims); err != nil {
		return l, fmt.Errorf("read the ID token: %w", err)
	}
	l.groups = claimList(claims["groups"])
	l.policies = claimList(claims[e2eenv.Claim])
	l.access, err = s.env.Login(ctx, user)
	var refused credentials.ErrorResponse
	if errors.As(err, &refused) {
		l.refusal = refused.Error()
		return l, nil
	}
	return l, err
}

// claimList turns a claim (a string or a list of strings) into a list; nil when absent.
func claimList(claim any) []string {
	switch v := claim.(type) {
	case string:
		return strings.Split(v, ",")
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			out = append(out, fmt.Sprint(x))
		}
		return out
	}
	return nil
}

// list joins items for the table; "-" for none.
func list(items []string) string {
	if len(items) == 0 {
		return "-"
	}
	return strings.Join(items, ", ")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
