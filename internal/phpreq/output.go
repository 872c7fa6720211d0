package phpreq

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
)

// OutputLimits bounds how much of a response waits for a slow client
// (nginx's fastcgi_buffers and fastcgi_max_temp_file_size).
type OutputLimits struct {
	// MemLimit is how much of one response waits in memory.
	MemLimit int64
	// FileLimit is how much more waits in a temporary file (0: none).
	// Past both, PHP waits for the client.
	FileLimit int64
	// TempDir holds the temporary files ("": os.TempDir()); they are
	// unlinked as soon as they are created.
	TempDir string

	spooled atomic.Int64 // bytes written to temporary files, ever
}

// errClientGone is what Output's writes return once the client has gone
// or a write to it failed: PHP stops (connection_aborted()), FPM's
// request is aborted.
var errClientGone = errors.New("phpreq: the client has gone")

// Output is where a Runner puts the response PHP produces. PHP never
// waits for the client while the response fits the buffers: the runner
// returns (its PHP thread or FPM connection freed) as soon as the script
// ends, and the response goes out at the client's pace afterwards. A
// script that streams (flush(), or X-Accel-Buffering: no) has its output
// passed on at once by a delivery goroutine, which then owns the
// ResponseWriter until the response ends.
//
// A Runner calls Head once, then Write, Flush and Finish, one call at a
// time (the embedded backend from a PHP thread's callbacks, then from
// Run's goroutine once the script has ended). Their errors mean "stop producing": the client has gone, or
// the head was invalid.
type Output struct {
	w    http.ResponseWriter
	r    *http.Request
	lim  *OutputLimits
	bad  func(o *Output, line string) // logs a header line PHP sent that was dropped
	head *head                        // &h once Head succeeded
	h    head
	req  Request // the pipeline's request, kept here to save an allocation

	mu        sync.Mutex
	cond      sync.Cond
	mem       []byte // the first part of what waits
	spare     []byte // a second buffer the delivery goroutine swaps in
	file      *os.File
	fileW     int64 // what waits in the file: [fileR, fileW)
	fileR     int64
	total     int64 // bytes PHP produced (kept, not those dropped after Finish)
	err       error // set: producing is over (client gone, invalid head)
	closed    bool  // the response is complete: script ended or Finish
	finished  bool  // Finish was called: later output is dropped
	flush     bool  // deliver what there is now
	streaming bool  // the delivery goroutine runs (it owns w)
	chunked   bool  // the delivery goroutine sent the head without a length
	done      chan struct{}
}

var outputs = sync.Pool{New: func() any { return new(Output) }}

// newOutput returns an Output from the pool; give it back with
// putOutput once end has returned.
func newOutput(w http.ResponseWriter, r *http.Request, lim *OutputLimits, bad func(*Output, string)) *Output {
	o := outputs.Get().(*Output)
	hdr := o.h.header // the map is reused
	*o = Output{w: w, r: r, lim: lim, bad: bad}
	o.h.header = hdr
	o.cond.L = &o.mu
	return o
}

func putOutput(o *Output) {
	o.w, o.r, o.req = nil, nil, Request{}
	outputs.Put(o)
}

// dropped reports a header line PHP sent that was dropped.
func (o *Output) dropped(line string) { o.bad(o, line) }

// Head sets the response's status and headers from what PHP produced
// (see parseHead: status 0 takes it from a "Status:" line). A second
// call is ignored. An invalid head is an *Error: the client then gets
// that status instead of PHP's response.
func (o *Output) Head(status int, lines []byte) error {
	if o.head != nil {
		return nil
	}
	err := parseHead(&o.h, status, lines, o.dropped)
	o.mu.Lock()
	defer o.mu.Unlock()
	if err != nil {
		o.err = err
		return err
	}
	h := &o.h
	o.head = h
	if h.stream {
		o.startDelivery()
	}
	return nil
}

// HasHead reports whether Head succeeded.
func (o *Output) HasHead() bool { return o.head != nil }

