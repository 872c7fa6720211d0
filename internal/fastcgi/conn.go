package fastcgi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fe-php/fe-php/internal/rawio"
)

const (
	readBufSize = 32 << 10
	// coalesceMax: a first body record is copied behind the params (one write)
	// when both together stay this small.
	coalesceMax = 16 << 10
	// maxKeptReqBuf: a request buffer grown past this is not kept for reuse.
	maxKeptReqBuf = 256 << 10
	// bodyWaitOnPut bounds how long Put (and Do) wait for a body writer that
	// has not finished yet (normally its last write returned before FPM sent
	// FCGI_END_REQUEST, and only its goroutine has still to report).
	bodyWaitOnPut = 50 * time.Millisecond
)

var (
	// ErrConnClosed is returned by Do on a connection that was closed or aborted.
	ErrConnClosed = errors.New("fastcgi: connection closed")
	// ErrConnBroken is returned by Do on a connection whose previous request
	// failed mid-way: its stream is out of sync and it cannot be reused.
	ErrConnBroken = errors.New("fastcgi: connection broken by an earlier error")
	// ErrBusy is returned by Do while the previous response has not been read
	// to its end (or its body is still being sent).
	ErrBusy = errors.New("fastcgi: previous request on this connection not finished")

	// ErrNotSent is matched (errors.Is) by the error of a request that
	// provably never reached the FastCGI server, so that it is safe to send it
	// again on another connection, whatever its method. That is the case only
	// when the connection failed before any byte of the request was written:
	//
	//   - Do, for a request without Body: the request's first (and only)
	//     write failed having written nothing. Typically EPIPE or ECONNRESET
	//     on a connection the server closed while it was idle (FPM restarted,
	//     reloaded or killed): over a Unix socket such a write fails at once;
	//     over TCP only once a reset came back, so there the first request
	//     on such a connection usually fails with EOF or a reset after the
	//     write instead (not ErrNotSent), unless the pool's liveness check
	//     found the server's FIN first, which it almost always does.
	//   - Response.Read (and Response.BodyErr), for a request with a Body: the
	//     body writer's first write failed having written nothing, or reading
	//     the response failed (EOF, a reset, a deadline, Abort) before that
	//     first write began, which is then never made. The body writer reads
	//     up to 64 KiB of Request.Body before that write: resend only a body
	//     that can be read again.
	//
	// The error also wraps the underlying one (a *net.OpError, io.EOF
	// converted to io.ErrUnexpectedEOF, a timeout, ...): a caller that does
	// not retry timeouts checks for them as before.
	//
	// Every other failure may have run the script, once or partly, even when
	// nothing of the response arrived, and must not be retried: FPM's child
	// can die after it read the request (a segfault, the OOM killer,
	// request_terminate_timeout, posix_kill of itself), which looks like EOF
	// or a reset after a complete write; a partial write may have delivered
	// a request whose params and body PHP already accepted; and a FIN that
	// crosses the request (FPM closing a kept connection for pm.max_requests
	// just as it is reused) looks the same as the child dying. The pool's
	// liveness check on Get makes that last race rare. Neither
	// Conn.Reused nor Response.Received tells whether a script ran.
	//
	// Errors of Do that come before any write (ErrConnClosed,
	// ErrConnBroken, ErrBusy, *ParamTooLongError) do not match ErrNotSent:
	// retrying them on the same terms is pointless.
	ErrNotSent = errors.New("fastcgi: request not sent")
)

// notSentError marks err as a failure before any byte of the request was
// written (see ErrNotSent).
type notSentError struct{ err error }

func (e *notSentError) Error() string   { return e.err.Error() + " (request not sent)" }
func (e *notSentError) Unwrap() []error { return []error{ErrNotSent, e.err} }

// Request is one FastCGI responder request.
type Request struct {
	// Params is the CGI/1.1 environment, sent as FCGI_PARAMS. PHP-FPM parses
	// each PARAMS record on its own, so one name and value together must
	// encode to at most 65535 bytes (Do returns *ParamTooLongError otherwise).
	Params iter.Seq2[string, string]
	// Body is sent as FCGI_STDIN (nil: empty stdin). The caller sets
	// CONTENT_LENGTH to match.
	Body io.Reader
	// Stderr, if set, receives each FCGI_STDERR record's content (the
	// application's error output), from within Response.Read. p is only valid
	// during the call.
	Stderr func(p []byte)
}

// BodyError is the error of reading Request.Body (not of the connection). The
// request is abandoned: the connection is closed, and Response.Read returns
// this error.
type BodyError struct{ Err error }

