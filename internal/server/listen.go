package server

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/coreos/go-systemd/v22/activation"
	"golang.org/x/sys/unix"

	"github.com/fe-php/fe-php/internal/config"
)

// Listeners are the sockets fe-php serves on. They are opened apart from
// the Server so that they can outlive it: the supervisor holds them and
// its workers serve on copies, and a new configuration or a new binary
// takes them over.
type Listeners struct {
	// HTTP is server.listen: plain HTTP.
	HTTP net.Listener
	// HTTPS is server.tls.listen (nil without TLS).
	HTTPS net.Listener
	// QUIC is the UDP socket on server.tls.listen's port for HTTP/3 (nil
	// unless server.tls.http3).
	QUIC net.PacketConn
	// Admin is admin.listen: metrics and probes (nil when off). In a
	// worker it is the private socket the supervisor asks for them on.
	Admin net.Listener

	// Keys are the configured addresses the sockets were opened for, by
	// role ("http", "https", "quic", "admin"): a new configuration that
	// names the same address takes the socket over (see Listen).
	Keys map[string]string
}

// The roles of the sockets in Listeners, as Files and FromFiles name them.
const (
	RoleHTTP  = "http"
	RoleHTTPS = "https"
	RoleQUIC  = "quic"
	RoleAdmin = "admin"
)

// Listen opens the listeners cfg asks for. A socket of old (the
// listeners of the configuration or binary serving now, or nil) whose
// role cfg configures with the same address is shared instead of opened
// again, so that a reload or an upgrade never closes a listening socket
// it keeps: connections wait in its backlog meanwhile. Sockets systemd
// passed (socket activation, LISTEN_FDS) are used for the listen keys
// whose port they have; a passed socket that no key names is an error.
// The caller closes what old has that the result does not (CloseUnused).
func Listen(cfg *config.Config, old *Listeners) (*Listeners, error) {
	c := &cfg.Server
	inh, err := inheritedSockets()
	if err != nil {
		return nil, err
	}
	l := &Listeners{Keys: map[string]string{}}
	fail := func(err error) (*Listeners, error) {
		l.CloseUnused(old)
		inh.close()
		return nil, err
	}
	// stream returns old's socket for role when its address is unchanged.
	stream := func(role, addr string, have net.Listener) (net.Listener, error) {
		l.Keys[role] = addr
		if old != nil && have != nil && old.Keys[role] == addr {
			return have, nil
		}
		return inh.listen(addr)
	}
	if l.HTTP, err = stream(RoleHTTP, c.Listen, old.get(RoleHTTP)); err != nil {
		return fail(fmt.Errorf("server.listen %s: %w", c.Listen, err))
	}
	if c.TLSOn() {
		if l.HTTPS, err = stream(RoleHTTPS, c.TLS.Listen, old.get(RoleHTTPS)); err != nil {
			return fail(fmt.Errorf("server.tls.listen %s: %w", c.TLS.Listen, err))
		}
		if c.TLS.HTTP3 {
			// The same port as HTTPS (Alt-Svc names a port only), on UDP.
			l.Keys[RoleQUIC] = c.TLS.Listen
			if old != nil && old.QUIC != nil && old.Keys[RoleQUIC] == c.TLS.Listen {
				l.QUIC = old.QUIC
			} else {
				addr := l.HTTPS.Addr().(*net.TCPAddr)
				if l.QUIC, err = inh.listenUDP(addr); err != nil {
					return fail(fmt.Errorf("server.tls.http3: UDP %s: %w", addr, err))
				}
			}
		}
	}
	if a := cfg.Admin.Listen; a != "" {
		if l.Admin, err = stream(RoleAdmin, a, old.get(RoleAdmin)); err != nil {
			return fail(fmt.Errorf("admin.listen %s: %w", a, err))
		}
	}
	if left := inh.unused(); left != "" {
		return fail(fmt.Errorf("systemd passed sockets that no listen key names: %s", left))
	}
	return l, nil
}

// get returns the stream listener of role (nil if none, or l is nil).
func (l *Listeners) get(role string) net.Listener {
	if l == nil {
		return nil
	}
	switch role {
	case RoleHTTP:
		return l.HTTP
	case RoleHTTPS:
		return l.HTTPS
	case RoleAdmin:
		return l.Admin
	}
	return nil
}

// sockets lists l's sockets by role.
func (l *Listeners) sockets() map[string]io.Closer {
	m := map[string]io.Closer{}
	if l == nil {
		return m
	}
	for role, c := range map[string]io.Closer{RoleHTTP: l.HTTP, RoleHTTPS: l.HTTPS, RoleAdmin: l.Admin} {
		if c != nil { // a nil net.Listener converts to a nil io.Closer
			m[role] = c
		}
	}
	if l.QUIC != nil {
		m[RoleQUIC] = l.QUIC
	}
	return m
}

// Dup returns a duplicate descriptor (close-on-exec) of each socket, by
// role, for another process to inherit; the caller closes them. It makes
// no *os.File on purpose: an os.File asked for its Fd() (as os/exec asks
// each of its ExtraFiles) switches the socket to blocking mode, and a
// listening socket is one open file shared by every process serving on
// it: a worker whose accept then blocks in the kernel can never close its
// listener, and its drain never ends.
func (l *Listeners) Dup() (map[string]int, error) {
	fds := map[string]int{}
	for role, c := range l.sockets() {
		sc, ok := c.(syscall.Conn)
		if !ok {
			closeFDs(fds)
			return nil, fmt.Errorf("%s socket %T cannot be handed on", role, c)
		}
		fd, err := DupFD(sc)
		if err != nil {
			closeFDs(fds)
			return nil, fmt.Errorf("%s socket: %w", role, err)
		}
		fds[role] = fd
	}
	return fds, nil
}

// DupFD duplicates the descriptor of c (a listener, a packet conn),
// close-on-exec, leaving its blocking mode alone (see Dup).
func DupFD(c syscall.Conn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd, derr := -1, error(nil)
	if err := rc.Control(func(fd uintptr) { nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, err
	}
	return nfd, derr
}

func closeFDs(fds map[string]int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

func closeFiles(files map[string]*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// FromFiles makes Listeners of sockets handed on by Files (in another
// process), with the keys they were opened for. It takes ownership of
// the files.
func FromFiles(files map[string]*os.File, keys map[string]string) (*Listeners, error) {
	l := &Listeners{Keys: keys}
	defer closeFiles(files) // the listeners hold descriptors of their own
	for role, f := range files {
		var err error
		switch role {
		case RoleQUIC:
			l.QUIC, err = net.FilePacketConn(f)
		case RoleHTTP:
			l.HTTP, err = net.FileListener(f)
		case RoleHTTPS:
			l.HTTPS, err = net.FileListener(f)
		case RoleAdmin:
			l.Admin, err = net.FileListener(f)
		default:
			err = errors.New("unknown role")
		}
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("inherited %s socket: %w", role, err)
		}
	}
	if l.HTTP == nil {
		l.Close()
		return nil, errors.New("no inherited http socket")
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
	return l.CloseUnused(nil)
}

// CloseUnused closes the sockets of l that keep does not share.
func (l *Listeners) CloseUnused(keep *Listeners) error {
	kept := map[io.Closer]bool{}
	for _, c := range keep.sockets() {
		kept[c] = true
	}
	var errs []error
	for _, c := range l.sockets() {
		if !kept[c] {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}
