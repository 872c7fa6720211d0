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
//
// A Backend may hold several upstreams (a farm, farm.go), each with its
// own pool and breaker; requests are balanced across those in rotation.
// A request whose upstream could not be reached at all (the connection
// failed, or its breaker refused it) goes to the next upstream: that is
// the only case a request changes upstream.
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
	// Pool configures each upstream's connection pool; its Network and
	// Address are the upstream's when Upstreams is empty.
	Pool fastcgi.PoolConfig
	// Upstreams are the addresses of a farm ("host:port" or a Unix
	// socket path), each with its own pool of Pool.MaxSize connections
	// and its own circuit breaker; empty: Pool's one address.
	Upstreams []string
	// Balance is how a request picks its upstream: config.BalanceLeastConn
	// (the default), BalanceRoundRobin or BalanceClientHash.
	Balance string
	// HealthCheckPath, when set, is requested on every upstream each
	// HealthCheckInterval (FPM's ping.path); an upstream failing it is out
	// of rotation until a check passes.
	HealthCheckPath     string
	HealthCheckInterval time.Duration
	// Name is the pool's name in logs ("" for the default pool).
	Name string
	// ReadTimeout bounds each wait for FPM's response.
	ReadTimeout time.Duration
	// Breaker is the circuit breaker's configuration (off if !Enable),
	// one breaker per upstream.
	Breaker config.CircuitBreaker
	Logger  *slog.Logger
}

// Backend is the fastcgi runner (a phpreq.Runner): one FPM, or a farm of
// them with requests balanced across (see farm.go).
type Backend struct {
	opts    Options
	ups     []*Upstream
	balance int           // balanceLeastConn, ...
	next    atomic.Uint64 // round robin, and least_conn's tie breaker
	log     *slog.Logger
	retry   string // Retry-After value while the breakers are open
	stop    chan struct{}
	checks  sync.WaitGroup
}

// Upstream is one FPM of a Backend: its pool, breaker and health.
type Upstream struct {
	pool     *fastcgi.Pool
	breaker  *gobreaker.TwoStepCircuitBreaker[struct{}] // nil when disabled
	network  string
	addr     string
	where    string       // "unix /run/php/fpm.sock", for logs
	inflight atomic.Int64 // requests running through fe-php (least_conn)
	down     atomic.Bool  // failed its last active health check

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

// BreakerState reports whether the upstream's circuit breaker is on, its
// state (BreakerClosed, BreakerHalfOpen or BreakerOpen) and how many
// times it entered each state: for metrics and readiness.
func (u *Upstream) BreakerState() (enabled bool, state int, entered [3]uint64) {
	if u.breaker == nil {
		return false, BreakerClosed, entered
	}
	for i := range entered {
		entered[i] = u.transitions[i].Load()
	}
	return true, int(u.breaker.State()), entered
}

// Address is the upstream's address, as configured.
func (u *Upstream) Address() string { return u.addr }

// Stats reports the upstream's connection pool state.
func (u *Upstream) Stats() fastcgi.PoolStats { return u.pool.Stats() }

// Upstreams are the backend's FPMs, in configuration order.
func (b *Backend) Upstreams() []*Upstream { return b.ups }

// BreakerState reports the breakers of every upstream as one: on if they
// are, the state of the healthiest (closed if one is closed, open only if
// all are open) and the transitions summed. With one upstream, its own.
func (b *Backend) BreakerState() (enabled bool, state int, entered [3]uint64) {
	state = BreakerOpen
	for _, u := range b.ups {
		on, st, e := u.BreakerState()
		if !on {
			return false, BreakerClosed, [3]uint64{}
		}
		enabled = true
		if st == BreakerClosed || st == BreakerHalfOpen && state == BreakerOpen {
			state = st
		}
		for i := range e {
			entered[i] += e[i]
		}
	}
	return enabled, state, entered
}

// Address is FPM's address, as configured (several joined with ", ").
func (b *Backend) Address() string {
	if len(b.ups) == 1 {
		return b.ups[0].addr
	}
	addrs := make([]string, len(b.ups))
	for i, u := range b.ups {
		addrs[i] = u.addr
	}
	return strings.Join(addrs, ", ")
}

// New returns a Backend; it does not connect until the first request (or
// the first active health check).
func New(opts Options) *Backend {
	b := &Backend{opts: opts, log: opts.Logger, stop: make(chan struct{})}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	b.balance = balanceOf(opts.Balance)
	if opts.Breaker.Enable {
		b.retry = strconv.Itoa(opts.Breaker.TimeoutSeconds)
	}
	addrs := opts.Upstreams
	if len(addrs) == 0 {
		addrs = []string{opts.Pool.Address}
	}
	for _, addr := range addrs {
		pc := opts.Pool
		if len(opts.Upstreams) > 0 {
			pc.Network, pc.Address = "tcp", addr
			if strings.HasPrefix(addr, "/") {
				pc.Network = "unix"
			}
		}
		b.ups = append(b.ups, b.newUpstream(pc))
	}
	if opts.HealthCheckPath != "" && opts.HealthCheckInterval > 0 {
		b.startHealthChecks()
	}
	return b
}

func (b *Backend) newUpstream(pc fastcgi.PoolConfig) *Upstream {
	u := &Upstream{pool: fastcgi.NewPool(pc), network: pc.Network, addr: pc.Address, where: pc.Network + " " + pc.Address}
	if cb := b.opts.Breaker; cb.Enable {
		u.breaker = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
			Name:        "php-fpm " + pc.Address,
			MaxRequests: uint32(cb.SuccessThreshold),
			Timeout:     time.Duration(cb.TimeoutSeconds) * time.Second,
			ReadyToTrip: func(c gobreaker.Counts) bool {
				return c.ConsecutiveFailures >= uint32(cb.FailureThreshold)
			},
			OnStateChange: func(_ string, from, to gobreaker.State) {
				if int(to) >= 0 && int(to) < len(u.transitions) {
					u.transitions[to].Add(1)
				}
				b.log.Warn("fastcgi circuit breaker changed state", b.poolAttr(),
					slog.String("fpm", u.where), slog.String("from", from.String()), slog.String("to", to.String()))
			},
		})
	}
	return u
}

