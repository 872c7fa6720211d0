// Package fpm is fe-php's fastcgi runner: PHP requests executed on
// PHP-FPM over a pool of kept-open connections, behind a circuit breaker.
//
// The request arrives prepared by the PHP pipeline (package phpreq):
// resolved, its body received in full, its environment built. The runner
// only sends it to FPM and hands FPM's response to the pipeline's
// Output, which buffers it, so that the FPM connection is back in the
// pool as soon as PHP has finished, whatever the client's pace.
//
// Status codes a user can act on: 502 when FPM cannot be reached (the log
// names the address and the OS error) or breaks the FastCGI stream, 504
// when FPM is slower than read_timeout_secs, 503 when every pooled
// connection stays busy for wait_timeout_secs or while the circuit
// breaker is open (with Retry-After, without touching FPM).
//
// A request is sent to FPM at most once, unless it provably never
// arrived: the first write on a kept-open connection failed (FPM had
// closed it), then it is sent once more on another connection. One more
// case is sent again, for safe methods only (GET, HEAD, OPTIONS): a kept
// connection that FPM closed, without a byte of answer, within
// quickClose of the request. That is a child at its pm.max_requests,
// which sends FCGI_END_REQUEST, finishes its request shutdown and only
// then closes the connection, reading and dropping a request that
// arrived meanwhile; a safe method may run twice by definition, while a
// POST is never sent twice (it gets a 502 in that rare race).
package fpm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net"
	"net/http"
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
	Logger  *slog.Logger
}

// Backend is the fastcgi runner (a phpreq.Runner).
type Backend struct {
	opts    Options
	pool    *fastcgi.Pool
	breaker *gobreaker.TwoStepCircuitBreaker[struct{}] // nil when disabled
	log     *slog.Logger
	retry   string // Retry-After value while the breaker is open
	where   string // "unix /run/php/fpm.sock", for logs

	// transitions counts the breaker's changes by the state entered
	// (indexed by gobreaker.State: closed, half-open, open).
	transitions [3]atomic.Uint64
}

// Breaker states, as BreakerState reports them (gobreaker's values).
const (
	BreakerClosed   = int(gobreaker.StateClosed)
	BreakerHalfOpen = int(gobreaker.StateHalfOpen)
	BreakerOpen     = int(gobreaker.StateOpen)
)

// BreakerState reports whether the circuit breaker is on, its state
// (BreakerClosed, BreakerHalfOpen or BreakerOpen) and how many times it
// entered each state: for metrics and readiness.
func (b *Backend) BreakerState() (enabled bool, state int, entered [3]uint64) {
	if b.breaker == nil {
		return false, BreakerClosed, entered
	}
	for i := range entered {
		entered[i] = b.transitions[i].Load()
	}
	return true, int(b.breaker.State()), entered
}

// Address is FPM's address, as configured.
func (b *Backend) Address() string { return b.opts.Pool.Address }

// New returns a Backend; it does not connect until the first request.
func New(opts Options) *Backend {
	b := &Backend{opts: opts, pool: fastcgi.NewPool(opts.Pool), log: opts.Logger,
		where: opts.Pool.Network + " " + opts.Pool.Address}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if cb := opts.Breaker; cb.Enable {
		b.retry = strconv.Itoa(cb.TimeoutSeconds)
		b.breaker = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
			Name:        "php-fpm " + opts.Pool.Address,
			MaxRequests: uint32(cb.SuccessThreshold),
			Timeout:     time.Duration(cb.TimeoutSeconds) * time.Second,
			ReadyToTrip: func(c gobreaker.Counts) bool {
				return c.ConsecutiveFailures >= uint32(cb.FailureThreshold)
			},
			OnStateChange: func(_ string, from, to gobreaker.State) {
				if int(to) >= 0 && int(to) < len(b.transitions) {
					b.transitions[to].Add(1)
				}
				b.log.Warn("fastcgi circuit breaker changed state",
					slog.String("fpm", b.where), slog.String("from", from.String()), slog.String("to", to.String()))
			},
		})
	}
	return b
}

// Close closes the pooled connections.
func (b *Backend) Close() error { return b.pool.Close() }

// Stats reports the connection pool's state (for metrics and tests).
func (b *Backend) Stats() fastcgi.PoolStats { return b.pool.Stats() }

// Run executes req on FPM. Only FPM's own failures (refused, reset, timed
// out, a broken FastCGI stream) count against the circuit breaker: never
// the client's (a header too large, a departure) nor the script's (an
// invalid header). The breaker is asked only now, with the body in hand,
// so that a slow upload is never a half-open trial.
func (b *Backend) Run(req *phpreq.Request, out *phpreq.Output) error {
	if b.breaker == nil {
		return b.run(req, out)
	}
	done, err := b.breaker.Allow()
	if err != nil {
		return &phpreq.Error{Status: http.StatusServiceUnavailable, Fault: phpreq.FaultCapacity, RetryAfter: b.retry,
			Quiet: true, Err: fmt.Errorf("PHP-FPM %s: circuit breaker open", b.where)}
	}
	var failure error
	defer func() { done(failure) }() // also on panic (then it counts as a success)
	err = b.run(req, out)
	var pe *phpreq.Error
	if errors.As(err, &pe) && pe.Fault == phpreq.FaultUpstream {
		failure = err
	}
	return err
}