func (e *BodyError) Error() string { return "fastcgi: reading request body: " + e.Err.Error() }
func (e *BodyError) Unwrap() error { return e.Err }

// Conn is one connection to a FastCGI server; one request at a time (FPM does
// not multiplex). A Conn is used by one goroutine at a time, except Abort and
// Close, which may be called from any goroutine.
type Conn struct {
	nc net.Conn
	// rawio reads and writes nc's socket without Go's system-call
	// bookkeeping (see package rawio); nil for a conn without a socket.
	rawio            *rawio.Conn
	br               *bufio.Reader // on rawio, or nc
	network, address string

	pool     *Pool
	inPool   bool // guarded by pool.mu
	created  time.Time
	lastUsed time.Time
	sentAt   time.Time     // when the current (or last) request was sent
	lastDur  time.Duration // how long FPM took for the last request (set by Put)

	nreq     int
	id       atomic.Uint32 // request id of the current (or last) request; Abort reads it
	reused   bool
	busy     bool // Do called, FCGI_END_REQUEST not read yet
	broken   bool // the stream is out of sync
	tainted  bool // a record of another request id arrived
	deadline bool // a deadline is set
	closed   atomic.Bool

	// awaiting: the connection is in its pool's list of new connections
	// whose first request awaits the first record of its response (see
	// Pool.track). pendingSince and inPending are guarded by pool.mu.
	awaiting     atomic.Bool
	inPending    bool
	pendingSince time.Time

	resp  Response
	enc   paramsEncoder
	yield func(name, value string) bool // c.enc.add
	ebuf  []byte
	hdr   [headerLen]byte

	wmu sync.Mutex // serializes writes to nc: request writer against Abort

	bmu         sync.Mutex
	bodyRunning bool
	bodyErr     error
	bodyDone    chan struct{} // buffered: the body writer finished
	headState   uint8         // the body writer's first write: headNone...
	noWrite     bool          // reading the response failed before that write: never make it

	// liveness check (conncheck_*.go)
	raw      syscall.RawConn
	checkFn  func(fd uintptr) bool
	checkRes probeResult
	peek     [1]byte
}

// probeResult is the outcome of the liveness check of an idle connection.
type probeResult uint8

const (
	probeOK   probeResult = iota // nothing to read, not closed
	probeData                    // unsolicited bytes arrived
	probeDead                    // closed by the server, or failed
)

// alive reports whether an idle connection still looks usable (see probe).
func (c *Conn) alive() bool { return c.probe() == probeOK }

// Dial connects to a FastCGI server. network is "tcp" or "unix". Errors name
// the address and the OS error, e.g.
// "fastcgi: dial tcp 127.0.0.1:9000: connect: connection refused".
func Dial(ctx context.Context, network, address string, timeout time.Duration) (*Conn, error) {
	d := net.Dialer{Timeout: timeout}
	nc, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, fmt.Errorf("fastcgi: %w", err)
	}
	return newConn(nc, network, address), nil
}

// NewConn wraps an established connection (for tests and custom dialers).
func NewConn(nc net.Conn) *Conn {
	a := nc.RemoteAddr()
	if a == nil {
		return newConn(nc, "", "")
	}
	return newConn(nc, a.Network(), a.String())
}

func newConn(nc net.Conn, network, address string) *Conn {
	c := &Conn{
		nc:       nc,
		rawio:    rawio.New(nc),
		network:  network,
		address:  address,
		created:  time.Now(),
		bodyDone: make(chan struct{}, 1),
	}
	var r io.Reader = nc
	if c.rawio != nil {
		r = c.rawio
	}
	c.br = bufio.NewReaderSize(r, readBufSize)
	c.enc.buf = make([]byte, 0, 2048)
	c.yield = c.enc.add
	c.initCheck()
	return c
}

