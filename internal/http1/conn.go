package http1

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/fe-php/fe-php/internal/rawio"
)

// bufSize is the read and write buffer of a connection; a request head
// must fit the read buffer to take the fast path.
const bufSize = 4 << 10

// conn is one client connection on the fast path.
type conn struct {
	srv    *Server
	rwc    net.Conn
	rawio  *rawio.Conn // rwc's socket, read and written raw; nil over TLS
	remote string
	base   context.Context // the values every request's context carries
	// tlsState is every request's Request.TLS on a TLS connection, set
	// once its handshake is done.
	tlsState *tls.ConnectionState

	r  connReader
	br *bufio.Reader
	bw *bufio.Writer // on rwc, through checkConnErrorWriter
	// werr is the first error writing to rwc: the response is lost, the
	// connection closes.
	werr error
	// gather is a body written with bw's next flush in one writev, and
	// gathered how much of it went (chunkWriter.Write).
	gather   []byte
	gathered int

	res      *response       // the request in flight's
	hijacked bool            // written under r.mu
	exclude  map[string]bool // scratch for the response's head
	head     bytes.Buffer    // the response's header lines
	headAt   time.Time       // when the current request's header timeout began

	stateMu sync.Mutex
	state   http.ConnState
	since   time.Time
}

func newConn(s *Server, rwc net.Conn) *conn {
	c := &conn{srv: s, rwc: rwc, rawio: rawio.New(rwc)}
	if ra := rwc.RemoteAddr(); ra != nil {
		c.remote = ra.String()
	}
	c.base = context.WithValue(context.WithValue(context.Background(),
		http.ServerContextKey, s.Fallback), http.LocalAddrContextKey, rwc.LocalAddr())
	c.r.init(c)
	return c
}

func (c *conn) setState(st http.ConnState) {
	c.stateMu.Lock()
	c.state, c.since = st, time.Now()
	c.stateMu.Unlock()
	if hook := c.srv.connState; hook != nil {
		hook(c.rwc, st)
	}
}

func (c *conn) getState() (http.ConnState, time.Time) {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	return c.state, c.since
}

func (c *conn) serve() {
	var inFlight *response
	defer func() {
		if err := recover(); err != nil && err != http.ErrAbortHandler {
			buf := make([]byte, 64<<10)
			buf = buf[:runtime.Stack(buf, false)]
			c.srv.logf("http: panic serving %v: %v\n%s", c.remote, err, buf)
		}
		if inFlight != nil {
			inFlight.ctx.end()
		}
		if !c.hijacked {
			if inFlight != nil {
				c.r.abortPendingRead()
			}
			if c.bw != nil && c.werr == nil {
				c.bw.Flush()
			}
			c.rwc.Close()
			c.setState(http.StateClosed)
		}
		c.srv.forget(c)
		c.release()
	}()

	srv := c.srv.Fallback
	if tc, ok := c.rwc.(*tls.Conn); ok {
		if !c.handshake(tc) {
			return
		}
		if p := c.tlsState.NegotiatedProtocol; p != "" && p != "http/1.1" {
			c.handOffWhole() // h2, acme-tls/1: net/http's to serve or to close
			return
		}
	}
	c.br = getReader(&c.r)
	c.bw = connWriters.get(checkConnErrorWriter{c})
	c.headAt = time.Now()
	c.rwc.SetReadDeadline(after(c.headAt, readHeaderTimeout(srv)))
	for {
		head, ok, err := c.readHead()
		if err != nil {
			return // a read error or timeout: net/http does not answer those either
		}
		var req *http.Request
		if ok {
			req, ok = c.newRequest(head)
		}
		if !ok {
			// Still StateNew or StateIdle: net/http takes over (handOff).
			c.handOff()
			return
		}
		c.setState(http.StateActive)
		if c.srv.inShutdown.Load() {
			return // as net/http: no request read after Shutdown began runs
		}
		if _, err := c.br.Discard(len(head)); err != nil {
			return
		}
		c.rwc.SetReadDeadline(after(c.headAt, srv.ReadTimeout)) // from the head's start, as net/http
		if d := srv.WriteTimeout; d > 0 {
			c.rwc.SetWriteDeadline(time.Now().Add(d))
		}

		c.srv.served.Add(1)
		w := newResponse(c, req)
		inFlight = w
		c.srv.Handler.ServeHTTP(w, req)
		inFlight = nil
		w.ctx.end()
		if c.hijacked {
			return
		}
		w.finishRequest()
		c.rwc.SetWriteDeadline(time.Time{})
		if !w.shouldReuseConnection() {
			return
		}
		c.setState(http.StateIdle)
		if c.srv.inShutdown.Load() {
			return
		}
		// Let the connections Go's poller has woken go first. Under load,
		// the client's next request is often here already (our write woke
		// it, and it answered before this thread ran again), so this
		// goroutine would read it and run on, while connections whose
		// requests came in as they waited sit in the run queue until a P
		// is free or sysmon polls (every 10 ms). Yielding serves them in
		// turn, as an event loop does: hello.php under wrk -c32 on 2
		// cores had p90 13 ms and p99 29 ms without it, 3.6 and 8.4 with
		// it, at the same throughput (bench/README.md).
		runtime.Gosched()
		c.rwc.SetReadDeadline(after(time.Now(), idleTimeout(srv)))
		if _, err := c.br.Peek(4); err != nil {
			return
		}
		c.headAt = time.Now()
		c.rwc.SetReadDeadline(after(c.headAt, readHeaderTimeout(srv)))
	}
}

