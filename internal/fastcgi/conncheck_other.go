//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package fastcgi

func (c *Conn) initCheck() {}

func (c *Conn) alive() bool { return c.br.Buffered() == 0 }
