package compress

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// state is where a response stands.
type state uint8

const (
	stateNew         state = iota // no final status yet
	stateBuffering                // status given; the body is held back until it is MinLength long
	statePlain                    // sent as it is
	stateCompressing              // sent through the encoder
	stateDone                     // complete (encoder closed) or hijacked: no more writes
)

// errComplete is what writes get after the response was completed.
var errComplete = errors.New("compress: write after the response was complete")

// responseWriter is the http.ResponseWriter a wrapped handler writes to.
// The status and headers go out when the response is known to be
// compressed or not: at once if the headers decide it, or once MinLength
// bytes have been written, or at a flush, or at the end.
type responseWriter struct {
	rw  http.ResponseWriter
	c   *Compressor
	req *http.Request
	cd  *coding // the coding negotiated; nil: never compressed, only Vary is set

	state    state
	status   int
	buf      []byte   // held back in stateBuffering; its array is kept across responses
	enc      *encoder // taken from cd.pool at the first byte compressed
	unsized  bool     // compression removed the Content-Length the handler set
	hijacked bool
	prepare  func(http.Header, int) // WrapWith's, or nil
}

var writers = sync.Pool{New: func() any { return new(responseWriter) }}

// maxKeptBuffer bounds the hold-back buffer a pooled writer keeps.
const maxKeptBuffer = 64 << 10

func (c *Compressor) newWriter(w http.ResponseWriter, r *http.Request) *responseWriter {
	cw := writers.Get().(*responseWriter)
	*cw = responseWriter{rw: w, c: c, req: r, buf: cw.buf[:0]}
	// A HEAD response has no body to compress, and a range is a range of
	// the identity representation's bytes (http.ServeContent's 206s).
	if r.Method != http.MethodHead && len(r.Header["Range"]) == 0 {
		cw.cd = negotiate(r.Header["Accept-Encoding"], c.codings)
	}
	return cw
}

func putWriter(cw *responseWriter) {
	buf := cw.buf[:0]
	if cap(buf) > maxKeptBuffer {
		buf = nil
	}
	*cw = responseWriter{buf: buf}
	writers.Put(cw)
}

// Header returns the wrapped writer's header map.
func (cw *responseWriter) Header() http.Header { return cw.rw.Header() }

// WriteHeader decides, from the status and headers, whether the response
// is compressed, is not, or has to wait for its first MinLength bytes.
func (cw *responseWriter) WriteHeader(code int) {
	if cw.state != stateNew {
		if cw.state == statePlain || cw.state == stateCompressing {
			cw.rw.WriteHeader(code) // superfluous: net/http says so
		}
		return
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		cw.rw.WriteHeader(code) // informational (103 Early Hints): the final status is still to come
		return
	}
	cw.status = code
	hdr := cw.rw.Header()
	if cw.prepare != nil {
		cw.prepare(hdr, code)
	}
	ok, length := cw.c.compressible(hdr, code)
	switch {
	case !ok || cw.cd == nil || !bodyCompressible(code):
		if ok {
			addVary(hdr) // another client could have had it compressed
		}
		cw.state = statePlain
		cw.rw.WriteHeader(code)
	case length >= 0:
		cw.startCompressing()
	default:
		cw.state = stateBuffering
	}
}

// bodyCompressible reports whether a response with this final status has
// a body that is compressed when the rest allows: not a 204 or 304 (no
// body) nor a 206 (a range of the identity representation). An invalid
// status goes to the wrapped writer at once, to be refused there.
func bodyCompressible(code int) bool {
	return code >= 200 && code <= 999 && code != http.StatusNoContent &&
		code != http.StatusPartialContent && code != http.StatusNotModified
}

// compressible reports whether headers allow compressing a response:
// one of the types, no Content-Encoding already, no Cache-Control:
// no-transform, no Content-Length under MinLength. length is the
// Content-Length, -1 if there is none (or if it is that of a range, in
// a 206: the representation may be longer).
func (c *Compressor) compressible(h http.Header, code int) (ok bool, length int64) {
	length = -1
	if cl := h["Content-Length"]; len(cl) > 0 && code != http.StatusPartialContent {
		if n, err := strconv.ParseInt(cl[0], 10, 64); err == nil && n >= 0 {
			length = n
		}
	}
	if ct := h["Content-Type"]; len(ct) == 0 || !c.typeQualifies(ct[0]) {
		return false, length
	}
	if ce := h["Content-Encoding"]; len(ce) > 0 && ce[0] != "" {
		return false, length
	}
	if length >= 0 && length < c.minLength {
		return false, length
	}
	return !noTransform(h["Cache-Control"]), length
}