// after is the deadline d after t, or none (the zero time) for d <= 0.
func after(t time.Time, d time.Duration) time.Time {
	if d <= 0 {
		return time.Time{}
	}
	return t.Add(d)
}

func readHeaderTimeout(s *http.Server) time.Duration {
	if s.ReadHeaderTimeout != 0 {
		return s.ReadHeaderTimeout
	}
	return s.ReadTimeout
}

func idleTimeout(s *http.Server) time.Duration {
	if s.IdleTimeout != 0 {
		return s.IdleTimeout
	}
	return s.ReadTimeout
}

// handshake runs tc's TLS handshake as net/http does: within the
// shortest of the read header, read and write timeouts, answering a
// client that speaks plain HTTP with a 400. It reports whether the
// connection is ready for its requests.
func (c *conn) handshake(tc *tls.Conn) bool {
	srv := c.srv.Fallback
	var to time.Duration
	for _, d := range [...]time.Duration{srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout} {
		if d > 0 && (to == 0 || d < to) {
			to = d
		}
	}
	if to > 0 {
		dl := time.Now().Add(to)
		tc.SetReadDeadline(dl)
		tc.SetWriteDeadline(dl)
	}
	if err := tc.HandshakeContext(c.base); err != nil {
		reason := err.Error()
		var re tls.RecordHeaderError
		if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader) {
			io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
			re.Conn.Close()
			reason = "client sent an HTTP request to an HTTPS server"
		}
		c.srv.logf("http: TLS handshake error from %s: %v", c.rwc.RemoteAddr(), reason)
		return false
	}
	if to > 0 {
		tc.SetReadDeadline(time.Time{})
		tc.SetWriteDeadline(time.Time{})
	}
	st := tc.ConnectionState()
	c.tlsState = &st
	return true
}

// looksLikeHTTP reports whether a TLS record header is the start of a
// plain HTTP request (net/http's test).
func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

