// Package http1 serves HTTP/1.1 connections, plain or over TLS, with a
// request loop of its own for the common case, and hands every other
// connection to a net/http server.
//
// Why: on the project's 2-core machines net/http spends about as much CPU
// on a keep-alive request as the whole request costs in a minimal loop
// (an empty handler: 27-36 us of CPU a request against 13-15 us on the
// AMD EPYC VM, with the same system calls; bench/README.md). Most of it is a
// goroutine per request that watches the socket while the handler runs,
// and its hand-offs between threads.
//
// The fast path takes a request only when it is plain: GET or HEAD,
// HTTP/1.1, an origin-form target, one valid Host, no body and none of
// Expect, Upgrade, Content-Length or Transfer-Encoding, every header line
// a valid token, a colon and a valid value, the whole head within one
// 4 KiB buffer, CRLF line ends. Anything else, from the first byte in
// doubt, goes with the rest of its connection to Fallback, a net/http
// server, which answers as it always has (a 400, a 431, a body, an
// upgrade). So the fast path only has to agree with net/http on requests
// both accept, and the response side (response.go) follows net/http's
// rules for heads, lengths, chunking and keep-alive.
//
// The request context is net/http's too, with one difference: the
// goroutine that notices a client leaving starts only once the request
// has run watchAfter (50 ms) and something looks at the context (Done,
// Err, context.AfterFunc); a request that ends sooner never pays for it
// (ctx.go).
//
// Over TLS (Server.TLSConfig), the loop does the handshake as net/http
// would, with the same timeout and the same answer to a client that
// speaks plain HTTP; it serves the connections that negotiated
// "http/1.1" or no protocol, and hands the others (h2, acme-tls/1) to
// Fallback whole, before reading a byte of them.
package http1