// poolAttr names the pool in log lines.
func (b *Backend) poolAttr() slog.Attr {
	if b.opts.Name == "" {
		return slog.String("fpm_pool", "default")
	}
	return slog.String("fpm_pool", b.opts.Name)
}

// Close stops the health checks and closes the pooled connections.
func (b *Backend) Close() error {
	select {
	case <-b.stop:
	default:
		close(b.stop)
	}
	b.checks.Wait()
	var errs []error
	for _, u := range b.ups {
		errs = append(errs, u.pool.Close())
	}
	return errors.Join(errs...)
}

// Stats reports the connection pools' state, summed over the upstreams
// (for metrics and tests).
func (b *Backend) Stats() fastcgi.PoolStats {
	if len(b.ups) == 1 {
		return b.ups[0].pool.Stats()
	}
	var t fastcgi.PoolStats
	for _, u := range b.ups {
		s := u.pool.Stats()
		t.InUse += s.InUse
		t.Idle += s.Idle
		t.Waiting += s.Waiting
		t.Dials += s.Dials
		t.DialFails += s.DialFails
		t.Timeouts += s.Timeouts
	}
	return t
}

// Run executes req on one upstream, picked by the balancing policy among
// those in rotation. A request whose upstream could not be reached
// (connection refused or failed, breaker open) never reached PHP: it goes
// to the next upstream in rotation, each tried at most once. Any other
// failure is the answer: a request that may have reached PHP is never
// sent to another upstream.
func (b *Backend) Run(req *phpreq.Request, out *phpreq.Output) error {
	n := len(b.ups)
	if n == 1 {
		err, _ := b.ups[0].run(b, req, out)
		return err
	}
	first := b.pick(req)
	var err error
	for i := range n {
		u := b.ups[(first+i)%n]
		if i > 0 && !u.inRotation() {
			continue
		}
		var unreached bool
		u.inflight.Add(1)
		err, unreached = u.run(b, req, out)
		u.inflight.Add(-1)
		if !unreached || req.Context().Err() != nil {
			return err
		}
		b.log.Debug("fastcgi: upstream unreachable; trying the next one", b.poolAttr(),
			slog.String("request_id", req.ID), slog.String("fpm", u.where), slog.Any("error", err))
	}
	return err
}

// run executes req on the upstream, behind its breaker. Only FPM's own
// failures (refused, reset, timed out, a broken FastCGI stream) count
// against the circuit breaker: never the client's (a header too large, a
// departure) nor the script's (an invalid header). The breaker is asked
// only now, with the body in hand, so that a slow upload is never a
// half-open trial. unreached reports that the request provably never
// reached this upstream's PHP (its breaker refused it or the connection
// could not be made).
func (u *Upstream) run(b *Backend, req *phpreq.Request, out *phpreq.Output) (err error, unreached bool) {
	if u.breaker == nil {
		return u.send(b, req, out)
	}
	done, berr := u.breaker.Allow()
	if berr != nil {
		return &phpreq.Error{Status: http.StatusServiceUnavailable, Fault: phpreq.FaultCapacity, RetryAfter: b.retry,
			Quiet: true, Err: fmt.Errorf("PHP-FPM %s: circuit breaker open", u.where)}, true
	}
	var failure error
	defer func() { done(failure) }() // also on panic (then it counts as a success)
	err, unreached = u.send(b, req, out)
	var pe *phpreq.Error
	if errors.As(err, &pe) && pe.Fault == phpreq.FaultUpstream {
		failure = err
	}
	return err, unreached
}

