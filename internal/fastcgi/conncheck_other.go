//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package fastcgi

func (c *Conn) initCheck() {}

func (c *Conn) probe() probeResult {
	if c.br.Buffered() > 0 {
		return probeData
	}
	return probeOK
}