// startCompressing sends the status and the headers of a compressed
// response, then what was held back through the encoder.
func (cw *responseWriter) startCompressing() error {
	hdr := cw.rw.Header()
	hdr["Content-Encoding"] = cw.cd.header
	if _, ok := hdr["Content-Length"]; ok {
		delete(hdr, "Content-Length")
		cw.unsized = true
	}
	delete(hdr, "Accept-Ranges") // ranges would be of the identity bytes: requests with Range are not compressed
	weakenETag(hdr)
	addVary(hdr)
	cw.state = stateCompressing
	cw.rw.WriteHeader(cw.status)
	if len(cw.buf) == 0 {
		return nil
	}
	_, err := cw.encoder().Write(cw.buf)
	cw.buf = cw.buf[:0]
	return err
}

// sendPlain sends the status, the headers and what was held back of a
// response that turned out too short to compress.
func (cw *responseWriter) sendPlain(withLength bool) error {
	hdr := cw.rw.Header()
	if withLength {
		hdr["Content-Length"] = []string{strconv.Itoa(len(cw.buf))}
	}
	addVary(hdr) // a longer one would have been compressed
	cw.state = statePlain
	cw.rw.WriteHeader(cw.status)
	if len(cw.buf) == 0 {
		return nil
	}
	_, err := cw.rw.Write(cw.buf)
	cw.buf = cw.buf[:0]
	return err
}

// Write sends p, compressed or not, or holds it back while the response
// is shorter than MinLength. Its errors are the wrapped writer's.
func (cw *responseWriter) Write(p []byte) (int, error) {
	if cw.state == stateNew {
		cw.WriteHeader(http.StatusOK)
	}
	switch cw.state {
	case statePlain:
		return cw.rw.Write(p)
	case stateCompressing:
		return cw.encoder().Write(p)
	case stateBuffering:
		if int64(len(cw.buf)+len(p)) < cw.c.minLength {
			cw.buf = append(cw.buf, p...)
			return len(p), nil
		}
		if err := cw.startCompressing(); err != nil {
			return 0, err
		}
		return cw.encoder().Write(p)
	}
	return 0, cw.errDone()
}

// ReadFrom keeps the wrapped writer's io.ReaderFrom (sendfile) for a
// response sent as it is, and zstd's for one compressed with it.
func (cw *responseWriter) ReadFrom(src io.Reader) (int64, error) {
	if cw.state == stateNew {
		cw.WriteHeader(http.StatusOK)
	}
	switch cw.state {
	case statePlain:
		return io.Copy(cw.rw, src)
	case stateCompressing:
		return io.Copy(cw.encoder().compressor, src)
	case stateBuffering:
		// Write decides once there is enough.
		return io.Copy(writerOnly{cw}, src)
	}
	return 0, cw.errDone()
}

// writerOnly hides ReadFrom from io.Copy.
type writerOnly struct{ io.Writer }

// Flush sends what was written so far: a response held back is decided
// now (compressed if the headers allow it: a response that flushes is
// streaming, and will likely grow), and the encoder flushes its output
// before the wrapped writer flushes.
func (cw *responseWriter) Flush() { cw.FlushError() }

// FlushError is Flush, with the error (http.ResponseController uses it).
func (cw *responseWriter) FlushError() error {
	if cw.state == stateNew {
		cw.WriteHeader(http.StatusOK)
	}
	switch cw.state {
	case stateBuffering:
		if err := cw.startCompressing(); err != nil {
			return err
		}
		fallthrough
	case stateCompressing:
		if err := cw.encoder().Flush(); err != nil {
			return err
		}
	case stateDone:
		return cw.errDone()
	}
	return http.NewResponseController(cw.rw).Flush()
}

// Hijack hands the connection over to the handler (see
// [Compressor.Wrap]): a compressed body is completed and flushed first,
// and a chunked one the handler does not know is chunked gets its last
// chunk. Where the wrapped writer cannot hijack (HTTP/2), the response
// is left as it is and the error wraps http.ErrNotSupported.
func (cw *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := hijacker(cw.rw)
	if !ok {
		return nil, nil, fmt.Errorf("compress: hijacking the connection: %w", http.ErrNotSupported)
	}
	endChunked := false
	switch cw.state {
	case stateBuffering:
		// The whole body is held back, and short: it goes as it is. The
		// handler, having set no length, may end a chunked body itself.
		if err := cw.sendPlain(false); err != nil {
			return nil, nil, err
		}
		// net/http drops unflushed output on Hijack.
		if err := http.NewResponseController(cw.rw).Flush(); err != nil {
			return nil, nil, err
		}
	case stateCompressing:
		// Chunked (HTTP/1.1) for lack of the length the handler set, which
		// then expects its body to end with its last byte.
		endChunked = cw.unsized && cw.req.ProtoAtLeast(1, 1) &&
			cw.rw.Header().Get("Transfer-Encoding") != "identity"
		if err := cw.closeEncoder(); err != nil {
			return nil, nil, err
		}
		if err := http.NewResponseController(cw.rw).Flush(); err != nil {
			return nil, nil, err
		}
	}
	cw.state, cw.hijacked = stateDone, true
	conn, brw, err := h.Hijack()
	if err != nil || !endChunked {
		return conn, brw, err
	}
	if _, err = brw.WriteString("0\r\n\r\n"); err == nil {
		err = brw.Flush()
	}
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, brw, nil
}

