package fastcgi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Response streams the FCGI_STDOUT content of one request (the CGI response:
// headers, a blank line, the body). Read returns io.EOF after
// FCGI_END_REQUEST; a connection that ends before it gives an error wrapping
// io.ErrUnexpectedEOF (or the network error). FCGI_STDERR records are handed
// to Request.Stderr as they arrive, from within Read.
type Response struct {
	c           *Conn
	id          uint16 // the request's id: records of other ids are not ours
	stderr      func([]byte)
	remaining   int // stdout content left in the current record
	padding     int // padding after the current record's content
	received    bool
	done        bool
	bodyPending bool
	err         error
	appStatus   uint32
	protoStatus uint8
}

// Read reads FCGI_STDOUT content.
func (r *Response) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	for r.remaining == 0 {
		if err := r.next(); err != nil {
			r.err = err
			return 0, err
		}
	}
	if len(p) > r.remaining {
		p = p[:r.remaining]
	}
	n, err := r.c.br.Read(p)
	r.remaining -= n
	if err != nil {
		r.err = r.fail(err)
		return n, r.err
	}
	return n, nil
}

// next reads records up to the next stdout content or the end of the request.
func (r *Response) next() error {
	c := r.c
	if r.padding > 0 {
		if _, err := c.br.Discard(r.padding); err != nil {
			return r.fail(err)
		}
		r.padding = 0
	}
	if _, err := io.ReadFull(c.br, c.hdr[:]); err != nil {
		return r.fail(err)
	}
	if c.awaiting.Load() {
		c.untrack() // a child accepted the connection: it is not in FPM's backlog
	}
	h := &c.hdr
	if h[0] != version1 {
		c.broken = true
		return fmt.Errorf("fastcgi: %s %s: bad record version %d", c.network, c.address, h[0])
	}
	typ := h[1]
	id := binary.BigEndian.Uint16(h[2:4])
	clen := int(binary.BigEndian.Uint16(h[4:6]))
	pad := int(h[6])
	if id != r.id {
		// Not ours: output of an earlier request that PHP-FPM sends after
		// that request's FCGI_END_REQUEST when its script writes after
		// fastcgi_finish_request() (php-src issue #18275), or a management
		// record (id 0). Discard it; the connection is never reused.
		c.tainted = true
		return r.skip(clen + pad)
	}
	r.received = true
	switch typ {
	case typeStdout:
		r.remaining, r.padding = clen, pad
		return nil
	case typeStderr:
		if r.stderr == nil || clen == 0 {
			return r.skip(clen + pad)
		}
		if cap(c.ebuf) < clen {
			c.ebuf = make([]byte, clen)
		}
		b := c.ebuf[:clen]
		if _, err := io.ReadFull(c.br, b); err != nil {
			return r.fail(err)
		}
		r.stderr(b)
		return r.skip(pad)
	case typeEndRequest:
		if clen < 8 {
			c.broken = true
			return fmt.Errorf("fastcgi: %s %s: short FCGI_END_REQUEST (%d bytes)", c.network, c.address, clen)
		}
		if _, err := io.ReadFull(c.br, h[:]); err != nil {
			return r.fail(err)
		}
		r.appStatus = binary.BigEndian.Uint32(h[0:4])
		r.protoStatus = h[4]
		if err := r.skip(clen - 8 + pad); err != nil {
			return err
		}
		r.done = true
		c.busy = false
		if r.bodyPending {
			// Let the body writer report, so that BodyErr is final after
			// io.EOF (unless the writer is stuck on Request.Body).
			c.waitBody(bodyWaitOnPut)
		}
		return io.EOF
	default: // FCGI_UNKNOWN_TYPE, FCGI_GET_VALUES_RESULT, ...
		return r.skip(clen + pad)
	}
}

func (r *Response) skip(n int) error {
	if n == 0 {
		return nil
	}
	if _, err := r.c.br.Discard(n); err != nil {
		return r.fail(err)
	}
	return nil
}

