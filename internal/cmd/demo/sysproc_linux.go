package main

import "syscall"

// sysProcAttr puts a child akminio in a process group of its own, so that Ctrl-C in the
// terminal reaches only the demo, which then stops the child in order (SIGTERM, wait);
// and has the kernel kill the child if the demo dies without cleaning up.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
