package server

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/coreos/go-systemd/v22/activation"

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

// Listen opens the listeners cfg asks for. Sockets systemd passed (socket
// activation, LISTEN_FDS) are used for the listen keys whose port they
// have, so that a restart refuses no connection: systemd holds them
// meanwhile. A passed socket that no key names is an error.
func Listen(cfg *config.Config) (*Listeners, error) {
	c := &cfg.Server
	inh, err := inheritedSockets()
	if err != nil {
		return nil, err
	}
	l := &Listeners{}
	fail := func(err error) (*Listeners, error) {
		l.Close()
		inh.close()
		return nil, err
	}
	if l.HTTP, err = inh.listen(c.Listen); err != nil {
		return fail(fmt.Errorf("server.listen %s: %w", c.Listen, err))
	}
	if c.TLSOn() {
		if l.HTTPS, err = inh.listen(c.TLS.Listen); err != nil {
			return fail(fmt.Errorf("server.tls.listen %s: %w", c.TLS.Listen, err))
		}
		if c.TLS.HTTP3 {
			// The same port as HTTPS (Alt-Svc names a port only), on UDP.
			addr := l.HTTPS.Addr().(*net.TCPAddr)
			if l.QUIC, err = inh.listenUDP(addr); err != nil {
				return fail(fmt.Errorf("server.tls.http3: UDP %s: %w", addr, err))
			}
		}
	}
	if a := cfg.Admin.Listen; a != "" {
		if l.Admin, err = inh.listen(a); err != nil {
			return fail(fmt.Errorf("admin.listen %s: %w", a, err))
		}
	}
	if left := inh.unused(); left != "" {
		return fail(fmt.Errorf("systemd passed sockets that no listen key names: %s", left))
	}
	return l, nil
}

// inherited are the sockets systemd passed, not yet taken.
type inherited struct {
	tcp []net.Listener
	udp []net.PacketConn
}

// inheritedSockets takes the sockets of systemd's socket activation (none
// when fe-php was not started so).
func inheritedSockets() (*inherited, error) {
	inh := &inherited{}
	for _, f := range activation.Files(true) {
		if ln, err := net.FileListener(f); err == nil {
			inh.tcp = append(inh.tcp, ln)
		} else if pc, err := net.FilePacketConn(f); err == nil {
			inh.udp = append(inh.udp, pc)
		} else {
			f.Close()
			inh.close()
			return nil, fmt.Errorf("a socket systemd passed (%s) is neither a stream nor a datagram socket", f.Name())
		}
		f.Close() // the listener holds its own descriptor
	}
	return inh, nil
}

// listen returns the inherited listener with addr's port, or a new one.
func (inh *inherited) listen(addr string) (net.Listener, error) {
	if _, port, err := net.SplitHostPort(addr); err == nil && port != "0" {
		for i, ln := range inh.tcp {
			if a, ok := ln.Addr().(*net.TCPAddr); ok && strconv.Itoa(a.Port) == port {
				inh.tcp = append(inh.tcp[:i], inh.tcp[i+1:]...)
				return ln, nil
			}
		}
	}
	return net.Listen("tcp", addr)
}

// listenUDP returns the inherited UDP socket on addr's port, or a new one.
func (inh *inherited) listenUDP(addr *net.TCPAddr) (net.PacketConn, error) {
	for i, pc := range inh.udp {
		if a, ok := pc.LocalAddr().(*net.UDPAddr); ok && a.Port == addr.Port {
			inh.udp = append(inh.udp[:i], inh.udp[i+1:]...)
			return pc, nil
		}
	}
	return net.ListenUDP("udp", &net.UDPAddr{IP: addr.IP, Port: addr.Port})
}

// unused names the inherited sockets no key took.
func (inh *inherited) unused() string {
	var names []string
	for _, ln := range inh.tcp {
		names = append(names, "tcp "+ln.Addr().String())
	}
	for _, pc := range inh.udp {
		names = append(names, "udp "+pc.LocalAddr().String())
	}
	return strings.Join(names, ", ")
}

func (inh *inherited) close() {
	for _, ln := range inh.tcp {
		ln.Close()
	}
	for _, pc := range inh.udp {
		pc.Close()
	}
	inh.tcp, inh.udp = nil, nil
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
