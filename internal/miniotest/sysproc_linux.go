package miniotest

import "syscall"

// sysProcAttr makes the kernel kill the server when the test binary dies without
// running its cleanups (a panic, a timeout, SIGKILL), so no server outlives its test.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
