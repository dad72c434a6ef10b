//go:build !akminio_testhooks

package main

import (
	"github.com/akminio/akminio/reconcile"
	"github.com/akminio/akminio/reconcile/rotate"
)

// rotationTestHooks returns nil: a release build has no test hooks (rotate_testhooks.go).
func rotationTestHooks() func(environ []string, d *rotate.Deps) { return nil }

// engineTestHook returns nil: a release build has no crash fault point (rotate_testhooks.go).
func engineTestHook() func(*reconcile.Engine) { return nil }
