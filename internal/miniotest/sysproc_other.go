//go:build !linux

package miniotest

import (
	"errors"
	"syscall"
)

// sysProcAttr has nothing to add outside Linux.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// nodeProcAttr: cluster nodes need Linux mount namespaces (see Cluster).
func nodeProcAttr() (*syscall.SysProcAttr, error) {
	return nil, errors.New("miniotest: a MinIO cluster on one host needs Linux mount namespaces")
}
