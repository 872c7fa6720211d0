package server

import (
	"errors"
	"fmt"
	"net"

	"github.com/fe-php/fe-php/internal/config"
)

// Listeners are the sockets fe-php serves on. They are opened apart from
// the Server so that they can outlive it (a new configuration, or a new
// binary, takes them over).
type Listeners struct {
	// HTTP is server.listen: plain HTTP.
	HTTP net.Listener
	// HTTPS is server.tls.listen (nil without TLS).
	HTTPS net.Listener
	// QUIC is the UDP socket on server.tls.listen's port for HTTP/3 (nil
	// unless server.tls.http3).
	QUIC net.PacketConn
	// Admin is admin.listen: metrics and probes (nil when off).
	Admin net.Listener
}

// Listen opens the listeners c asks for.
func Listen(c *config.Server) (*Listeners, error) {
	l := &Listeners{}
	var err error
	if l.HTTP, err = net.Listen("tcp", c.Listen); err != nil {
		return nil, fmt.Errorf("server.listen %s: %w", c.Listen, err)
	}
	if c.TLSOn() {
		if l.HTTPS, err = net.Listen("tcp", c.TLS.Listen); err != nil {
			l.Close()
			return nil, fmt.Errorf("server.tls.listen %s: %w", c.TLS.Listen, err)
		}
		if c.TLS.HTTP3 {
			// The same port as HTTPS (Alt-Svc names a port only), on UDP.
			addr := l.HTTPS.Addr().(*net.TCPAddr)
			if l.QUIC, err = net.ListenUDP("udp", &net.UDPAddr{IP: addr.IP, Port: addr.Port}); err != nil {
				l.Close()
				return nil, fmt.Errorf("server.tls.http3: UDP %s: %w", addr, err)
			}
		}
	}
	return l, nil
}

// ListenAdmin opens the admin listener a asks for, if any.
func (l *Listeners) ListenAdmin(a *config.Admin) error {
	if a.Listen == "" {
		return nil
	}
	ln, err := net.Listen("tcp", a.Listen)
	if err != nil {
		return fmt.Errorf("admin.listen %s: %w", a.Listen, err)
	}
	l.Admin = ln
	return nil
}

// Close closes every listener.
func (l *Listeners) Close() error {
	var errs []error
	if l.HTTP != nil {
		errs = append(errs, l.HTTP.Close())
	}
	if l.HTTPS != nil {
		errs = append(errs, l.HTTPS.Close())
	}
	if l.QUIC != nil {
		errs = append(errs, l.QUIC.Close())
	}
	if l.Admin != nil {
		errs = append(errs, l.Admin.Close())
	}
	return errors.Join(errs...)
}
