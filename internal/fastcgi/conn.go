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
)

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
	nc               net.Conn
	br               *bufio.Reader
	network, address string

	pool     *Pool
	inPool   bool // guarded by pool.mu
	created  time.Time
	lastUsed time.Time

	nreq     int
	reused   bool
	busy     bool // Do called, FCGI_END_REQUEST not read yet
	broken   bool // the stream is out of sync
	deadline bool // a deadline is set
	closed   atomic.Bool

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

	// liveness check (conncheck_*.go)
	raw     syscall.RawConn
	checkFn func(fd uintptr) bool
	checkOK bool
	peek    [1]byte
}

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
		br:       bufio.NewReaderSize(nc, readBufSize),
		network:  network,
		address:  address,
		created:  time.Now(),
		bodyDone: make(chan struct{}, 1),
	}
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
// The returned Response belongs to the Conn and is valid until the next Do.
func (c *Conn) Do(req *Request) (*Response, error) {
	if c.closed.Load() {
		return nil, ErrConnClosed
	}
	if c.broken {
		return nil, ErrConnBroken
	}
	// After FCGI_END_REQUEST the body writer is normally done or about to
	// be: give it a moment.
	if c.busy || !c.waitBody(bodyWaitOnPut) {
		return nil, ErrBusy
	}
	e := &c.enc
	if cap(e.buf) > maxKeptReqBuf {
		e.buf = make([]byte, 0, 2048)
	}
	e.buf = appendBeginRequest(e.buf[:0])
	e.start, e.err = -1, nil
	if req.Params != nil {
		// A yield function made once per Conn: a range loop here would
		// allocate its closure and state on every request.
		req.Params(c.yield)
		if e.err != nil {
			return nil, e.err // nothing was written: the Conn stays usable
		}
		e.finish()
	}
	e.buf = appendHeader(e.buf, typeParams, 0)

	c.reused = c.nreq > 0
	c.nreq++
	c.busy = true
	r := &c.resp
	*r = Response{c: c, stderr: req.Stderr}

	if req.Body == nil {
		e.buf = appendHeader(e.buf, typeStdin, 0)
		if err := c.write(e.buf); err != nil {
			c.broken = true
			return nil, c.opError("write", err)
		}
		return r, nil
	}
	select { // a stale signal of an earlier body writer
	case <-c.bodyDone:
	default:
	}
	c.bmu.Lock()
	c.bodyRunning, c.bodyErr = true, nil
	c.bmu.Unlock()
	r.bodyPending = true
	go c.writeBody(req.Body, e.buf)
	return r, nil
}

func (c *Conn) write(b []byte) error {
	c.wmu.Lock()
	_, err := c.nc.Write(b)
	c.wmu.Unlock()
	return err
}

var emptyStdin = [headerLen]byte{version1, typeStdin, 0, requestID, 0, 0, 0, 0}

var bodyBufs = sync.Pool{New: func() any {
	b := make([]byte, headerLen+maxContent+headerLen)
	return &b
}}

// writeBody streams body as FCGI_STDIN records after head (the begin-request
// and params records, not yet written), then the empty closing record.
func (c *Conn) writeBody(body io.Reader, head []byte) {
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
			c.bodyErr = err
			c.bmu.Unlock()
			c.nc.Close()
			break
		}
		rec := buf[:0]
		if n > 0 {
			putHeader(buf, typeStdin, n)
			rec = buf[:headerLen+n]
		}
		if rerr == io.EOF {
			rec = append(rec, emptyStdin[:]...) // buf has room for it
		}
		if head != nil {
			if len(head)+len(rec) <= coalesceMax {
				head = append(head, rec...)
				rec = nil
			}
			err = c.write(head)
			head = nil
		}
		if err == nil && len(rec) > 0 {
			err = c.write(rec)
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
		putHeader(b[:], typeAbortRequest, 0)
		c.nc.Write(b[:])
		c.wmu.Unlock()
	}
	c.nc.Close()
	c.release()
}

// Reused reports whether the connection served a request before the current
// one: a pooled connection that FPM may have closed since (pm.max_requests).
// A failure on such a connection is worth one retry on a new connection when
// nothing of the response was received (Response.Received) and the request had
// no body.
func (c *Conn) Reused() bool { return c.reused }

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
		c.pool.release()
	}
}

// reusable reports whether the connection can serve another request: the last
// response was read to FCGI_END_REQUEST and its body writer finished cleanly.
func (c *Conn) reusable() bool {
	if c.closed.Load() || c.broken || c.busy {
		return false
	}
	if !c.waitBody(bodyWaitOnPut) {
		return false
	}
	c.bmu.Lock()
	defer c.bmu.Unlock()
	return c.bodyErr == nil
}
