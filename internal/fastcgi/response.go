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
	r.received = true
	h := &c.hdr
	if h[0] != version1 {
		c.broken = true
		return fmt.Errorf("fastcgi: %s %s: bad record version %d", c.network, c.address, h[0])
	}
	typ := h[1]
	id := binary.BigEndian.Uint16(h[2:4])
	clen := int(binary.BigEndian.Uint16(h[4:6]))
	pad := int(h[6])
	if id != requestID { // management records (id 0): not ours
		return r.skip(clen + pad)
	}
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
func (r *Response) fail(err error) error {
	c := r.c
	c.broken = true
	if r.bodyPending {
		c.bmu.Lock()
		berr := c.bodyErr
		c.bmu.Unlock()
		var be *BodyError
		if errors.As(berr, &be) {
			return berr
		}
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("fastcgi: %s %s: connection closed before the end of the response: %w", c.network, c.address, err)
	}
	return c.opError("read", err)
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
	if h[0] != version1 || h[1] != typeStdout || binary.BigEndian.Uint16(h[2:4]) != requestID {
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
	if h[0] != version1 || binary.BigEndian.Uint16(h[2:4]) != requestID {
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

// Received reports whether any record of the response (stdout, stderr or end)
// has been read. A failed request on a reused connection with nothing received
// never reached the application.
func (r *Response) Received() bool { return r.received }

// Done reports whether FCGI_END_REQUEST has been read.
func (r *Response) Done() bool { return r.done }

// BodyErr returns the error of the background stdin writer (reading
// Request.Body or writing to the connection), nil while it runs or if it
// succeeded. Check it after io.EOF or an error from Read. (Read waits up to
// 50ms at the end of the response for the writer to finish; one still
// blocked in Request.Body.Read then, e.g. behind fastcgi_finish_request(),
// makes Put close the connection.)
func (r *Response) BodyErr() error {
	if !r.bodyPending {
		return nil
	}
	c := r.c
	c.bmu.Lock()
	defer c.bmu.Unlock()
	return c.bodyErr
}