// Write adds p to the response. It blocks only when the buffers are
// full, until the client has taken enough.
func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return 0, o.err
	}
	if o.finished {
		return len(p), nil // after fastcgi_finish_request(): dropped, as under FPM
	}
	if o.head == nil {
		return 0, errors.New("phpreq: output before the head")
	}
	if err := o.r.Context().Err(); err != nil {
		o.err = errClientGone
		return 0, o.err
	}
	n := len(p)
	for len(p) > 0 {
		switch {
		case o.fileR == o.fileW && int64(len(o.mem)) < o.lim.MemLimit:
			// Memory first, while nothing waits in the file (order).
			if o.mem == nil {
				o.mem = getMem(0)
			}
			m := min(int64(len(p)), o.lim.MemLimit-int64(len(o.mem)))
			o.mem = append(o.mem, p[:m]...)
			p = p[m:]
		case o.fileW-o.fileR < o.lim.FileLimit:
			m := min(int64(len(p)), o.lim.FileLimit-(o.fileW-o.fileR))
			if err := o.spool(p[:m]); err != nil {
				o.err = err
				return 0, err
			}
			p = p[m:]
		default:
			// Both buffers full: the client must take some first. A
			// delivery goroutine already running may be asleep, waiting
			// for data this very write just buffered: wake it.
			o.startDelivery()
			o.cond.Broadcast()
			o.cond.Wait()
			if o.err != nil {
				return 0, o.err
			}
		}
	}
	o.total += int64(n)
	if o.head.stream {
		o.flush = true
	}
	if o.streaming {
		o.cond.Broadcast()
	}
	return n, nil
}

// spool appends p to the temporary file (o.mu held).
func (o *Output) spool(p []byte) error {
	if o.file == nil {
		f, err := os.CreateTemp(o.lim.TempDir, "fe-php-response-*")
		if err != nil {
			return fmt.Errorf("phpreq: buffering the response: %w", err)
		}
		os.Remove(f.Name())
		o.file = f
	}
	if _, err := o.file.WriteAt(p, o.fileW); err != nil {
		return fmt.Errorf("phpreq: buffering the response: %w", err)
	}
	o.fileW += int64(len(p))
	o.lim.spooled.Add(int64(len(p)))
	return nil
}

// Spooled reports the response bytes written to temporary files so far
// (a counter, for metrics).
func (l *OutputLimits) Spooled() int64 { return l.spooled.Load() }

// Flush passes on what PHP produced so far without waiting for more
// (PHP's flush()); the response then streams.
func (o *Output) Flush() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return o.err
	}
	if o.finished || o.head == nil {
		return nil
	}
	o.flush = true
	o.startDelivery()
	o.cond.Broadcast()
	return nil
}

// Finish completes the response now (fastcgi_finish_request()): the
// client gets it whole while the script goes on; later output is
// dropped.
func (o *Output) Finish() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return o.err
	}
	if o.head == nil {
		return errors.New("phpreq: finish before the head")
	}
	o.closed, o.finished = true, true
	o.startDelivery()
	o.cond.Broadcast()
	return nil
}

// startDelivery starts the delivery goroutine once (o.mu held).
func (o *Output) startDelivery() {
	if o.streaming {
		return
	}
	o.streaming = true
	o.done = make(chan struct{})
	complete := o.closed
	go o.deliver(complete)
}

// deliver sends the head and then what PHP produces as it comes,
// flushing whenever it has sent all there is.
func (o *Output) deliver(complete bool) {
	defer close(o.done)
	o.mu.Lock()
	total := o.total
	o.mu.Unlock()
	o.chunked = !o.writeHead(complete, total)
	var rc *http.ResponseController
	for {
		o.mu.Lock()
		for len(o.mem) == 0 && o.fileR == o.fileW && !o.closed && !o.flush && o.err == nil {
			o.cond.Wait()
		}
		if o.err != nil {
			o.mu.Unlock()
			return
		}
		chunk, fileOff, fileN := o.take()
		o.flush = false
		end := o.closed && len(o.mem) == 0 && o.fileR == o.fileW
		finished := o.finished
		o.mu.Unlock()

		err := o.send(chunk, fileOff, fileN)
		o.mu.Lock()
		if chunk != nil {
			o.spare = chunk[:0]
		}
		if err != nil {
			o.failLocked()
			o.mu.Unlock()
			return
		}
		if o.fileR == o.fileW {
			o.fileR, o.fileW = 0, 0 // drained, nothing being read: reuse the file from its start
		}
		more := len(o.mem) > 0 || o.fileR != o.fileW
		o.cond.Broadcast() // room for a producer waiting on full buffers
		o.mu.Unlock()
		if more && !end {
			continue
		}
		if rc == nil {
			rc = http.NewResponseController(o.w)
		}
		if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
			o.fail()
			return
		}
		if end {
			if finished {
				o.endFinished(rc)
			}
			return
		}
	}
}

// take removes the next piece to send (o.mu held): the memory buffer
// whole (swapped for the spare), else a span of the file.
func (o *Output) take() (chunk []byte, fileOff, fileN int64) {
	if len(o.mem) > 0 {
		chunk, o.mem = o.mem, o.spare
		o.spare = nil
		return chunk, 0, 0
	}
	if o.fileR < o.fileW {
		fileOff, fileN = o.fileR, o.fileW-o.fileR
		o.fileR = o.fileW // new output goes after the span being sent
		return nil, fileOff, fileN
	}
	return nil, 0, 0
}