// readHead returns the next request's head, through its blank line, still
// in the read buffer. ok is false when the fast path will not take the
// request: the head does not fit the buffer, or a line ends without CR.
func (c *conn) readHead() (head []byte, ok bool, err error) {
	scanned := 0
	for {
		buf, _ := c.br.Peek(c.br.Buffered())
		for i := scanned; i < len(buf); i++ {
			if buf[i] != '\n' {
				continue
			}
			if i == 0 || buf[i-1] != '\r' {
				return nil, false, nil
			}
			if i >= 3 && buf[i-2] == '\n' && buf[i-3] == '\r' {
				return buf[:i+1], true, nil
			}
		}
		scanned = len(buf)
		if len(buf) == bufSize {
			return nil, false, nil
		}
		if _, err := c.br.Peek(len(buf) + 1); err != nil {
			if len(buf) > 0 {
				// A partial head, then an error: net/http reads the same
				// bytes and the same error, and answers as it does.
				return nil, false, nil
			}
			return nil, false, err
		}
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// handOff gives the connection, with what it has sent so far, to the
// fallback server.
func (c *conn) handOff() {
	c.r.hijack()
	hc := &handedConn{Conn: c.rwc, br: c.br, cr: &c.r}
	// The header timeout has been running since the request began;
	// net/http's would restart when it takes the connection over.
	hc.notAfter = after(c.headAt, readHeaderTimeout(c.srv.Fallback))
	c.br = nil // the handed connection owns the buffer now
	var nc net.Conn = hc
	if c.tlsState != nil {
		nc = handedTLSConn{hc, c.tlsState}
	}
	c.srv.handedOff.Add(1) // before net/http can answer: Stats is never behind a reply
	if !c.give(nc) {
		c.srv.handedOff.Add(^uint64(0))
	}
}

// handOffWhole gives a TLS connection whose handshake chose another
// protocol than HTTP/1.1 to the fallback server as it is: net/http sees
// a *tls.Conn, and serves or closes it as that protocol asks. It keeps
// the connection's state (StateNew), which net/http takes up. After
// Shutdown has begun there is no fallback to give it to: it is closed
// before a byte of its requests was read (net/http would serve its
// first HTTP/2 request; fe-php's shutdown gives handshakes a second
// before Shutdown, internal/server/fresh.go).
func (c *conn) handOffWhole() {
	c.r.hijack()
	c.give(c.rwc)
}

// give hands nc, this connection as the fallback server is to see it, to
// that server; the caller has marked it hijacked. It is not ours any
// more: Shutdown's closing of idle connections must not close it under
// net/http. If the fallback has stopped accepting (shutting down), the
// connection is closed and give reports false.
func (c *conn) give(nc net.Conn) bool {
	c.srv.forget(c)
	if c.srv.handoff.give(nc) {
		return true
	}
	c.rwc.Close()
	c.setState(http.StateClosed)
	return false
}

// release pools the buffers, unless a hijacker has them.
func (c *conn) release() {
	if c.hijacked {
		return
	}
	if c.br != nil {
		putReader(c.br)
		c.br = nil
	}
	if c.bw != nil {
		connWriters.put(c.bw)
		c.bw = nil
	}
}

// handed is a connection the fast path handed over with bytes it had read.
type handed interface {
	// fastConn is the connection the fast path had (and reported states of).
	fastConn() net.Conn
}

// handedConn is a connection the fallback server took over: its reads
// return the bytes the fast path had read first.
type handedConn struct {
	net.Conn
	br       *bufio.Reader
	cr       *connReader
	notAfter time.Time
	clamped  bool
}

func (hc *handedConn) fastConn() net.Conn { return hc.Conn }

// handedTLSConn is a handedConn on TLS. net/http takes it for a plain
// connection (it is not a *tls.Conn) and sets Request.TLS from its
// ConnectionState. It has no ReadFrom: like a *tls.Conn's, net/http's
// writes to it go through the response's length checks (sendfile has
// nothing to gain under TLS).
type handedTLSConn struct {
	handedNetConn
	state *tls.ConnectionState
}

// handedNetConn is what a handedTLSConn keeps of a *handedConn.
type handedNetConn interface {
	net.Conn
	CloseWrite() error
	handed
}

// ConnectionState is the handshake's.
func (hc handedTLSConn) ConnectionState() tls.ConnectionState { return *hc.state }

func (hc *handedConn) Read(p []byte) (int, error) {
	if hc.br != nil {
		if hc.br.Buffered() > 0 {
			return hc.br.Read(p)
		}
		hc.br = nil // not pooled: the fast path's conn already let go of it
	}
	return hc.cr.Read(p)
}

// SetReadDeadline keeps the first deadline net/http sets (its header
// timeout) no later than the one the fast path was running, so a slow
// head cannot get the timeout twice.
func (hc *handedConn) SetReadDeadline(t time.Time) error {
	if !hc.clamped {
		hc.clamped = true
		if !hc.notAfter.IsZero() && (t.IsZero() || t.After(hc.notAfter)) {
			t = hc.notAfter
		}
	}
	return hc.Conn.SetReadDeadline(t)
}

// CloseWrite lets net/http end a refused request's connection gently
// (its FIN first, so the client reads the answer before the reset).
func (hc *handedConn) CloseWrite() error {
	if cw, ok := hc.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// ReadFrom keeps sendfile(2) for net/http's responses on this connection.
func (hc *handedConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := hc.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{hc.Conn}, r)
}

// connReader reads the connection for the buffered reader, and watches it
// for the client's leaving while a handler runs (watch): a read of one
// byte that a deadline in the past ends when the handler is done, as
// net/http's background read.
type connReader struct {
	c       *conn
	mu      sync.Mutex
	cond    *sync.Cond
	inRead  bool
	aborted bool
	hasByte bool
	byteBuf [1]byte
}

func (cr *connReader) init(c *conn) {
	cr.c = c
	cr.cond = sync.NewCond(&cr.mu)
}

func (cr *connReader) Read(p []byte) (int, error) {
	cr.mu.Lock()
	if cr.inRead {
		cr.mu.Unlock()
		panic("http1: concurrent read of a connection being watched")
	}
	if len(p) == 0 {
		cr.mu.Unlock()
		return 0, nil
	}
	if cr.hasByte {
		p[0] = cr.byteBuf[0]
		cr.hasByte = false
		cr.mu.Unlock()
		return 1, nil
	}
	cr.inRead = true
	cr.mu.Unlock()
	n, err := cr.c.read(p)
	cr.mu.Lock()
	cr.inRead = false
	cr.mu.Unlock()
	cr.cond.Broadcast()
	return n, err
}

// startWatch starts the read that notices the client leaving, if none
// runs and ctx's handler still does; it cancels ctx then.
func (cr *connReader) startWatch(ctx *reqCtx) {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if !ctx.live || cr.inRead || cr.hasByte || cr.c.hijacked {
		return
	}
	cr.inRead = true
	go cr.watch(ctx)
}

func (cr *connReader) watch(ctx *reqCtx) {
	n, err := cr.c.read(cr.byteBuf[:])
	cr.mu.Lock()
	if n == 1 {
		cr.hasByte = true // the next request, pipelined: not a leave
	}
	if err != nil && !(cr.aborted && isTimeout(err)) {
		ctx.cancel()
	}
	cr.aborted = false
	cr.inRead = false
	cr.mu.Unlock()
	cr.cond.Broadcast()
}

// abortPendingRead ends a watch in progress and waits for it.
func (cr *connReader) abortPendingRead() {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	cr.abortLocked()
}

// hijack marks the connection taken over and ends a watch in progress,
// in one critical section: no watch starts after it.
func (cr *connReader) hijack() {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	cr.c.hijacked = true
	cr.abortLocked()
}

func (cr *connReader) abortLocked() {
	if !cr.inRead {
		return
	}
	cr.aborted = true
	cr.c.rwc.SetReadDeadline(aLongTimeAgo)
	for cr.inRead {
		cr.cond.Wait()
	}
	cr.c.rwc.SetReadDeadline(time.Time{})
}

var aLongTimeAgo = time.Unix(1, 0)

// read reads from the client: through rawio on a plain socket.
func (c *conn) read(p []byte) (int, error) {
	if c.rawio != nil {
		return c.rawio.Read(p)
	}
	return c.rwc.Read(p)
}

// writev writes p, then q if any, to the client: one writev where the
// connection has a socket.
func (c *conn) writev(p, q []byte) (int, error) {
	switch {
	case c.rawio != nil:
		return c.rawio.Writev(p, q)
	case q == nil:
		return c.rwc.Write(p)
	}
	bufs := net.Buffers{p, q}
	m, err := bufs.WriteTo(c.rwc) // writev on a TCP connection
	return int(m), err
}

// checkConnErrorWriter records the first write error of the connection
// and cancels the request in flight, as net/http's.
type checkConnErrorWriter struct{ c *conn }

func (w checkConnErrorWriter) Write(p []byte) (int, error) {
	var n int
	var err error
	if g := w.c.gather; g != nil {
		w.c.gather = nil
		var m int
		m, err = w.c.writev(p, g)
		n = min(m, len(p))
		w.c.gathered = m - n
	} else {
		n, err = w.c.writev(p, nil)
	}
	if err != nil && w.c.werr == nil {
		w.c.werr = err
		if w.c.res != nil {
			w.c.res.ctx.cancel()
		}
	}
	return n, err
}

var readers sync.Pool

func getReader(r io.Reader) *bufio.Reader {
	if br, ok := readers.Get().(*bufio.Reader); ok {
		br.Reset(r)
		return br
	}
	return bufio.NewReaderSize(r, bufSize)
}

func putReader(br *bufio.Reader) {
	br.Reset(nil)
	readers.Put(br)
}

// writerPool pools bufio.Writers of one size.
type writerPool struct {
	pool sync.Pool
	size int
}

var (
	connWriters  = &writerPool{size: bufSize}              // a connection's
	chunkBuffers = &writerPool{size: bufferBeforeChunking} // a response body's, before chunking
)

func (p *writerPool) get(w io.Writer) *bufio.Writer {
	if bw, ok := p.pool.Get().(*bufio.Writer); ok {
		bw.Reset(w)
		return bw
	}
	return bufio.NewWriterSize(w, p.size)
}

func (p *writerPool) put(bw *bufio.Writer) {
	bw.Reset(nil)
	p.pool.Put(bw)
}