// fail marks the connection broken and turns err into the error Read returns:
// the body writer's error if reading the body failed (it closed the
// connection), io.ErrUnexpectedEOF for a connection closed early.
//
// With a Body, whether the request was sent at all depends on the body
// writer's first write: if it has not begun, it never will, and the error
// matches ErrNotSent; if it is under way, fail waits for it (briefly: a write
// to a dead connection fails at once) and reports the writer's ErrNotSent
// when it wrote nothing.
func (r *Response) fail(err error) error {
	c := r.c
	c.broken = true
	c.untrack()
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = fmt.Errorf("fastcgi: %s %s: connection closed before the end of the response: %w", c.network, c.address, err)
	} else {
		err = c.opError("read", err)
	}
	if !r.bodyPending {
		return err
	}
	var be *BodyError
	c.bmu.Lock()
	berr, head := c.bodyErr, c.headState
	if berr == nil && head == headNone {
		c.noWrite = true
		berr = &notSentError{err}
		c.bodyErr = berr
	}
	c.bmu.Unlock()
	if head == headWriting {
		c.waitBody(bodyWaitOnPut)
		c.bmu.Lock()
		berr = c.bodyErr
		c.bmu.Unlock()
	}
	if errors.As(berr, &be) || errors.Is(berr, ErrNotSent) {
		return berr
	}
	return err
}

// Buffered reports how many stdout bytes Read can return without waiting for
// the network. A caller that streams the response flushes its client when it
// is 0, so that PHP's flush() reaches the browser.
func (r *Response) Buffered() int {
	if r.err != nil || r.done {
		return 0
	}
	br := r.c.br
	b := br.Buffered()
	if r.remaining > 0 {
		return min(b, r.remaining)
	}
	// Look at the next record header if it is in the buffer.
	off := r.padding
	if b < off+headerLen {
		return 0
	}
	h, err := br.Peek(off + headerLen)
	if err != nil {
		return 0
	}
	h = h[off:]
	if h[0] != version1 || h[1] != typeStdout || binary.BigEndian.Uint16(h[2:4]) != r.id {
		return 0
	}
	return min(int(binary.BigEndian.Uint16(h[4:6])), b-off-headerLen)
}

// Ending reports whether the response's end is already in the buffer: the
// next record is the empty stdout record that closes the stream, or
// FCGI_END_REQUEST. A caller that flushes when Buffered is 0 need not flush
// then: the response is complete, and one write can carry all of it.
func (r *Response) Ending() bool {
	if r.done {
		return true
	}
	if r.err != nil || r.remaining > 0 {
		return false
	}
	br := r.c.br
	off := r.padding
	if br.Buffered() < off+headerLen {
		return false
	}
	h, err := br.Peek(off + headerLen)
	if err != nil {
		return false
	}
	h = h[off:]
	if h[0] != version1 || binary.BigEndian.Uint16(h[2:4]) != r.id {
		return false
	}
	switch h[1] {
	case typeEndRequest:
		return true
	case typeStdout:
		return binary.BigEndian.Uint16(h[4:6]) == 0
	}
	return false
}

// AppStatus is the application's exit status from FCGI_END_REQUEST (valid
// after Read returned io.EOF).
func (r *Response) AppStatus() uint32 { return r.appStatus }

// ProtocolStatus is the protocol status from FCGI_END_REQUEST (valid after
// Read returned io.EOF): StatusRequestComplete, or StatusCantMpxConn,
// StatusOverloaded, StatusUnknownRole when the server rejected the request.
func (r *Response) ProtocolStatus() uint8 { return r.protoStatus }

// Received reports whether any record of this request's response (stdout,
// stderr or end) has been read. It does not tell whether the script ran: FPM's
// child may die after it read the request and before any output. Only an
// error matching ErrNotSent proves that the request never reached PHP.
func (r *Response) Received() bool { return r.received }

// Done reports whether FCGI_END_REQUEST has been read.
func (r *Response) Done() bool { return r.done }

// BodyErr returns the error of the background stdin writer (reading
// Request.Body or writing to the connection; it matches ErrNotSent when the
// request was never sent), nil while it runs or if it succeeded. Check it
// after io.EOF or an error from Read. (Read waits up to 50ms at the end of
// the response for the writer to finish; one still blocked in
// Request.Body.Read then, e.g. behind fastcgi_finish_request(), makes Put
// close the connection.)
func (r *Response) BodyErr() error {
	if !r.bodyPending {
		return nil
	}
	c := r.c
	c.bmu.Lock()
	defer c.bmu.Unlock()
	return c.bodyErr
}
