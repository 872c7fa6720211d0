//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package fastcgi

import "syscall"

// initCheck prepares the liveness check: a non-blocking MSG_PEEK on the
// socket, built once per Conn so that checking allocates nothing.
func (c *Conn) initCheck() {
	if c.rawio != nil {
		return // probe uses rawio.Peek
	}
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
			n, _, err := syscall.Recvfrom(int(fd), c.peek[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			if err == syscall.EINTR {
				continue
			}
			c.checkRes = peekResult(n, err)
			return true
		}
	}
}

// peekResult tells what a non-blocking MSG_PEEK of one byte found.
func peekResult(n int, err error) probeResult {
	switch {
	case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK:
		return probeOK // nothing to read: the peer has not closed
	case err == nil && n > 0:
		// Unsolicited data: late output of the last request (after
		// fastcgi_finish_request()), or anything else; the stream cannot
		// be trusted.
		return probeData
	default:
		// 0 bytes: the peer closed (or half-closed); any other error: the
		// socket is dead.
		return probeDead
	}
}

// probe checks an idle connection without blocking: probeOK if the server has
// neither closed it nor sent anything since the last response, probeData if
// something arrived, probeDead if it is closed or failed.
func (c *Conn) probe() probeResult {
	if c.br.Buffered() > 0 {
		return probeData
	}
	if c.rawio != nil {
		n, err := c.rawio.Peek()
		return peekResult(n, err)
	}
	if c.raw == nil {
		return probeOK
	}
	c.checkRes = probeDead
	if err := c.raw.Read(c.checkFn); err != nil {
		return probeDead
	}
	return c.checkRes
}