// run sends req to FPM, retrying once on a new connection when the
// request provably never reached FPM.
func (b *Backend) run(req *phpreq.Request, out *phpreq.Output) error {
	for attempt := 0; ; attempt++ {
		err := b.attempt(req, out)
		if (errors.Is(err, fastcgi.ErrNotSent) || errors.Is(err, errClosedAtOnce)) && attempt == 0 && req.Context().Err() == nil {
			b.log.Debug("fastcgi: kept connection was closed by FPM; sending again on a new one",
				slog.String("request_id", req.ID), slog.String("fpm", b.where))
			continue
		}
		return err
	}
}

func (b *Backend) upstream(status int, err error) error {
	return &phpreq.Error{Status: status, Fault: phpreq.FaultUpstream, Err: fmt.Errorf("PHP-FPM %s: %w", b.where, err)}
}

// attempt sends req on one connection and passes the response to out.
func (b *Backend) attempt(req *phpreq.Request, out *phpreq.Output) error {
	ctx := req.Context()
	conn, err := b.pool.Get(ctx)
	switch {
	case errors.Is(err, fastcgi.ErrPoolExhausted):
		return &phpreq.Error{Status: http.StatusServiceUnavailable, Fault: phpreq.FaultCapacity, RetryAfter: "1",
			Err: fmt.Errorf("PHP-FPM %s: %w", b.where, err)}
	case err != nil && ctx.Err() != nil:
		return clientGone(ctx.Err())
	case err != nil:
		return b.upstream(http.StatusBadGateway, err)
	}
	// The client leaving aborts the FPM request, while waiting for its
	// head too; that connection is not reused.
	stop := context.AfterFunc(ctx, conn.Abort)
	ex := exchange{conn: conn, readTimeout: b.opts.ReadTimeout}
	if d := req.Settings.TerminateTimeout; d > 0 {
		ex.terminate = time.Now().Add(d)
	}
	ex.extend()
	err = b.exchange(&ex, req, out)
	aborted := !stop()
	if err == nil && !aborted {
		b.pool.Put(conn)
		return nil
	}
	conn.Abort()
	if aborted {
		return clientGone(ctx.Err())
	}
	if isTimeout(err) && ex.terminated() {
		// FPM's child goes on until the script ends or FPM's own
		// request_terminate_timeout: the connection is closed, never reused.
		if !ex.answered {
			// Nothing came back: the request may still be waiting for a
			// free child in FPM's queue (it would run later all the same).
			return &phpreq.Error{Status: http.StatusGatewayTimeout, Fault: phpreq.FaultUpstream,
				Err: fmt.Errorf("no answer from PHP-FPM within request_terminate_timeout (%s), FastCGI request aborted: a slow script, or every FPM child busy", req.Settings.TerminateTimeout)}
		}
		return &phpreq.Error{Status: http.StatusGatewayTimeout, Fault: phpreq.FaultPHP,
			Err: fmt.Errorf("PHP ran past request_terminate_timeout (%s): FastCGI request aborted", req.Settings.TerminateTimeout)}
	}
	return err
}

// exchange is one request's connection and its deadlines: each wait for
// FPM is bounded by read_timeout_secs, and the whole request by the
// route's request_terminate_timeout.
type exchange struct {
	conn        *fastcgi.Conn
	readTimeout time.Duration
	terminate   time.Time // zero: no wall-clock bound
	answered    bool      // FPM has sent the response's head
}

// extend sets the deadline of the next wait for FPM.
func (e *exchange) extend() {
	d := time.Now().Add(e.readTimeout)
	if !e.terminate.IsZero() && e.terminate.Before(d) {
		d = e.terminate
	}
	e.conn.SetDeadline(d)
}

