// Package fpm is fe-php's fastcgi backend: PHP requests proxied to
// PHP-FPM over a pool of kept-open connections, behind a circuit breaker.
//
// A request path is resolved the way both PHP backends resolve it
// (package phpreq): a script runs on FPM, a non-PHP file under the
// document root is sent by the static backend, a directory gets its
// trailing slash, anything else goes to the front controller. FPM's
// response is streamed to the client as FPM writes it, so PHP's flush()
// reaches the browser and memory stays bounded for any response size.
//
// Status codes a user can act on: 502 when FPM cannot be reached (the log
// names the address and the OS error), 504 when FPM is slower than
// read_timeout_secs, 503 when every pooled connection stays busy for
// wait_timeout_secs or while the circuit breaker is open (with
// Retry-After, without touching FPM).
package fpm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/fe-php/fe-php/internal/config"
	"github.com/fe-php/fe-php/internal/fastcgi"
	"github.com/fe-php/fe-php/internal/phpreq"
)

// Options configures a Backend.
type Options struct {
	Pool fastcgi.PoolConfig
	// ReadTimeout bounds each wait for FPM's response.
	ReadTimeout time.Duration
	// Breaker is the circuit breaker's configuration (off if !Enable).
	Breaker config.CircuitBreaker
	// Resolver maps request paths to scripts, files and redirects.
	Resolver *phpreq.Resolver
	// Static sends the non-PHP files that live under the document root.
	Static http.Handler
	Logger *slog.Logger
}

// Backend is the fastcgi backend, an http.Handler.
type Backend struct {
	opts    Options
	pool    *fastcgi.Pool
	breaker *gobreaker.TwoStepCircuitBreaker[struct{}] // nil when disabled
	log     *slog.Logger
	retry   string // Retry-After value while the breaker is open
}

// New returns a Backend; it does not connect until the first request.
func New(opts Options) *Backend {
	b := &Backend{opts: opts, pool: fastcgi.NewPool(opts.Pool), log: opts.Logger}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if cb := opts.Breaker; cb.Enable {
		addr := opts.Pool.Address
		b.retry = strconv.Itoa(cb.TimeoutSeconds)
		b.breaker = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
			Name:        "php-fpm " + addr,
			MaxRequests: uint32(cb.SuccessThreshold),
			Timeout:     time.Duration(cb.TimeoutSeconds) * time.Second,
			ReadyToTrip: func(c gobreaker.Counts) bool {
				return c.ConsecutiveFailures >= uint32(cb.FailureThreshold)
			},
			IsExcluded: func(err error) bool { return errors.Is(err, fastcgi.ErrPoolExhausted) },
			OnStateChange: func(_ string, from, to gobreaker.State) {
				b.log.Warn("fastcgi circuit breaker changed state",
					slog.String("fpm", addr), slog.String("from", from.String()), slog.String("to", to.String()))
			},
		})
	}
	return b
}

// Close closes the pooled connections.
func (b *Backend) Close() error { return b.pool.Close() }

// Stats reports the connection pool's state (for metrics and tests).
func (b *Backend) Stats() fastcgi.PoolStats { return b.pool.Stats() }

// ServeHTTP serves a request whose path the server has already cleaned.
func (b *Backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := b.opts.Resolver.Resolve(r)
	if t.Kind != phpreq.Script {
		phpreq.ServeNonScript(w, r, &t, b.opts.Static)
		return
	}
	b.serveScript(w, r, &t)
}

// upstreamError is a failure to get a response from FPM, with the status
// the client gets for it.
type upstreamError struct {
	status int
	err    error
}

func (e *upstreamError) Error() string { return e.err.Error() }
func (e *upstreamError) Unwrap() error { return e.err }

// clientBodyError is a failure to read the request body from the client
// (it went away, was too slow, or sent less than its Content-Length): not
// FPM's fault, so it neither counts against the circuit breaker nor gets a
// 502. started: the response had already begun.
type clientBodyError struct {
	err     error
	started bool
}

func (e *clientBodyError) Error() string { return e.err.Error() }
func (e *clientBodyError) Unwrap() error { return e.err }