// hijacker finds the http.Hijacker down a chain of wrapped writers.
func hijacker(w http.ResponseWriter) (http.Hijacker, bool) {
	for {
		if h, ok := w.(http.Hijacker); ok {
			return h, true
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return nil, false
		}
		w = u.Unwrap()
	}
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (cw *responseWriter) Unwrap() http.ResponseWriter { return cw.rw }

// finish completes the response when the handler has returned: what was
// held back goes as it is, with its length; a compressed body gets its
// final bytes.
func (cw *responseWriter) finish() {
	if cw.state == stateNew {
		cw.WriteHeader(http.StatusOK) // what net/http does, with Vary if due
	}
	switch cw.state {
	case stateBuffering:
		cw.sendPlain(true)
	case stateCompressing:
		cw.closeEncoder() // an error here is the client gone: nobody to tell
	}
	cw.state = stateDone
}

// encoder returns the response's encoder, taking one from the pool the
// first time.
func (cw *responseWriter) encoder() *encoder {
	if cw.enc == nil {
		cw.enc = getEncoder(cw.cd, cw.rw)
	}
	return cw.enc
}

// closeEncoder writes the encoder's final bytes (an empty body gets a
// valid empty stream) and gives the encoder back.
func (cw *responseWriter) closeEncoder() error {
	err := cw.encoder().Close()
	cw.enc.release()
	cw.enc = nil
	cw.state = stateDone
	return err
}

func (cw *responseWriter) errDone() error {
	if cw.hijacked {
		return http.ErrHijacked
	}
	return errComplete
}

// varyAcceptEncoding is shared by every response that did not vary
// before (appending to it copies it).
var varyAcceptEncoding = []string{"Accept-Encoding"}

// addVary adds Accept-Encoding to the Vary header, in the field line
// there is, unless it is there already or Vary is "*".
func addVary(h http.Header) {
	vs := h["Vary"]
	if len(vs) == 0 {
		h["Vary"] = varyAcceptEncoding
		return
	}
	for _, v := range vs {
		for v != "" {
			var name string
			name, v, _ = strings.Cut(v, ",")
			name = trimOWS(name)
			if name == "*" || equalFold(name, "Accept-Encoding") {
				return
			}
		}
	}
	h["Vary"] = []string{strings.Join(vs, ", ") + ", Accept-Encoding"}
}

// weakenETag makes a strong ETag weak: the compressed bytes are not the
// identity representation's (RFC 9110 8.8.1). Like nginx, it drops one
// that is not a quoted string, which no validator can match.
func weakenETag(h http.Header) {
	et := h["Etag"]
	switch {
	case len(et) == 0 || strings.HasPrefix(et[0], "W/"):
	case strings.HasPrefix(et[0], `"`):
		h["Etag"] = []string{"W/" + et[0]}
	default:
		delete(h, "Etag")
	}
}

// noTransform reports whether Cache-Control field lines have the
// no-transform directive, which forbids changing the content coding
// (RFC 9111 5.2.2.6).
func noTransform(fields []string) bool {
	for _, v := range fields {
		for v != "" {
			var d string
			d, v, _ = strings.Cut(v, ",")
			d, _, _ = strings.Cut(d, "=")
			if equalFold(trimOWS(d), "no-transform") {
				return true
			}
		}
	}
	return false
}

// A compressor is what the three encoders have in common.
type compressor interface {
	io.WriteCloser
	Flush() error
	Reset(io.Writer)
}

// An encoder is a pooled compressor. It writes to dst, which is pointed
// at the response being compressed and cleared when the encoder goes back
// to its pool, so that an idle encoder does not keep a response alive.
type encoder struct {
	compressor
	dst  dst
	pool *sync.Pool
}

type dst struct{ w io.Writer }

func (d *dst) Write(p []byte) (int, error) { return d.w.Write(p) }

func newEncoder(z compressor) *encoder { return &encoder{compressor: z} }

func getEncoder(cd *coding, w io.Writer) *encoder {
	e := cd.pool.Get().(*encoder)
	e.pool = cd.pool
	e.dst.w = w
	e.Reset(&e.dst) // a new stream; the state of the last one is dropped
	return e
}

func (e *encoder) release() {
	e.dst.w = nil
	e.pool.Put(e)
}