// terminated reports whether the request has run past its wall-clock bound.
func (e *exchange) terminated() bool {
	return !e.terminate.IsZero() && !time.Now().Before(e.terminate)
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// maxHead bounds PHP's response head (nginx's fastcgi_buffer_size).
const maxHead = 32 << 10

// flushBelow: a piece of the response shorter than this, with nothing
// more ready, is taken for PHP's flush() and passed on at once.
const flushBelow = 4096

// exchange writes the request and copies the response to out.
func (b *Backend) exchange(ex *exchange, req *phpreq.Request, out *phpreq.Output) error {
	conn := ex.conn
	var body io.Reader
	if req.Body.Length > 0 {
		body = req.Body.Reader()
	}
	sent := time.Now()
	resp, err := conn.Do(&fastcgi.Request{Params: params(req), Body: body, Stderr: b.stderr(req)})
	if err != nil {
		return b.transportError(err)
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp

	// The head: up to the blank line.
	off, headEnd, bodyStart := 0, -1, 0
	for headEnd < 0 {
		if off == maxHead {
			return &phpreq.Error{Status: http.StatusBadGateway, Fault: phpreq.FaultPHP,
				Err: fmt.Errorf("PHP's response head is larger than %d bytes", maxHead)}
		}
		n, rerr := resp.Read(buf[off:maxHead])
		off += n
		if headEnd, bodyStart = findHeadEnd(buf[:off]); headEnd >= 0 {
			break
		}
		if rerr == io.EOF {
			headEnd, bodyStart = off, off // a head without the blank line, and no body
			break
		}
		if rerr != nil {
			if conn.Reused() && !resp.Received() && time.Since(sent) < quickClose && safeMethod(req.HTTP.Method) {
				return fmt.Errorf("%w: %w", errClosedAtOnce, rerr)
			}
			return b.transportError(rerr)
		}
	}
	ex.answered = true
	if err := out.Head(0, buf[:headEnd]); err != nil {
		return err
	}
	if bodyStart < off {
		if _, err := out.Write(buf[bodyStart:off]); err != nil {
			return clientGone(err)
		}
	}
	if off < flushBelow && resp.Buffered() == 0 && !resp.Ending() {
		if err := out.Flush(); err != nil { // PHP flushed its head (and some output)
			return clientGone(err)
		}
	}

	// The body, as FPM sends it.
	for {
		n, rerr := resp.Read(buf)
		if n > 0 {
			if _, err := out.Write(buf[:n]); err != nil {
				return clientGone(err)
			}
			if rerr == nil && n < flushBelow && resp.Buffered() == 0 && !resp.Ending() {
				if err := out.Flush(); err != nil {
					return clientGone(err)
				}
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return b.transportError(rerr)
		}
		ex.extend()
	}
}

// params is the request's FastCGI environment: the CGI variables, then
// the route's PHP settings as PHP_VALUE and PHP_ADMIN_VALUE.
func params(req *phpreq.Request) iter.Seq2[string, string] {
	env, st := req.Env.All(), req.Settings
	if st.INI == "" && st.AdminINI == "" {
		return env
	}
	return func(yield func(string, string) bool) {
		for k, v := range env {
			if !yield(k, v) {
				return
			}
		}
		if st.INI != "" && !yield("PHP_VALUE", st.INI) {
			return
		}
		if st.AdminINI != "" {
			yield("PHP_ADMIN_VALUE", st.AdminINI)
		}
	}
}

// findHeadEnd finds the blank line ending a CGI head ("\r\n\r\n" or
// "\n\n"): the head's length and where the body starts, or -1.
func findHeadEnd(p []byte) (headEnd, bodyStart int) {
	for i := bytes.IndexByte(p, '\n'); i >= 0; {
		j := i + 1
		if j < len(p) && p[j] == '\r' {
			j++
		}
		if j < len(p) && p[j] == '\n' {
			return i, j + 1
		}
		k := bytes.IndexByte(p[i+1:], '\n')
		if k < 0 {
			break
		}
		i += 1 + k
	}
	return -1, 0
}

// quickClose bounds how soon after the request a kept connection's close
// (with no answer) is taken for a child that was exiting: a child's
// request shutdown takes well under it, while a script that ran and
// crashed is counted out only for safe methods (see the package doc).
const quickClose = 20 * time.Millisecond

// errClosedAtOnce: see quickClose.
var errClosedAtOnce = errors.New("kept connection closed by PHP-FPM at once, without an answer")

// safeMethod reports whether a request may be sent twice (RFC 9110,
// section 9.2.1).
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// clientGone is the error of a request whose client left: nobody gets
// the status, and it never counts against the breaker.
func clientGone(err error) error {
	return &phpreq.Error{Status: http.StatusBadGateway, Fault: phpreq.FaultClient, Err: err}
}

// transportError classifies a failure of the FastCGI exchange.
func (b *Backend) transportError(err error) error {
	var tooLong *fastcgi.ParamTooLongError
	switch {
	case errors.As(err, &tooLong):
		return &phpreq.Error{Status: http.StatusRequestHeaderFieldsTooLarge, Fault: phpreq.FaultClient, Err: err}
	case errors.Is(err, fastcgi.ErrNotSent):
		return err // run sends it again
	case isTimeout(err):
		return b.upstream(http.StatusGatewayTimeout, fmt.Errorf("no response within %s: %w", b.opts.ReadTimeout, err))
	}
	return b.upstream(http.StatusBadGateway, err)
}

// stderr logs what FPM sends on FCGI_STDERR: PHP's error log lines, as
// "PHP message: ...", several joined with "; " in one record; one log
// line each, as the embedded backend logs them.
func (b *Backend) stderr(req *phpreq.Request) func([]byte) {
	return func(p []byte) {
		for msg := range strings.SplitSeq(strings.TrimSpace(string(p)), "; PHP message: ") {
			msg = strings.TrimPrefix(strings.TrimPrefix(msg, "; "), "PHP message: ")
			if msg != "" {
				b.log.Warn("php", slog.String("request_id", req.ID), slog.String("script", req.Target.ScriptFilename), slog.String("message", msg))
			}
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded)
}