// maxReplayBody bounds the request bodies read into memory before the
// first attempt, so that the request can be sent again on another
// connection when a kept-open one turns out closed by FPM (a child
// recycled by pm.max_requests closes its connection right after its last
// response, and a request taken from the pool in between reaches no PHP).
// A larger body is streamed, and such a request is not retried.
const maxReplayBody = 64 << 10

func (b *Backend) serveScript(w http.ResponseWriter, r *http.Request, t *phpreq.Target) {
	done := func(error) {}
	if b.breaker != nil {
		var err error
		if done, err = b.breaker.Allow(); err != nil {
			w.Header().Set("Retry-After", b.retry)
			http.Error(w, "503 service unavailable (PHP-FPM circuit open)", http.StatusServiceUnavailable)
			return
		}
	}
	body, ok := phpreq.ReadBody(w, r)
	if !ok {
		done(nil) // the client's fault, not FPM's
		return
	}
	defer body.Close()
	env := b.opts.Resolver.Env(r, t, body.Length)
	defer env.Release()

	err := b.proxy(w, r, t, env, body)
	var ue *upstreamError
	var ce *clientBodyError
	if errors.As(err, &ce) {
		done(nil) // the client's fault, not FPM's
		b.log.Debug("fastcgi request body not received",
			slog.String("request_id", r.Header.Get("X-Request-Id")), slog.Any("error", ce.err))
		if !ce.started {
			var mbe *http.MaxBytesError
			if errors.As(ce.err, &mbe) {
				http.Error(w, "413 request entity too large", http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "400 bad request: cannot read the request body", http.StatusBadRequest)
		}
		return
	}
	if errors.As(err, &ue) {
		done(ue.err)
		b.log.Error("fastcgi request failed",
			slog.String("request_id", r.Header.Get("X-Request-Id")),
			slog.String("fpm", b.opts.Pool.Network+" "+b.opts.Pool.Address),
			slog.String("script", t.ScriptFilename),
			slog.Any("error", ue.err))
		if ue.status != 0 {
			http.Error(w, strconv.Itoa(ue.status)+" "+strings.ToLower(http.StatusText(ue.status)), ue.status)
		}
		return
	}
	done(nil)
	if err != nil {
		// The client went away or stopped reading: nothing to tell it.
		b.log.Debug("fastcgi response not delivered",
			slog.String("request_id", r.Header.Get("X-Request-Id")), slog.Any("error", err))
	}
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}

// proxy runs the request on FPM and streams the response. It returns an
// *upstreamError for FPM's failures (status 0 when the response had
// already started) and a plain error when the client failed.
func (b *Backend) proxy(w http.ResponseWriter, r *http.Request, t *phpreq.Target, env *phpreq.Env, body *phpreq.Body) error {
	ctx := r.Context()
	reqID := r.Header.Get("X-Request-Id")
	// FPM sends PHP's error log lines on stderr as "PHP message: ...",
	// several joined with "; " in one record: one log line each, as the
	// embedded backend logs them.
	stderr := func(p []byte) {
		for msg := range strings.SplitSeq(strings.TrimSpace(string(p)), "; PHP message: ") {
			msg = strings.TrimPrefix(strings.TrimPrefix(msg, "; "), "PHP message: ")
			if msg != "" {
				b.log.Warn("php", slog.String("request_id", reqID), slog.String("script", t.ScriptFilename), slog.String("message", msg))
			}
		}
	}
	var replay []byte // the whole body, when small enough to send twice
	if body.Length > 0 && body.Length <= maxReplayBody {
		replay = make([]byte, body.Length)
		if _, err := io.ReadFull(body, replay); err != nil {
			return &clientBodyError{err: err}
		}
	}

	var conn *fastcgi.Conn
	var resp *fastcgi.Response
	var br *bufio.Reader
	var hdr textproto.MIMEHeader
	for attempt := 0; ; attempt++ {
		var bodyReader io.Reader
		var watch *uploadWatch
		switch {
		case replay != nil:
			bodyReader = bytes.NewReader(replay)
		case body.Length > 0 && b.opts.ReadTimeout > 0:
			watch = &uploadWatch{r: body}
			bodyReader = watch
		case body.Length > 0:
			bodyReader = body
		}
		var err error
		resp = nil
		conn, err = b.pool.Get(ctx)
		if err != nil {
			if errors.Is(err, fastcgi.ErrPoolExhausted) {
				return &upstreamError{http.StatusServiceUnavailable, err}
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return &upstreamError{http.StatusBadGateway, err}
		}
		if watch != nil {
			watch.start(conn, b.opts.ReadTimeout)
		} else {
			conn.SetDeadline(time.Now().Add(b.opts.ReadTimeout))
		}
		resp, err = conn.Do(&fastcgi.Request{Params: env.All(), Body: bodyReader, Stderr: stderr})
		if err == nil {
			br = readerPool.Get().(*bufio.Reader)
			br.Reset(resp)
			hdr, err = textproto.NewReader(br).ReadMIMEHeader()
			if errors.Is(err, io.EOF) && br.Buffered() == 0 && len(hdr) > 0 {
				err = nil
			}
			if err != nil {
				readerPool.Put(br)
			}
		}
		timedOut := watch.stop()
		if err == nil {
			if watch != nil {
				// The body's end may still be on its way; from now on the
				// socket deadline bounds each wait, as copyBody extends it.
				conn.SetDeadline(time.Now().Add(b.opts.ReadTimeout))
			}
			break
		}
		conn.Close()
		var be *fastcgi.BodyError
		if errors.As(err, &be) {
			return &clientBodyError{err: be.Err}
		}
		var tooLong *fastcgi.ParamTooLongError
		if errors.As(err, &tooLong) {
			return &upstreamError{http.StatusRequestHeaderFieldsTooLarge, err}
		}
		// A kept-open connection FPM closed since (pm.max_requests) fails
		// before any record of the response: the request reached no PHP.
		// Retry on another connection if the body can be sent again;
		// several children may have recycled at once.
		if conn.Reused() && (resp == nil || !resp.Received()) && (bodyReader == nil || replay != nil) &&
			attempt <= b.opts.Pool.MaxSize && !isTimeout(err) {
			continue
		}
		if isTimeout(err) || timedOut {
			return &upstreamError{http.StatusGatewayTimeout, fmt.Errorf("no response within %s: %w", b.opts.ReadTimeout, err)}
		}
		return &upstreamError{http.StatusBadGateway, fmt.Errorf("reading the response headers: %w", err)}
	}
	defer readerPool.Put(br)

	// The client leaving aborts the FPM request; that connection is not reused.
	stop := context.AfterFunc(ctx, conn.Abort)

	status := cgiStatus(hdr)
	h := w.Header()
	for k, vs := range hdr {
		switch k {
		case "Status", "Connection", "Keep-Alive", "Transfer-Encoding", "Trailer", "Upgrade":
			continue
		}
		h[k] = vs
	}
	err := b.copyBody(w, r, status, br, resp, conn)
	aborted := !stop()
	if err == nil && !aborted {
		b.pool.Put(conn)
		return nil
	}
	conn.Abort()
	if aborted {
		return ctx.Err()
	}
	return err
}

// uploadWatch bounds the waits for FPM while a streamed request body is
// sent to it. The socket deadline cannot do it then: it would also bound
// the time the client takes to upload (a large upload over a slow link
// would get a 504 after read_timeout_secs although FPM kept up). A timer
// aborts the connection once FPM has for the read timeout neither taken
// more of the body nor answered; time spent waiting for the client does
// not count (the server's read_timeout bounds that).
type uploadWatch struct {
	r        io.Reader
	inClient atomic.Bool  // a Read from the client is in progress
	last     atomic.Int64 // when the last Read from the client ended (UnixNano)

	mu      sync.Mutex
	timer   *time.Timer
	stopped bool
	fired   bool
}

// Read reads the body from the client (called by the body writer).
func (u *uploadWatch) Read(p []byte) (int, error) {
	u.inClient.Store(true)
	n, err := u.r.Read(p)
	u.last.Store(time.Now().UnixNano())
	u.inClient.Store(false)
	return n, err
}

// start arms the watch on conn.
func (u *uploadWatch) start(conn *fastcgi.Conn, timeout time.Duration) {
	u.last.Store(time.Now().UnixNano())
	u.mu.Lock()
	defer u.mu.Unlock()
	u.timer = time.AfterFunc(timeout, func() { u.check(conn, timeout) })
}

func (u *uploadWatch) check(conn *fastcgi.Conn, timeout time.Duration) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.stopped {
		return
	}
	wait := timeout
	if !u.inClient.Load() {
		idle := time.Since(time.Unix(0, u.last.Load()))
		if idle >= timeout {
			u.fired = true
			conn.Abort()
			return
		}
		wait = timeout - idle
	}
	u.timer.Reset(wait)
}

// stop disarms the watch and reports whether it aborted the connection. A
// nil *uploadWatch is a watch that never fires.
func (u *uploadWatch) stop() bool {
	if u == nil {
		return false
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.stopped = true
	if u.timer != nil {
		u.timer.Stop()
	}
	return u.fired
}

// copyBody streams the response body. It gathers what FPM sends into one
// buffer and writes it to the client when the buffer is full, when the
// response ends (then net/http sends it all, with a Content-Length if it
// fits, in one write), or when a short piece arrives with nothing more
// ready: that is PHP's flush(), and it is passed on with a flush. FPM
// sends bulk output in full 8 KiB records; writing each as it came cost a
// client write per record. The read deadline is extended as data arrives.
func (b *Backend) copyBody(w http.ResponseWriter, r *http.Request, status int, br *bufio.Reader, resp *fastcgi.Response, conn *fastcgi.Conn) error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	flusher, _ := w.(http.Flusher)
	discard := false
	wroteHeader := false
	// writeHeader sends the status; when the whole body is in hand by
	// then, with its length, so that net/http need not chunk it.
	writeHeader := func(complete bool, n int) {
		wroteHeader = true
		h := w.Header()
		if complete && len(h["Content-Length"]) == 0 && len(h["Transfer-Encoding"]) == 0 &&
			status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified && r.Method != http.MethodHead {
			h["Content-Length"] = []string{strconv.Itoa(n)}
		}
		w.WriteHeader(status)
	}
	off := 0
	for {
		n, err := br.Read(buf[off:])
		off += n
		ending := err == io.EOF || resp.Ending()
		flushed := n > 0 && n < flushBelow && err == nil &&
			br.Buffered() == 0 && resp.Buffered() == 0 && !ending
		if !wroteHeader && (ending || err != nil || off == len(buf) || flushed) {
			writeHeader(ending, off)
		}
		if off > 0 && (off == len(buf) || err != nil || flushed || ending) {
			if !discard {
				if _, werr := w.Write(buf[:off]); werr == http.ErrBodyNotAllowed {
					// A 204 or 304 from PHP with a body: drop the body, but
					// read it to the end so the connection stays usable.
					discard = true
				} else if werr != nil {
					return werr
				}
				if flushed && flusher != nil {
					flusher.Flush()
				}
			}
			off = 0
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			var be *fastcgi.BodyError
			if errors.As(err, &be) {
				return &clientBodyError{err: be.Err, started: true}
			}
			return &upstreamError{0, fmt.Errorf("reading the response body: %w", err)}
		}
		conn.SetDeadline(time.Now().Add(b.opts.ReadTimeout))
	}
}

// flushBelow: a piece of the response shorter than this, with nothing
// more ready, is taken for PHP's flush() (see copyBody).
const flushBelow = 4096

// cgiStatus is the response status from CGI headers: "Status: 404 Not
// Found", else 302 when a Location is set, else 200.
func cgiStatus(h textproto.MIMEHeader) int {
	if s := h.Get("Status"); len(s) >= 3 {
		if code, err := strconv.Atoi(s[:3]); err == nil && code >= 100 && code <= 999 {
			return code
		}
	}
	if h.Get("Location") != "" {
		return http.StatusFound
	}
	return http.StatusOK
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded)
}
