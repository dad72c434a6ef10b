package main

import (
	"context"
	"errors"
	"flag"

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/reconcile/adopt"
	"github.com/akminio/akminio/reconcile/authentik"
	"github.com/akminio/akminio/reconcile/minio"
)

// Exit status of import when the config was written but does not reproduce today's access
// exactly (an expression line not read, a mapping akminio would detach): review it.
const exitReview = 2

// importCommand is the `import` command.
func importCommand() command {
	return command{
		name:    "import",
		usage:   "[--output-dir DIR] [--own-policies] [--force]",
		summary: "write a complete config from a live authentik and MinIO; --config names only how to reach them (0 written, 2 written for review, 1 nothing written)",
		setup: func(fs *flag.FlagSet) runFunc {
			dir := fs.String("output-dir", ".", "folder for config.yaml and policies/")
			own := fs.Bool("own-policies", false, "declare custom MinIO policies no binding uses as akminio's own, not external")
			force := fs.Bool("force", false, "overwrite files that exist already")
			return func(ctx context.Context, s *session) int {
				return importConfig(ctx, s, *dir, adopt.Options{OwnPolicies: *own}, *force)
			}
		},
	}
}

func importConfig(ctx context.Context, s *session, dir string, opt adopt.Options, force bool) int {
	conn, code := s.loadWith(config.LoadConnection, true)
	if conn == nil {
		return code
	}
	ak, err := authentik.New(conn.Authentik)
	if err != nil {
		s.errorf("akminio import: %v\n", err)
		return exitConfig
	}
	mc, err := minio.New(conn.MinIO)
	if err != nil {
		s.errorf("akminio import: %v\n", err)
		return exitConfig
	}
	ae, me, err := adopt.Read(ctx, conn.Authentik.Application.Slug, ak, mc)
	if err != nil {
		s.errorf("akminio import: nothing written: %v\n", err)
		return exitFailure
	}
	imp, err := adopt.Build(conn, ae, me, opt)
	if err != nil {
		s.errorf("akminio import: nothing written: %v\n", err)
		return exitFailure
	}
	path, err := adopt.Write(dir, imp, force)
	if err != nil {
		s.errorf("akminio import: nothing written: %v\n", err)
		return exitFailure
	}
	s.printf("wrote %s (scope mapping %q, %s)\n", path, imp.Mapping.Name, imp.Target)
	for _, f := range imp.Files {
		s.printf("wrote %s\n", f.Path)
	}
	r := imp.Reading
	if len(r.Problems) == 0 {
		s.printf("bindings: %d, match: %s, read exactly from the expression\n", len(r.Bindings), r.Match)
	}
	for _, n := range imp.Notes {
		s.printf("note: %s\n", n)
	}
	// The written config must load; if it does not, that is import's bug, said plainly.
	if _, _, err := config.Load(path, s.environ); err != nil {
		var cerr *config.Error
		if errors.As(err, &cerr) {
			for _, p := range cerr.Problems {
				s.errorf("akminio import: the written config is invalid: %s\n", p)
			}
		} else {
			s.errorf("akminio import: the written config is invalid: %v\n", err)
		}
		return exitFailure
	}
	if len(imp.Problems) > 0 {
		for _, p := range imp.Problems {
			s.errorf("import: %s\n", p)
		}
		s.errorf("akminio import: %s written for review, in mode: report: today's access is not reproduced exactly (see above)\n", path)
		return exitReview
	}
	s.printf("next: akminio plan --config %s --access\n", path)
	return exitOK
}
