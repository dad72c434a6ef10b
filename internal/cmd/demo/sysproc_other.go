//go:build !linux

package main

import "syscall"

// sysProcAttr keeps the defaults where Linux's parent-death signal does not exist; the
// demo still stops its children on Ctrl-C, SIGTERM and failure.
func sysProcAttr() *syscall.SysProcAttr { return nil }
