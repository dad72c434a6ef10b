package miniotest

import (
	"os"
	"syscall"
)

// sysProcAttr makes the kernel kill the server when the test binary dies without
// running its cleanups (a panic, a timeout, SIGKILL), so no server outlives its test.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// nodeProcAttr is sysProcAttr in a mount namespace of the node's own (see Cluster): as
// root a new mount namespace; otherwise a user namespace that maps the caller to root in
// it, which may bind-mount inside its own mount namespace.
func nodeProcAttr() (*syscall.SysProcAttr, error) {
	a := sysProcAttr()
	a.Cloneflags = syscall.CLONE_NEWNS
	if uid := os.Getuid(); uid != 0 {
		a.Cloneflags |= syscall.CLONE_NEWUSER
		a.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: uid, Size: 1}}
		a.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}}
	}
	return a, nil
}
