package server

import (
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/fe-php/fe-php/internal/headerops"
)

// responseWriter records the status and byte count for the access log,
// and extends the connection's write deadline as the response progresses,
// so that server.write_timeout bounds each stall, not the whole response.
// It keeps the fast paths of the writer it wraps: io.ReaderFrom (sendfile)
// and http.Flusher, and unwraps for http.ResponseController.
type responseWriter struct {
	http.ResponseWriter
	srv         *Server
	code        int
	wroteHeader bool
	bytes       int64
	extendedAt  time.Time      // when the write deadline was last set
	headers     *headerops.Ops // the route's configured headers, applied with the head
}

var responseWriters = sync.Pool{New: func() any { return new(responseWriter) }}

func newResponseWriter(w http.ResponseWriter, s *Server, start time.Time) *responseWriter {
	rw := responseWriters.Get().(*responseWriter)
	*rw = responseWriter{ResponseWriter: w, srv: s, extendedAt: start}
	return rw
}

func putResponseWriter(rw *responseWriter) {
	*rw = responseWriter{}
	responseWriters.Put(rw)
}

// status is the response's status code (200 if the backend wrote nothing).
func (rw *responseWriter) status() int {
	if rw.code == 0 {
		return http.StatusOK
	}
	return rw.code
}

func (rw *responseWriter) WriteHeader(code int) {
	if !rw.wroteHeader && (code >= 200 || code == http.StatusSwitchingProtocols) {
		rw.code = code
		rw.head()
	}
	rw.ResponseWriter.WriteHeader(code)
}

// head marks the head written, applying the configured headers first
// (again, if compression applied them before deciding: it is idempotent).
func (rw *responseWriter) head() {
	if !rw.wroteHeader {
		rw.wroteHeader = true
		rw.headers.Apply(rw.ResponseWriter.Header(), rw.status())
	}
}

func (rw *responseWriter) Write(p []byte) (int, error) {
	rw.head()
	rw.extendWriteDeadline()
	n, err := rw.ResponseWriter.Write(p)
	rw.bytes += int64(n)
	return n, err
}

// ReadFrom keeps sendfile(2) for files: net/http's writer uses it when
// the source is an *os.File, bare or in an *io.LimitedReader. With a write
// timeout the copy goes in chunks, extending the deadline between them, so
// that the timeout bounds a stall and not the whole download.
func (rw *responseWriter) ReadFrom(src io.Reader) (int64, error) {
	rw.head()
	rf, ok := rw.ResponseWriter.(io.ReaderFrom)
	if !ok {
		rw.extendWriteDeadline()
		n, err := io.Copy(writerOnly{rw.ResponseWriter}, src)
		rw.bytes += n
		return n, err
	}
	if rw.srv.writeTimeout <= 0 {
		n, err := rf.ReadFrom(src)
		rw.bytes += n
		return n, err
	}
	// One level of LimitedReader around the file, as sendfile needs.
	inner, remain := src, int64(-1)
	if lr, ok := src.(*io.LimitedReader); ok {
		inner, remain = lr.R, lr.N
	}
	var total int64
	for remain != 0 {
		rw.extendWriteDeadline()
		chunk := &io.LimitedReader{R: inner, N: sendChunk}
		if remain > 0 && remain < sendChunk {
			chunk.N = remain
		}
		want := chunk.N
		n, err := rf.ReadFrom(chunk)
		total += n
		rw.bytes += n
		if remain > 0 {
			remain -= n
		}
		if err != nil || n < want {
			if lr, ok := src.(*io.LimitedReader); ok {
				lr.N = remain
			}
			return total, err
		}
	}
	if lr, ok := src.(*io.LimitedReader); ok {
		lr.N = 0
	}
	return total, nil
}

// sendChunk is how much one sendfile call may send before the write
// deadline is extended again.
const sendChunk = 1 << 20

type writerOnly struct{ io.Writer }

func (rw *responseWriter) Flush() {
	rw.head()
	rw.extendWriteDeadline()
	if f, ok := rw.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (rw *responseWriter) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

type writeDeadliner interface{ SetWriteDeadline(time.Time) error }

// extendWriteDeadline pushes the write deadline write_timeout ahead, at
// most once per half timeout (time.Now is cheap; a deadline change less so).
func (rw *responseWriter) extendWriteDeadline() {
	d := rw.srv.writeTimeout
	if d <= 0 {
		return
	}
	now := time.Now()
	if now.Sub(rw.extendedAt) < d/2 {
		return
	}
	if wd, ok := rw.ResponseWriter.(writeDeadliner); ok {
		wd.SetWriteDeadline(now.Add(d))
		rw.extendedAt = now
	}
}

type readDeadliner interface{ SetReadDeadline(time.Time) error }

// deadlineBody gives each read of a request body server.read_timeout to
// make progress, checks that the body keeps an average of at least
// client_body_min_rate once the grace period has passed, and clears the
// deadline at the end of the body: a read deadline left set would cancel
// a long-running request's context once it expires (net/http's
// background read sees it as the client leaving).
type deadlineBody struct {
	io.ReadCloser
	conn    readDeadliner
	timeout time.Duration
	setAt   time.Time
	done    bool

	start   time.Time
	read    int64
	minRate int64 // bytes a second; 0: no check
	grace   time.Duration
}

func (s *Server) newDeadlineBody(body io.ReadCloser, w http.ResponseWriter) io.ReadCloser {
	rd, ok := unwrapTo[readDeadliner](w)
	if !ok {
		return body
	}
	return &deadlineBody{ReadCloser: body, conn: rd, timeout: s.readTimeout,
		start: time.Now(), minRate: s.minRate, grace: s.rateGrace}
}

// errBodyTooSlow is the error of a body below client_body_min_rate: a
// timeout (the client gets a 408).
type errBodyTooSlow struct{}

func (errBodyTooSlow) Error() string {
	return "request body arrives slower than server.client_body_min_rate"
}
func (errBodyTooSlow) Timeout() bool { return true }

func (b *deadlineBody) Read(p []byte) (int, error) {
	if b.done {
		return b.ReadCloser.Read(p)
	}
	now := time.Now()
	if b.timeout > 0 && now.Sub(b.setAt) >= b.timeout/2 {
		b.conn.SetReadDeadline(now.Add(b.timeout))
		b.setAt = now
	}
	n, err := b.ReadCloser.Read(p)
	b.read += int64(n)
	if err == nil && b.minRate > 0 {
		if late := time.Since(b.start) - b.grace; late > 0 && float64(b.read) < float64(b.minRate)*late.Seconds() {
			err = errBodyTooSlow{}
		}
	}
	if err != nil {
		b.done = true
		if err == io.EOF {
			b.conn.SetReadDeadline(time.Time{})
		} else {
			// A body given up on: net/http would read what is left of it
			// after the handler (up to 256 KiB, for keep-alive), at the
			// client's pace. Expire the connection's reads instead.
			b.conn.SetReadDeadline(time.Now())
		}
	}
	return n, err
}

// unwrapTo finds an interface implementation down a chain of wrapped
// http.ResponseWriters.
func unwrapTo[T any](w http.ResponseWriter) (T, bool) {
	for {
		if t, ok := w.(T); ok {
			return t, true
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			var zero T
			return zero, false
		}
		w = u.Unwrap()
	}
}
