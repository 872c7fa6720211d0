//go:build linux && (amd64 || arm64) && !race

package rawio

import (
	"syscall"
	"unsafe"
)

// sysRead is read(2) as a raw system call.
func sysRead(fd uintptr, p []byte) (int, syscall.Errno) {
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(n), e
}

// sysWritev is writev(2) of one or two non-empty buffers as a raw system
// call.
func sysWritev(fd uintptr, bufs [][]byte) (int, syscall.Errno) {
	var iov [2]syscall.Iovec
	for i, b := range bufs {
		iov[i].Base = &b[0]
		iov[i].SetLen(len(b))
	}
	n, _, e := syscall.RawSyscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(bufs)))
	return int(n), e
}
