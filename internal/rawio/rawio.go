//go:build linux && (amd64 || arm64)

// Package rawio reads and writes a socket with raw system calls: the
// reads and writes of net.Conn, without Go's system-call bookkeeping.
//
// Why: a read or write through net.Conn enters the kernel through
// syscall.Syscall, which tells Go's scheduler that the goroutine may
// block there. When every P was idle, that wakes the sysmon thread, which
// then polls every 20 us for a millisecond or more; and a call that
// lasts over 20 us (a loopback write that wakes its reader can, on a VM
// where a system call costs 3 us) loses its P to another thread, which
// must be woken, and then waits to get one back. A server in front of
// PHP-FPM goes idle between the pieces of every response, so it paid
// both at every piece. A non-blocking socket never blocks in read or
// write; rawio makes those calls with syscall.RawSyscall, and waits for
// readiness on Go's network poller as net.Conn does (through
// syscall.RawConn), so deadlines and Close work as they do for the
// net.Conn. Measured in bench/README.md ("session 12").
//
// Only sockets: a raw call cannot be preempted, so one that waits (a stat
// on a disk that stalls) would hold its P and, at the next garbage
// collection, stop every goroutine until it returns.
//
// Built with -race, the calls go through syscall.Read and syscall.Write
// instead (sys_race.go), whose annotations tell the race detector that
// a write to a socket happens before the read of its bytes at the other
// end, as for a net.Conn.
//
// A Conn does one Read and one Write at a time: callers serialize them
// (net.Conn allows concurrent calls; none of fe-php's users needs them).
package rawio

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// Conn reads and writes the socket of a net.Conn.
type Conn struct {
	rc            syscall.RawConn
	network       string
	local, remote net.Addr

	// Read's call of the poller's callback: its buffer and outcome.
	rbuf   []byte
	rn     int
	rerr   syscall.Errno
	readFn func(fd uintptr) bool

	// Write's: the buffers, how much of them went out, the outcome.
	wbufs   [2][]byte
	wn      int
	werr    syscall.Errno
	wzero   bool // the socket took 0 bytes without an error
	writeFn func(fd uintptr) bool

	// Peek's.
	pbuf   [1]byte
	pn     int
	perr   syscall.Errno
	peekFn func(fd uintptr) bool
}

// New returns a Conn for the socket of a *net.TCPConn or a stream
// *net.UnixConn, or nil for any other net.Conn: a TLS connection, a pipe,
// or a wrapper, whose Read or Write may do more than the system call.
func New(nc net.Conn) *Conn {
	var sc syscall.Conn
	switch nc := nc.(type) {
	case *net.TCPConn:
		sc = nc
	case *net.UnixConn:
		if a := nc.LocalAddr(); a == nil || a.Network() != "unix" {
			return nil // a datagram socket: an empty message is no EOF
		}
		sc = nc
	default:
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	c := &Conn{rc: rc, local: nc.LocalAddr(), remote: nc.RemoteAddr()}
	if c.local != nil {
		c.network = c.local.Network()
	}
	// Method values made once: a closure per call would be allocated.
	c.readFn = c.read
	c.writeFn = c.write
	c.peekFn = c.peek
	return c
}

// Read reads into p, as net.Conn's Read: it waits for data until the
// connection's read deadline, and returns io.EOF when the peer closed.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rbuf, c.rn, c.rerr = p, 0, 0
	err := c.rc.Read(c.readFn)
	c.rbuf = nil
	switch {
	case err != nil:
		return 0, c.pollError("read", err)
	case c.rerr != 0:
		return 0, c.opError("read", os.NewSyscallError("read", c.rerr))
	case c.rn == 0:
		return 0, io.EOF
	}
	return c.rn, nil
}

// read is the poller's callback: false asks it to wait for readiness.
func (c *Conn) read(fd uintptr) bool {
	for {
		n, e := sysRead(fd, c.rbuf)
		switch e {
		case 0:
			c.rn = n
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		default:
			c.rerr = e
			return true
		}
	}
}

// Write writes p, as net.Conn's Write: all of it, or an error.
func (c *Conn) Write(p []byte) (int, error) { return c.Writev(p, nil) }

// Writev writes p, then q, with writev: one system call when the socket
// takes both. It returns how much of the two went out.
func (c *Conn) Writev(p, q []byte) (int, error) {
	if len(p)+len(q) == 0 {
		return 0, nil
	}
	c.wbufs, c.wn, c.werr, c.wzero = [2][]byte{p, q}, 0, 0, false
	err := c.rc.Write(c.writeFn)
	c.wbufs = [2][]byte{}
	n := c.wn
	switch {
	case err != nil:
		return n, c.pollError("write", err)
	case c.wzero:
		return n, c.opError("write", io.ErrUnexpectedEOF)
	case c.werr != 0:
		return n, c.opError("write", os.NewSyscallError("writev", c.werr))
	}
	return n, nil
}

// write is the poller's callback for Writev.
func (c *Conn) write(fd uintptr) bool {
	for {
		var rest [2][]byte // what is left of wbufs
		iovs, skip := 0, c.wn
		for _, b := range c.wbufs {
			if skip >= len(b) {
				skip -= len(b)
				continue
			}
			rest[iovs] = b[skip:]
			skip = 0
			iovs++
		}
		if iovs == 0 {
			return true // all written
		}
		n, e := sysWritev(fd, rest[:iovs])
		switch {
		case e == syscall.EINTR:
		case e == syscall.EAGAIN:
			return false
		case e != 0:
			c.werr = e
			return true
		case n == 0:
			// A stream socket never takes nothing without an error;
			// do not spin on one that would (as internal/poll).
			c.wzero = true
			return true
		default:
			c.wn += n
		}
	}
}

// Peek reports, without blocking or consuming anything, whether the
// socket has data (n > 0), was closed by its peer (n == 0, err nil), or
// has neither (err is syscall.EAGAIN); other errors are the socket's.
func (c *Conn) Peek() (n int, err error) {
	c.pn, c.perr = 0, 0
	if err := c.rc.Read(c.peekFn); err != nil {
		return 0, c.pollError("read", err)
	}
	if c.perr != 0 {
		return 0, c.perr
	}
	return c.pn, nil
}

func (c *Conn) peek(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&c.pbuf[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		if e == syscall.EINTR {
			continue
		}
		c.pn, c.perr = int(n), e
		return true // never wait: the answer is now
	}
}

// opError wraps a system call's error as net.Conn's methods do.
func (c *Conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: c.network, Source: c.local, Addr: c.remote, Err: err}
}

// pollError is the poller's error (a deadline, a closed connection), named
// after the operation rather than the RawConn's "raw-read"/"raw-write".
func (c *Conn) pollError(op string, err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		err = oe.Err
	}
	return c.opError(op, err)
}
