package minio

import (
	"context"
	"fmt"
	"strings"

	madmin "github.com/minio/madmin-go/v3"

	"github.com/akminio/akminio/reconcile"
	"github.com/akminio/akminio/reconcile/adopt"
)

var _ adopt.MinIOReader = (*Adapter)(nil)

// ReadEstate implements adopt.MinIOReader: every canned policy, and every identity_openid
// target that has a config_url, from the full config export (two calls, as Observe).
func (a *Adapter) ReadEstate(ctx context.Context) (adopt.MinIOEstate, error) {
	policies, err := a.listPolicies(ctx)
	if err != nil {
		return adopt.MinIOEstate{}, err
	}
	var export []byte
	err = a.do(ctx, func(ctx context.Context) error {
		var err error
		export, err = a.adm.GetConfig(ctx)
		return notReady(err)
	})
	if err != nil {
		return adopt.MinIOEstate{}, fmt.Errorf("minio: read config export: %w", err)
	}
	targets := map[string]*reconcile.ObservedOpenIDTarget{}
	for _, target := range openIDTargets(string(export)) {
		oid, err := parseOpenID(string(export), target)
		if err != nil {
			return adopt.MinIOEstate{}, fmt.Errorf("minio: config export: %w", err)
		}
		if oid != nil {
			targets[target] = oid
		}
	}
	return adopt.MinIOEstate{Targets: targets, Policies: policies}, nil
}

// openIDTargets lists the identity_openid target names an export has lines for.
func openIDTargets(export string) []string {
	var out []string
	for raw := range strings.SplitSeq(export, "\n") {
		line := strings.TrimPrefix(strings.TrimSpace(raw), madmin.KvComment+madmin.KvSpaceSeparator)
		first, _, _ := strings.Cut(line, madmin.KvSpaceSeparator)
		if first == madmin.IdentityOpenIDSubSys || strings.HasPrefix(first, madmin.IdentityOpenIDSubSys+":") {
			if checkTarget(first) == nil {
				out = append(out, first)
			}
		}
	}
	return out
}