// fail ends delivery: the client has gone; a producer waiting on full
// buffers wakes up to that.
func (o *Output) fail() {
	o.mu.Lock()
	o.failLocked()
	o.mu.Unlock()
}

func (o *Output) failLocked() {
	o.err = errClientGone
	o.cond.Broadcast()
}

// send writes a memory chunk or a span of the file to the client.
func (o *Output) send(chunk []byte, fileOff, fileN int64) error {
	if len(chunk) > 0 {
		_, err := o.w.Write(chunk)
		return ignoreNoBody(err)
	}
	if fileN > 0 {
		_, err := io.Copy(o.w, io.NewSectionReader(o.file, fileOff, fileN))
		return ignoreNoBody(err)
	}
	return nil
}

// ignoreNoBody: a body for a HEAD, 204 or 304 response is dropped, not
// an error.
func ignoreNoBody(err error) error {
	if err == http.ErrBodyNotAllowed {
		return nil
	}
	return err
}

// writeHead sends the status and headers; with complete, the whole body
// is in hand and its length is sent. It reports whether the response has
// a known length.
func (o *Output) writeHead(complete bool, total int64) bool {
	h, hdr := o.head, o.w.Header()
	// PHP's headers replace any fe-php set before (Server, say); among
	// PHP's own, a name given twice keeps both (Set-Cookie).
	for k, v := range h.header {
		hdr[k] = v
	}
	sized := h.contentLength >= 0
	switch {
	case !bodyAllowed(h.status):
		delete(hdr, "Content-Length")
		sized = true
	case complete && o.r.Method != http.MethodHead:
		if h.contentLength >= 0 && h.contentLength != total {
			o.dropped(fmt.Sprintf("Content-Length: %d (the output is %d bytes; sending that)", h.contentLength, total))
		}
		hdr["Content-Length"] = []string{strconv.FormatInt(total, 10)}
		sized = true
	}
	o.w.WriteHeader(h.status)
	return sized
}

// end finishes the response after the runner returned with runErr.
// sent reports whether a response (or its start) went to the client;
// err is runErr, or an *Error for an invalid head, or the client's
// departure. abort: the response had started streaming and cannot be
// completed; the caller must break it (http.ErrAbortHandler), so that
// the client never takes a truncated response for a whole one.
func (o *Output) end(runErr error) (sent bool, err error, abort bool) {
	o.mu.Lock()
	if o.err == nil {
		if runErr == nil || o.finished {
			o.closed = true
		} else {
			o.err = runErr
		}
	}
	err = runErr
	if err == nil {
		err = o.err
	}
	streaming, finished := o.streaming, o.finished
	o.cond.Broadcast()
	o.mu.Unlock()
	defer o.release()
	if streaming {
		<-o.done
		return true, err, !finished && err != nil
	}
	if err != nil {
		return false, err, false
	}
	if o.head == nil {
		return false, &Error{Status: http.StatusBadGateway, Fault: FaultPHP, Err: errors.New("PHP sent no response head")}, false
	}
	o.writeHead(true, o.total)
	if err := o.send(o.mem, 0, 0); err != nil {
		return true, nil, false // the client has gone: nothing to tell it
	}
	o.send(nil, o.fileR, o.fileW-o.fileR)
	return true, nil, false
}

// release frees the buffers.
func (o *Output) release() {
	if o.mem != nil {
		putMem(o.mem)
		o.mem = nil
	}
	if o.spare != nil {
		putMem(o.spare)
		o.spare = nil
	}
	if o.file != nil {
		o.file.Close()
		o.file = nil
	}
}

// endFinished hands the client a response that fastcgi_finish_request()
// completed: net/http would end it (the last chunk of a streamed one)
// and let the connection carry the next request only when the handler
// returns, that is when the script ends. It takes the connection over,
// ends a chunked body and closes the connection, so that the client
// has the whole response now, as under FPM, and its next request goes
// on a new connection. (Where it cannot, e.g. HTTP/2, the response ends
// with the script.)
func (o *Output) endFinished(rc *http.ResponseController) {
	conn, brw, err := rc.Hijack()
	if err != nil {
		return
	}
	if o.chunked && o.r.ProtoAtLeast(1, 1) && o.r.Method != http.MethodHead && bodyAllowed(o.head.status) {
		brw.WriteString("0\r\n\r\n")
		brw.Flush()
	}
	conn.Close()
}
