//go:build linux && (amd64 || arm64) && race

package rawio

import "syscall"

// Under the race detector, syscall.Read and syscall.Write: their
// annotations make a socket write happen before the read of its bytes,
// in this process, as for a net.Conn (the raw calls carry none, and a
// test that reads what a handler set after its response would be
// reported as a race).

func sysRead(fd uintptr, p []byte) (int, syscall.Errno) {
	n, err := syscall.Read(int(fd), p)
	return n, errno(err)
}

// sysWritev writes the buffers in turn; it stops at a short write and
// reports the bytes written before an error as a short write.
func sysWritev(fd uintptr, bufs [][]byte) (int, syscall.Errno) {
	total := 0
	for _, b := range bufs {
		n, err := syscall.Write(int(fd), b)
		if n > 0 {
			total += n
		}
		if err != nil {
			if total > 0 {
				return total, 0
			}
			return 0, errno(err)
		}
		if n < len(b) {
			break
		}
	}
	return total, 0
}

func errno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	if e, ok := err.(syscall.Errno); ok {
		return e
	}
	return syscall.EIO
}
