//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package fastcgi

import "syscall"

// initCheck prepares the liveness check: a non-blocking MSG_PEEK on the
// socket, built once per Conn so that checking allocates nothing.
func (c *Conn) initCheck() {
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	c.raw = raw
	c.checkFn = func(fd uintptr) bool {
		for {
			_, _, err := syscall.Recvfrom(int(fd), c.peek[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			switch {
			case err == syscall.EINTR:
				continue
			case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK:
				c.checkOK = true // nothing to read: the peer has not closed
			default:
				// No error: the peer closed (0 bytes) or sent unsolicited
				// data (the stream is out of sync); any other error: the
				// socket is dead.
				c.checkOK = false
			}
			return true
		}
	}
}

// alive reports whether an idle connection still looks usable: the server has
// neither closed it nor sent anything since the last response.
func (c *Conn) alive() bool {
	if c.br.Buffered() > 0 {
		return false
	}
	if c.raw == nil {
		return true
	}
	c.checkOK = false
	if err := c.raw.Read(c.checkFn); err != nil {
		return false
	}
	return c.checkOK
}