// send sends req to the upstream, retrying once on a new connection when
// the request provably never reached FPM.
func (u *Upstream) send(b *Backend, req *phpreq.Request, out *phpreq.Output) (error, bool) {
	for attempt := 0; ; attempt++ {
		err, unreached := u.attempt(b, req, out)
		if (errors.Is(err, fastcgi.ErrNotSent) || errors.Is(err, errClosedAtOnce)) && attempt == 0 && req.Context().Err() == nil {
			b.log.Debug("fastcgi: kept connection was closed by FPM; sending again on a new one",
				slog.String("request_id", req.ID), slog.String("fpm", u.where))
			continue
		}
		return err, unreached
	}
}

func (u *Upstream) upstreamError(status int, err error) error {
	return &phpreq.Error{Status: status, Fault: phpreq.FaultUpstream, Err: fmt.Errorf("PHP-FPM %s: %w", u.where, err)}
}

// attempt sends req on one connection and passes the response to out;
// unreached: no connection could be made.
func (u *Upstream) attempt(b *Backend, req *phpreq.Request, out *phpreq.Output) (error, bool) {
	ctx := req.Context()
	conn, err := u.pool.Get(ctx)
	switch {
	case errors.Is(err, fastcgi.ErrPoolExhausted):
		return &phpreq.Error{Status: http.StatusServiceUnavailable, Fault: phpreq.FaultCapacity, RetryAfter: "1",
			Err: fmt.Errorf("PHP-FPM %s: %w", u.where, err)}, false
	case err != nil && ctx.Err() != nil:
		return clientGone(ctx.Err()), false
	case errors.Is(err, fastcgi.ErrPoolClosed):
		return u.upstreamError(http.StatusBadGateway, err), false
	case err != nil:
		return u.upstreamError(http.StatusBadGateway, err), true
	}
	// The client leaving aborts the FPM request, while waiting for its
	// head too; that connection is not reused.
	stop := context.AfterFunc(ctx, conn.Abort)
	ex := exchange{conn: conn, readTimeout: b.opts.ReadTimeout}
	if d := req.Settings.TerminateTimeout; d > 0 {
		ex.terminate = time.Now().Add(d)
	}
	ex.extend()
	err = u.exchange(b, &ex, req, out)
	aborted := !stop()
	if err == nil && !aborted {
		u.pool.Put(conn)
		return nil, false
	}
	conn.Abort()
	if aborted {
		return clientGone(ctx.Err()), false
	}
	if isTimeout(err) && ex.terminated() {
		// FPM's child goes on until the script ends or FPM's own
		// request_terminate_timeout: the connection is closed, never reused.
		if !ex.answered {
			// Nothing came back: the request may still be waiting for a
			// free child in FPM's queue (it would run later all the same).
			return &phpreq.Error{Status: http.StatusGatewayTimeout, Fault: phpreq.FaultUpstream,
				Err: fmt.Errorf("no answer from PHP-FPM within request_terminate_timeout (%s), FastCGI request aborted: a slow script, or every FPM child busy", req.Settings.TerminateTimeout)}, false
		}
		return &phpreq.Error{Status: http.StatusGatewayTimeout, Fault: phpreq.FaultPHP,
			Err: fmt.Errorf("PHP ran past request_terminate_timeout (%s): FastCGI request aborted", req.Settings.TerminateTimeout)}, false
	}
	return err, false
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
func (u *Upstream) exchange(b *Backend, ex *exchange, req *phpreq.Request, out *phpreq.Output) error {
	conn := ex.conn
	var body io.Reader
	if req.Body.Length > 0 {
		body = req.Body.Reader()
	}
	sent := time.Now()
	resp, err := conn.Do(&fastcgi.Request{Params: params(req), Body: body, Stderr: b.stderr(req)})
	if err != nil {
		return u.transportError(b, err)
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
			return u.transportError(b, rerr)
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
			return u.transportError(b, rerr)
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
func (u *Upstream) transportError(b *Backend, err error) error {
	var tooLong *fastcgi.ParamTooLongError
	switch {
	case errors.As(err, &tooLong):
		return &phpreq.Error{Status: http.StatusRequestHeaderFieldsTooLarge, Fault: phpreq.FaultClient, Err: err}
	case errors.Is(err, fastcgi.ErrNotSent):
		return err // run sends it again
	case isTimeout(err):
		return u.upstreamError(http.StatusGatewayTimeout, fmt.Errorf("no response within %s: %w", b.opts.ReadTimeout, err))
	}
	return u.upstreamError(http.StatusBadGateway, err)
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
