package forwarded

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pires/go-proxyproto"
)

// DefaultHeaderTimeout is Listener's wait for a PROXY header when it is
// given none: a load balancer sends the header with the connection, so
// any wait at all means something is wrong.
const DefaultHeaderTimeout = 5 * time.Second

// Listener wraps l with the PROXY protocol, versions 1 and 2 (HAProxy's
// spec, via github.com/pires/go-proxyproto), for fe-php behind a layer 4
// load balancer (HAProxy "send-proxy", AWS NLB, ...).
//
// A connection from a trusted peer must open with a PROXY header (the
// spec forbids guessing whether one is there): its RemoteAddr becomes the
// header's source, and its LocalAddr the header's destination (the
// address the client connected to, so SERVER_ADDR and SERVER_PORT follow
// it). A LOCAL header (a health check) keeps the connection's own
// addresses. A trusted connection whose header is missing, malformed, not
// for TCP (UDP, Unix) or not complete within headerTimeout is closed and
// never returned by Accept.
//
// A connection from any other peer is returned as it is, and nothing it
// sends is read as a PROXY header: its bytes go to the HTTP (or TLS)
// server unchanged, which refuses a "PROXY ..." line as a malformed
// request. So an untrusted peer can reach fe-php directly, as it could
// without the PROXY protocol, but can never claim another address. A
// nil or empty trust makes Listener return l itself.
//
// Headers are read off the accept path, one goroutine per trusted
// connection: a silent peer holds its own connection for headerTimeout
// (DefaultHeaderTimeout if <= 0), never Accept, and Accept hands out only
// connections whose header has been read, so RemoteAddr never blocks.
// Untrusted connections are not delayed.
//
// Wrap the raw TCP listener, then TLS on top (http.Server.ServeTLS does
// that): the PROXY header comes before the TLS handshake. Close closes l
// and the connections still waiting for their header.
func Listener(l net.Listener, trust *Trust, headerTimeout time.Duration) net.Listener {
	if trust.Empty() {
		return l
	}
	if headerTimeout <= 0 {
		headerTimeout = DefaultHeaderTimeout
	}
	return &listener{
		Listener: l,
		trust:    trust,
		timeout:  headerTimeout,
		conns:    make(chan net.Conn),
		errs:     make(chan error),
		done:     make(chan struct{}),
		exit:     make(chan struct{}),
		pending:  make(map[net.Conn]struct{}),
	}
}

// listener is Listener's: a goroutine accepts from the wrapped listener
// and hands connections to Accept through conns (untrusted ones at once,
// trusted ones once their header is read).
type listener struct {
	net.Listener
	trust   *Trust
	timeout time.Duration

	start   sync.Once
	conns   chan net.Conn
	errs    chan error
	done    chan struct{} // closed by Close
	exit    chan struct{} // closed when loop ends, after exitErr is set
	exitErr error

	mu      sync.Mutex
	closed  bool
	pending map[net.Conn]struct{} // trusted connections reading their header
}

func (l *listener) Accept() (net.Conn, error) {
	l.start.Do(func() { go l.loop() })
	select {
	case c := <-l.conns:
		return c, nil
	case err := <-l.errs:
		return nil, err
	case <-l.done:
		return nil, fmt.Errorf("accept: %w", net.ErrClosed)
	case <-l.exit:
		return nil, l.exitErr
	}
}

// Close closes the wrapped listener and the connections still reading
// their PROXY header; Accept then returns an error wrapping net.ErrClosed.
func (l *listener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return fmt.Errorf("close: %w", net.ErrClosed)
	}
	l.closed = true
	close(l.done)
	for c := range l.pending {
		c.Close()
	}
	clear(l.pending)
	l.mu.Unlock()
	return l.Listener.Close()
}

// loop accepts until the wrapped listener fails for good or is closed.
// An error goes to one Accept call (unbuffered: a caller backing off
// after a temporary error, as http.Server does, paces the loop).
func (l *listener) loop() {
	for {
		c, err := l.Listener.Accept()
		if errors.Is(err, net.ErrClosed) {
			// Closed, by Close or under it: every Accept from now on
			// gets the error.
			l.exitErr = err
			close(l.exit)
			return
		}
		if err != nil {
			select {
			case l.errs <- err:
			case <-l.done:
				return
			}
			continue
		}
		if !l.trust.Contains(peerAddr(c)) {
			l.hand(c)
			continue
		}
		if !l.track(c) {
			c.Close()
			continue // closed: the next Accept fails
		}
		go l.readHeader(c)
	}
}

// readHeader reads c's PROXY header and hands c to Accept, or closes it.
func (l *listener) readHeader(c net.Conn) {
	pc := proxyproto.NewConn(c,
		proxyproto.WithPolicy(proxyproto.REQUIRE),
		proxyproto.ValidateHeader(validHeader),
		proxyproto.SetReadHeaderTimeout(l.timeout))
	// ProxyHeader reads the header, with the timeout; under REQUIRE a
	// nil header is a failure (missing, malformed, late or refused).
	ok := pc.ProxyHeader() != nil
	if !l.untrack(c) {
		return // Close closed it
	}
	if !ok {
		c.Close()
		return
	}
	l.hand(pc)
}

// hand gives c to an Accept call, or closes it if l is closed first.
func (l *listener) hand(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *listener) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.pending[c] = struct{}{}
	return true
}

// untrack reports false if Close came first (and closed c).
func (l *listener) untrack(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	delete(l.pending, c)
	return true
}

// validHeader accepts LOCAL headers and PROXY headers for TCP (or of an
// unspecified family, whose addresses are ignored): HTTP does not run
// over UDP or a Unix socket's path as a client address.
func validHeader(h *proxyproto.Header) error {
	if h.Command.IsLocal() || h.TransportProtocol == proxyproto.UNSPEC {
		return nil
	}
	switch h.TransportProtocol {
	case proxyproto.TCPv4, proxyproto.TCPv6:
		if _, ok := h.SourceAddr.(*net.TCPAddr); ok {
			return nil
		}
	}
	return errors.New("forwarded: PROXY header not for TCP")
}

// peerAddr is c's remote IP address (invalid if it has none).
func peerAddr(c net.Conn) netip.Addr {
	switch a := c.RemoteAddr().(type) {
	case *net.TCPAddr:
		return a.AddrPort().Addr()
	case nil:
		return netip.Addr{}
	default:
		return parsePeer(a.String()).Addr()
	}
}