import (
	"context"
	"crypto/tls"
	"errors"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Server serves HTTP/1.1 connections. Fallback holds the settings (the
// timeouts, MaxHeaderBytes, ConnState, ErrorLog) and serves the
// connections the fast path hands over; Handler serves the requests of
// both. Its zero value is not usable: set both.
//
// Fallback's other settings (SetKeepAlivesEnabled, ConnContext,
// BaseContext) do not apply to the fast path; fe-php uses none. Serve
// wraps Fallback.ConnState (see startFallback). A TLS connection handed
// over whole (HTTP/2) is reported StateNew twice, by the fast path at
// its accept and by net/http when it takes it.
type Server struct {
	Handler  http.Handler
	Fallback *http.Server
	// TLSConfig, if set, makes Serve's connections TLS (as
	// http.Server.ServeTLS): its NextProtos are what the handshake
	// offers. For Fallback to serve the HTTP/2 connections handed to it,
	// its Protocols must allow HTTP/2 and its TLSConfig must name "h2"
	// (net/http's rule for Serve).
	TLSConfig *tls.Config

	fallbackOnce sync.Once
	handoff      *handoffListener
	connState    func(net.Conn, http.ConnState) // Fallback's own hook

	mu         sync.Mutex
	listeners  map[net.Listener]struct{}
	conns      map[*conn]struct{}
	inShutdown atomic.Bool

	served, handedOff atomic.Uint64
}

// Stats reports the requests the fast path has served and the
// connections it has handed to Fallback.
func (s *Server) Stats() (served, handedOff uint64) {
	return s.served.Load(), s.handedOff.Load()
}

// Serve accepts connections on ln until it is closed, as
// http.Server.Serve; it returns http.ErrServerClosed after Shutdown or
// Close.
func (s *Server) Serve(ln net.Listener) error {
	s.startFallback(ln.Addr())
	if !s.track(ln) {
		return http.ErrServerClosed
	}
	defer s.untrack(ln)
	var delay time.Duration
	for {
		rwc, err := ln.Accept()
		if err != nil {
			if s.inShutdown.Load() {
				return http.ErrServerClosed
			}
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() {
				// Out of file descriptors and the like: back off as
				// net/http does.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.logf("http: Accept error: %v; retrying in %v", err, delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		if s.TLSConfig != nil {
			rwc = tls.Server(rwc, s.TLSConfig)
		}
		c := newConn(s, rwc)
		s.mu.Lock()
		if s.conns == nil {
			s.conns = make(map[*conn]struct{})
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		c.setState(http.StateNew)
		go c.serve()
	}
}

// startFallback starts Fallback's Serve on the listener that hands
// connections over, once. A handed-over connection ends its fast-path
// life (StateHijacked) only once Fallback has it (StateNew): a hook that
// counts connections waiting for their first request (fe-php's graceful
// shutdown) never sees a gap between the two.
func (s *Server) startFallback(addr net.Addr) {
	s.fallbackOnce.Do(func() {
		hook := s.Fallback.ConnState
		s.connState = hook
		if hook != nil {
			s.Fallback.ConnState = func(c net.Conn, st http.ConnState) {
				hook(c, st)
				if hc, ok := c.(handed); ok && st == http.StateNew {
					hook(hc.fastConn(), http.StateHijacked)
				}
			}
		}
		s.mu.Lock()
		s.handoff = newHandoffListener(addr)
		s.mu.Unlock()
		go func() {
			// It fails at its start or not at all (an HTTP/2 setup it
			// refuses): the fast path then serves alone, and every
			// connection it would hand over is closed. Say so.
			if err := s.Fallback.Serve(s.handoff); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.logf("http1: the fallback server stopped: %v", err)
			}
		}()
	})
}

func (s *Server) track(ln net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inShutdown.Load() {
		return false
	}
	if s.listeners == nil {
		s.listeners = make(map[net.Listener]struct{})
	}
	s.listeners[ln] = struct{}{}
	return true
}

func (s *Server) untrack(ln net.Listener) {
	s.mu.Lock()
	delete(s.listeners, ln)
	s.mu.Unlock()
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Shutdown stops the server as http.Server.Shutdown does: it closes the
// listeners and the idle connections, lets the requests in flight finish
// (their connections close after the response), and returns when all
// connections, the fallback's too, are closed or ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	s.inShutdown.Store(true)
	s.closeListeners()
	fallback := make(chan error, 1)
	go func() { fallback <- s.Fallback.Shutdown(ctx) }()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !s.closeIdle() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	select {
	case err := <-fallback:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close closes the listeners and every connection at once, as
// http.Server.Close.
func (s *Server) Close() error {
	s.inShutdown.Store(true)
	err := s.closeListeners()
	s.mu.Lock()
	for c := range s.conns {
		c.rwc.Close()
	}
	s.mu.Unlock()
	if ferr := s.Fallback.Close(); err == nil {
		err = ferr
	}
	return err
}

func (s *Server) closeListeners() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	for ln := range s.listeners {
		if cerr := ln.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	if s.handoff != nil {
		s.handoff.Close()
	}
	return err
}

// closeIdle closes the connections that wait for a request (those that
// have not sent their first one for 5 s too, as net/http) and reports
// whether none is left.
func (s *Server) closeIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		st, since := c.getState()
		if st == http.StateIdle || st == http.StateNew && time.Since(since) > 5*time.Second {
			c.rwc.Close()
		}
	}
	return len(s.conns) == 0
}

func (s *Server) logf(format string, args ...any) {
	if l := s.Fallback.ErrorLog; l != nil {
		l.Printf(format, args...)
	} else {
		log.Printf(format, args...)
	}
}

// handoffListener is the listener Fallback serves: it yields the
// connections the fast path gave up on.
type handoffListener struct {
	addr   net.Addr
	conns  chan net.Conn
	once   sync.Once
	closed chan struct{}
}

func newHandoffListener(addr net.Addr) *handoffListener {
	return &handoffListener{addr: addr, conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }

// give hands c to Fallback; false if it has stopped accepting.
func (l *handoffListener) give(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.closed:
		return false
	}
}