// Do sends FCGI_BEGIN_REQUEST (role responder, FCGI_KEEP_CONN), the params and
// the body as FCGI_STDIN. With a nil Body the whole request goes out in one
// write. With a Body, a goroutine streams it in records of at most 65535 bytes
// (the first one coalesced with the params when small) while the caller reads
// the response, so a script that writes a lot before it reads its input cannot
// deadlock. Do returns once the request is written (or the body writer
// started); the response is read lazily.
//
// Each request on a connection gets a new request id (1, 2, ... 65535, then 1
// again), and the response reader discards records of any other id (see
// Tainted). A failure that proves the request was never sent matches
// ErrNotSent; Do on a connection that is closed, broken or tainted returns
// ErrConnClosed or ErrConnBroken, on one whose previous response is unfinished
// ErrBusy.
//
// The returned Response belongs to the Conn and is valid until the next Do.
func (c *Conn) Do(req *Request) (*Response, error) {
	if c.closed.Load() {
		return nil, ErrConnClosed
	}
	if c.broken || c.tainted {
		return nil, ErrConnBroken
	}
	// After FCGI_END_REQUEST the body writer is normally done or about to
	// be: give it a moment.
	if c.busy || !c.waitBody(bodyWaitOnPut) {
		return nil, ErrBusy
	}
	// A new id for every request: output that PHP-FPM sends for an earlier
	// request after its FCGI_END_REQUEST (a script that goes on writing
	// after fastcgi_finish_request(), php-src issue #18275) then cannot be
	// taken for this request's response.
	id := nextID(uint16(c.id.Load()))
	e := &c.enc
	if cap(e.buf) > maxKeptReqBuf {
		e.buf = make([]byte, 0, 2048)
	}
	e.buf = appendBeginRequest(e.buf[:0], id)
	e.id, e.start, e.err = id, -1, nil
	if req.Params != nil {
		// A yield function made once per Conn: a range loop here would
		// allocate its closure and state on every request.
		req.Params(c.yield)
		if e.err != nil {
			return nil, e.err // nothing was written: the Conn stays usable
		}
		e.finish()
	}
	e.buf = appendHeader(e.buf, typeParams, id, 0)

	fresh := c.nreq == 0
	c.id.Store(uint32(id))
	c.reused = !fresh
	c.nreq++
	c.sentAt = time.Now()
	c.busy = true
	r := &c.resp
	*r = Response{c: c, id: id, stderr: req.Stderr}

	if req.Body == nil {
		e.buf = appendHeader(e.buf, typeStdin, id, 0)
		if n, err := c.write(e.buf); err != nil {
			c.broken = true
			err = c.opError("write", err)
			if n == 0 {
				err = &notSentError{err}
			}
			return nil, err
		}
	} else {
		select { // a stale signal of an earlier body writer
		case <-c.bodyDone:
		default:
		}
		c.bmu.Lock()
		c.bodyRunning, c.bodyErr = true, nil
		c.headState, c.noWrite = headNone, false
		c.bmu.Unlock()
		r.bodyPending = true
		go c.writeBody(req.Body, e.buf, id)
	}
	if fresh && c.pool != nil {
		// Only a connection's first request can wait in FPM's accept
		// backlog: once a child answered, the connection stays with it.
		c.pool.track(c)
	}
	return r, nil
}

func (c *Conn) write(b []byte) (n int, err error) {
	c.wmu.Lock()
	if c.rawio != nil {
		n, err = c.rawio.Write(b)
	} else {
		n, err = c.nc.Write(b)
	}
	c.wmu.Unlock()
	return n, err
}

// States of the body writer's first write (Conn.headState), which carries
// the begin-request and params records: whether the request was sent at all.
const (
	headNone    = iota // not begun
	headWriting        // in progress
	headWritten        // wrote at least one byte
	headNotSent        // failed having written nothing
)

var bodyBufs = sync.Pool{New: func() any {
	b := make([]byte, headerLen+maxContent+headerLen)
	return &b
}}

// writeBody streams body as FCGI_STDIN records of request id after head (the
// begin-request and params records, not yet written), then the empty closing
// record.
func (c *Conn) writeBody(body io.Reader, head []byte, id uint16) {
	bp := bodyBufs.Get().(*[]byte)
	buf := *bp
	var err error
	for {
		n, rerr := readFull(body, buf[headerLen:headerLen+maxContent])
		if rerr != nil && rerr != io.EOF {
			err = &BodyError{Err: rerr}
			// The request cannot be completed: closing the connection ends
			// the caller's Read, which then reports this error.
			c.bmu.Lock()
			if c.bodyErr == nil {
				c.bodyErr = err
			}
			c.bmu.Unlock()
			c.nc.Close()
			break
		}
		rec := buf[:0]
		if n > 0 {
			putHeader(buf, typeStdin, id, n)
			rec = buf[:headerLen+n]
		}
		if rerr == io.EOF {
			rec = appendHeader(rec, typeStdin, id, 0) // buf has room for it
		}
		if head != nil {
			if len(head)+len(rec) <= coalesceMax {
				head = append(head, rec...)
				rec = nil
			}
			if !c.beginHead() {
				break // the reader gave up on the request: see Response.fail
			}
			var wn int
			wn, err = c.write(head)
			c.endHead(err != nil && wn == 0)
			head = nil
			if err != nil && wn == 0 {
				err = &notSentError{c.opError("write", err)}
				break
			}
		}
		if err == nil && len(rec) > 0 {
			_, err = c.write(rec)
		}
		if err != nil {
			err = c.opError("write", err)
			break
		}
		if rerr == io.EOF {
			break
		}
	}
	bodyBufs.Put(bp)
	c.bmu.Lock()
	c.bodyRunning = false
	if c.bodyErr == nil {
		c.bodyErr = err
	}
	c.bmu.Unlock()
	c.bodyDone <- struct{}{}
}

