//go:build !akminio_testhooks

package main

import "github.com/akminio/akminio/reconcile/rotate"

// rotationTestHooks returns nil: a release build has no test hooks (rotate_testhooks.go).
func rotationTestHooks() func(environ []string, d *rotate.Deps) { return nil }