// beginHead marks the body writer's first write as begun, unless reading the
// response already failed (then the request must stay unsent).
func (c *Conn) beginHead() bool {
	c.bmu.Lock()
	defer c.bmu.Unlock()
	if c.noWrite {
		return false
	}
	c.headState = headWriting
	return true
}

func (c *Conn) endHead(notSent bool) {
	c.bmu.Lock()
	if notSent {
		c.headState = headNotSent
	} else {
		c.headState = headWritten
	}
	c.bmu.Unlock()
}

// readFull reads until b is full or r fails; a short read at the end of the
// body comes back together with io.EOF.
func readFull(r io.Reader, b []byte) (int, error) {
	n, zero := 0, 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
		if m == 0 {
			if zero++; zero > 100 {
				return n, io.ErrNoProgress
			}
		}
	}
	return n, nil
}

func (c *Conn) bodyBusy() bool {
	c.bmu.Lock()
	defer c.bmu.Unlock()
	return c.bodyRunning
}

// waitBody waits up to d for the body writer; it reports whether it finished.
func (c *Conn) waitBody(d time.Duration) bool {
	if !c.bodyBusy() {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.bodyDone:
		return true
	case <-t.C:
		return !c.bodyBusy()
	}
}

func (c *Conn) opError(op string, err error) error {
	var ne *net.OpError
	if errors.As(err, &ne) {
		return fmt.Errorf("fastcgi: %w", err) // net errors already name the address
	}
	return fmt.Errorf("fastcgi: %s %s %s: %w", op, c.network, c.address, err)
}

// SetDeadline sets the read and write deadline of the socket (zero: none).
// Pool.Put clears it.
func (c *Conn) SetDeadline(t time.Time) error {
	c.deadline = !t.IsZero()
	return c.nc.SetDeadline(t)
}

// Abort sends FCGI_ABORT_REQUEST best-effort (not if a write is in progress,
// and only for as long as 100ms) and closes the connection, which is never
// reused. A Read blocked in another goroutine returns an error. Abort may be
// called from any goroutine.
func (c *Conn) Abort() {
	if !c.closed.CompareAndSwap(false, true) {
		return
	}
	if c.wmu.TryLock() {
		c.nc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		var b [headerLen]byte
		putHeader(b[:], typeAbortRequest, uint16(c.id.Load()), 0)
		c.nc.Write(b[:])
		c.wmu.Unlock()
	}
	c.nc.Close()
	c.release()
}

// Reused reports whether the connection served a request before the current
// one. It does not tell whether a failed request may be retried: only an
// error matching ErrNotSent does.
func (c *Conn) Reused() bool { return c.reused }

// Tainted reports whether a record of a request id other than the current
// request's arrived on the connection: output that PHP-FPM sent for an
// earlier request after its FCGI_END_REQUEST (a script writing after
// fastcgi_finish_request(), php-src issue #18275), or a management record
// (FPM sends none unasked). The response reader discards such records, so the
// current response is intact, but what else the server may still send is
// unknown: a tainted connection is never reused (Pool.Put closes it, Do
// returns ErrConnBroken).
func (c *Conn) Tainted() bool { return c.tainted }

// Requests returns how many requests Do started on this connection.
func (c *Conn) Requests() int { return c.nreq }

// Close closes the connection and frees its pool slot. It may be called from
// any goroutine and more than once.
func (c *Conn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	err := c.nc.Close()
	c.release()
	return err
}

func (c *Conn) release() {
	if c.pool != nil {
		c.untrack()
		c.pool.release()
	}
}

// untrack ends the pool's wait for the first record of this connection's
// first response (see Pool.track).
func (c *Conn) untrack() {
	if c.awaiting.Swap(false) {
		c.pool.untrack(c)
	}
}

// reusable reports whether the connection can serve another request: the last
// response was read to FCGI_END_REQUEST, its body writer finished cleanly, and
// nothing of another request arrived.
func (c *Conn) reusable() bool {
	if c.closed.Load() || c.broken || c.tainted || c.busy {
		return false
	}
	if !c.waitBody(bodyWaitOnPut) {
		return false
	}
	c.bmu.Lock()
	defer c.bmu.Unlock()
	return c.bodyErr == nil
}
