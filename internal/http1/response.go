package http1

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// bufferBeforeChunking is how much of a body waits for the handler to end
// before the head goes out: a response that ends within it gets a
// Content-Length, a longer one is chunked (net/http's 2048).
const bufferBeforeChunking = 2048

// sniffLen is how much of a body http.DetectContentType reads.
const sniffLen = 512

var errAfterHandler = errors.New("http1: write after the handler returned")

// response is the http.ResponseWriter of a fast-path request. It follows
// net/http's response: the same head (Date, a sniffed Content-Type, a
// Content-Length for a body that ends within bufferBeforeChunking, else
// chunking), the same errors, the same keep-alive decisions. It also
// implements http.Flusher, io.ReaderFrom (sendfile), http.Hijacker, and
// the deadlines of http.ResponseController.
type response struct {
	c      *conn
	req    *http.Request
	ctx    *reqCtx
	header http.Header

	w           *bufio.Writer // bufferBeforeChunking, on cw
	cw          chunkWriter
	wroteHeader bool
	status      int
	handlerDone bool

	contentLength int64 // from the handler's head or the whole body; -1: unknown
	hasCL         bool  // the head says contentLength (not so when Transfer-Encoding overrides it)
	written       int64
	// what the handler's head said, taken when it was written (net/http
	// writes the head the handler had at WriteHeader)
	head        *bytes.Buffer // the handler's header lines, minus what the server decides (the connection's)
	te          string
	trailers    bool     // the handler declared trailers
	trailerKeys []string // those its Trailer header names
	hasType     bool
	hasCE       bool
	hasDate     bool
	conn        []string // the handler's Connection values
	upgrade     bool     // the handler's head has Upgrade
	closeHdr    bool     // its first Connection value is "close"
	badCL       bool     // it had an invalid Content-Length

	closeAfterReply bool
}

func newResponse(c *conn, req *http.Request) *response {
	w := &response{c: c, req: req, ctx: req.Context().(*reqCtx), header: make(http.Header), contentLength: -1}
	w.cw.res = w
	w.w = chunkBuffers.get(&w.cw)
	w.head = &c.head
	w.head.Reset()
	w.closeAfterReply = req.Close
	c.res = w
	return w
}

func (w *response) Header() http.Header { return w.header }

func (w *response) WriteHeader(code int) {
	if w.c.hijacked {
		w.c.srv.logf("http: response.WriteHeader on hijacked connection")
		return
	}
	if w.wroteHeader {
		w.c.srv.logf("http: superfluous response.WriteHeader call")
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		bw := w.c.bw
		writeStatusLine(bw, code)
		w.header.WriteSubset(bw, excludedNoBody)
		bw.WriteString("\r\n")
		bw.Flush()
		return
	}
	w.wroteHeader = true
	w.status = code
	if cl := w.header.Get("Content-Length"); cl != "" {
		v, err := strconv.ParseInt(cl, 10, 64)
		if err == nil && v >= 0 {
			w.contentLength = v
		} else {
			w.c.srv.logf("http: invalid Content-Length of %q", cl)
			w.header.Del("Content-Length")
			// net/http's head keeps the value, then drops it: the
			// response is chunked, it gets no length of its own
			w.badCL = true
		}
	}
	w.takeHead()
}

// excludedNoBody are the headers an informational response leaves out.
var excludedNoBody = map[string]bool{"Content-Length": true, "Transfer-Encoding": true}

// takeHead takes what the server's part of the head depends on from the
// handler's head, and the rest of it as lines.
func (w *response) takeHead() {
	h := w.header
	w.te = h.Get("Transfer-Encoding")
	for _, v := range h["Trailer"] {
		w.trailers = true
		for _, k := range strings.Split(v, ",") {
			if k = http.CanonicalHeaderKey(textproto.TrimString(k)); k != "" && httpguts.ValidTrailerHeader(k) {
				w.trailerKeys = append(w.trailerKeys, k)
			}
		}
	}
	_, w.hasType = h["Content-Type"]
	w.hasCE = h.Get("Content-Encoding") != ""
	_, w.hasDate = h["Date"]
	w.conn = h["Connection"]
	_, w.upgrade = h["Upgrade"]
	w.closeHdr = len(w.conn) > 0 && w.conn[0] == "close"

	if w.c.exclude == nil {
		w.c.exclude = make(map[string]bool)
	}
	exclude := w.c.exclude
	defer clear(exclude)
	exclude["Connection"] = true
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			exclude[k] = true
			w.trailers = true
		}
	}
	isHEAD := w.req.Method == http.MethodHead
	body := bodyAllowedForStatus(w.status)
	if !body {
		exclude["Content-Length"] = true
		exclude["Transfer-Encoding"] = true
		if w.status == http.StatusNotModified {
			exclude["Content-Type"] = true
		}
	}
	w.hasCL = w.contentLength != -1
	if w.hasCL && w.te != "" && w.te != "identity" {
		// The length still bounds the writes (ErrContentLength), as
		// net/http's; the head leaves it out.
		w.c.srv.logf("http: WriteHeader called with both Transfer-Encoding of %q and a Content-Length of %d", w.te, w.contentLength)
		exclude["Content-Length"] = true
		w.hasCL = false
	}
	if isHEAD || !body || w.hasCL || w.te == "identity" || w.te == "chunked" {
		exclude["Transfer-Encoding"] = true
	}
	h.WriteSubset(w.head, exclude)
}

// writeHead writes the head to the connection's buffer, before the first
// part of the body, p (all of it when the handler is done).
func (w *response) writeHead(p []byte) {
	bw := w.c.bw
	isHEAD := w.req.Method == http.MethodHead
	body := bodyAllowedForStatus(w.status)
	hasTE := w.te != ""
	var extra [5]string // in net/http's order: Date, Content-Length, Content-Type, Connection, Transfer-Encoding
	if w.handlerDone && !w.trailers && !hasTE && !w.badCL && body && w.contentLength == -1 && (!isHEAD || len(p) > 0) {
		w.contentLength = int64(len(p))
		w.hasCL = true
		extra[1] = strconv.Itoa(len(p))
	}
	keepAlives := !w.c.srv.inShutdown.Load()
	if w.closeHdr || !keepAlives {
		w.closeAfterReply = true
	}
	if body && !w.hasType && !w.hasCE && !hasTE && len(p) > 0 {
		extra[2] = http.DetectContentType(p)
	}
	if !w.hasDate {
		extra[0] = httpDate()
	}
	switch {
	case isHEAD || !body || w.status == http.StatusNoContent || w.hasCL:
	case w.te == "identity":
		w.closeAfterReply = true
	default:
		w.cw.chunking = true
		extra[4] = "chunked"
	}
	writeConn := len(w.conn) > 0
	if w.closeAfterReply && (!keepAlives || !hasToken(w.conn, "close")) && !(w.status == http.StatusSwitchingProtocols && w.upgrade) {
		extra[3] = "close"
		writeConn = false
	}

	writeStatusLine(bw, w.status)
	bw.Write(w.head.Bytes())
	if writeConn {
		http.Header{"Connection": w.conn}.Write(bw)
	}
	for i, k := range [...]string{"Date", "Content-Length", "Content-Type", "Connection", "Transfer-Encoding"} {
		if extra[i] != "" {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(extra[i])
			bw.WriteString("\r\n")
		}
	}
	bw.WriteString("\r\n")
}

func (w *response) bodyAllowed() bool {
	if !w.wroteHeader {
		panic("http1: bodyAllowed before WriteHeader")
	}
	return bodyAllowedForStatus(w.status)
}

func (w *response) Write(p []byte) (int, error) {
	if w.c.hijacked {
		if len(p) > 0 {
			w.c.srv.logf("http: response.Write on hijacked connection")
		}
		return 0, http.ErrHijacked
	}
	if w.handlerDone {
		return 0, errAfterHandler
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !w.bodyAllowed() {
		return 0, http.ErrBodyNotAllowed
	}
	w.written += int64(len(p))
	if w.contentLength != -1 && w.written > w.contentLength {
		return 0, http.ErrContentLength
	}
	return w.w.Write(p)
}

// WriteString is Write without the copy to bytes.
func (w *response) WriteString(s string) (int, error) {
	return w.Write([]byte(s))
}

// Flush sends what is buffered, the head first.
func (w *response) Flush() { w.FlushError() }

// FlushError is Flush that reports the error (http.ResponseController).
func (w *response) FlushError() error {
	if w.c.hijacked || w.handlerDone {
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	err := w.w.Flush()
	if e := w.cw.flush(); err == nil {
		err = e
	}
	return err
}

// ReadFrom sends a file with sendfile(2) once the head is out, when the
// body is neither chunked nor discarded (a HEAD), as net/http's does.
func (w *response) ReadFrom(src io.Reader) (n int64, err error) {
	rf, ok := w.c.rwc.(io.ReaderFrom)
	if !ok {
		return io.Copy(writerOnly{w}, src)
	}
	if !w.cw.wroteHeader {
		n0, err := io.Copy(writerOnly{w}, io.LimitReader(src, sniffLen))
		n += n0
		if err != nil || n0 < sniffLen {
			return n, err
		}
	}
	w.w.Flush()
	if err := w.cw.flush(); err != nil {
		return n, err
	}
	if !w.cw.chunking && w.bodyAllowed() && w.req.Method != http.MethodHead {
		n0, err := rf.ReadFrom(src)
		n += n0
		w.written += n0
		return n, err
	}
	n0, err := io.Copy(writerOnly{w}, src)
	n += n0
	return n, err
}

type writerOnly struct{ io.Writer }

// Hijack gives the handler the connection, as net/http's: output not yet
// flushed (Flush) is dropped.
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.handlerDone {
		panic("http1: Hijack called after ServeHTTP finished")
	}
	c := w.c
	if c.hijacked {
		return nil, nil, http.ErrHijacked
	}
	if w.wroteHeader {
		w.cw.flush()
	}
	c.r.hijack()
	c.srv.forget(c) // the hijacker's now: Shutdown and Close leave it alone, as net/http's
	c.rwc.SetDeadline(time.Time{})
	if c.r.hasByte {
		if _, err := c.br.Peek(c.br.Buffered() + 1); err != nil {
			return nil, nil, fmt.Errorf("unexpected Peek failure reading buffered byte: %v", err)
		}
	}
	c.bw.Reset(c.rwc)
	c.setState(http.StateHijacked)
	return c.rwc, bufio.NewReadWriter(c.br, c.bw), nil
}

// SetReadDeadline is http.ResponseController's.
func (w *response) SetReadDeadline(t time.Time) error { return w.c.rwc.SetReadDeadline(t) }

// SetWriteDeadline is http.ResponseController's.
func (w *response) SetWriteDeadline(t time.Time) error { return w.c.rwc.SetWriteDeadline(t) }

// finishRequest ends the response once the handler has returned.
func (w *response) finishRequest() {
	w.handlerDone = true
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.w.Flush()
	chunkBuffers.put(w.w)
	w.w = nil
	w.cw.close()
	w.c.bw.Flush()
	w.c.r.abortPendingRead()
}

// shouldReuseConnection: net/http's rule, for a request without a body.
func (w *response) shouldReuseConnection() bool {
	if w.closeAfterReply {
		return false
	}
	if w.req.Method != http.MethodHead && w.contentLength != -1 && w.bodyAllowed() && w.contentLength != w.written {
		return false // the client would wait for the bytes missing
	}
	return w.c.werr == nil
}

// chunkWriter writes the head before the body's first bytes, then the
// body, in chunks when the length was not known.
type chunkWriter struct {
	res         *response
	wroteHeader bool
	chunking    bool
}

func (cw *chunkWriter) Write(p []byte) (int, error) {
	w := cw.res
	if !cw.wroteHeader {
		cw.wroteHeader = true
		w.writeHead(p)
	}
	if w.req.Method == http.MethodHead {
		return len(p), nil
	}
	bw := w.c.bw
	if !cw.chunking && bw.Buffered() > 0 && len(p) > bw.Available() {
		// The head is buffered and p does not fit beside it: bufio would
		// write the buffer topped up with p's start, then the rest, two
		// writes and two wake-ups of the client for one response. One
		// writev takes both (a page, a cached file over 4 KiB).
		c := w.c
		c.gather, c.gathered = p, 0
		err := bw.Flush()
		n := c.gathered
		c.gather = nil
		if err == nil && n < len(p) {
			err = io.ErrShortWrite
		}
		if err != nil {
			c.rwc.Close()
		}
		return n, err
	}
	if cw.chunking {
		bw.WriteString(strconv.FormatInt(int64(len(p)), 16))
		bw.WriteString("\r\n")
	}
	n, err := bw.Write(p)
	if cw.chunking && err == nil {
		_, err = bw.WriteString("\r\n")
	}
	if err != nil {
		w.c.rwc.Close()
	}
	return n, err
}

func (cw *chunkWriter) flush() error {
	if !cw.wroteHeader {
		cw.wroteHeader = true
		cw.res.writeHead(nil)
	}
	return cw.res.c.bw.Flush()
}

func (cw *chunkWriter) close() {
	if !cw.wroteHeader {
		cw.wroteHeader = true
		cw.res.writeHead(nil)
	}
	if cw.chunking {
		bw := cw.res.c.bw
		bw.WriteString("0\r\n")
		if t := cw.res.finalTrailers(); t != nil {
			t.Write(bw)
		}
		bw.WriteString("\r\n")
	}
}

// finalTrailers are the trailers the handler set: those under
// http.TrailerPrefix (added any time, as net/http allows), and the keys
// its Trailer header declared.
func (w *response) finalTrailers() http.Header {
	var t http.Header
	for k, vv := range w.header {
		if kk, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			if t == nil {
				t = make(http.Header)
			}
			t[kk] = vv
		}
	}
	for _, k := range w.trailerKeys {
		for _, v := range w.header[k] {
			if t == nil {
				t = make(http.Header)
			}
			t.Add(k, v)
		}
	}
	return t
}

// httpDate is the Date header for now, formatted once a second.
func httpDate() string {
	now := time.Now()
	if d := lastDate.Load(); d != nil && d.sec == now.Unix() {
		return d.text
	}
	d := &date{now.Unix(), now.UTC().Format(http.TimeFormat)}
	lastDate.Store(d)
	return d.text
}

type date struct {
	sec  int64
	text string
}

var lastDate atomic.Pointer[date]

func writeStatusLine(bw *bufio.Writer, code int) {
	bw.WriteString("HTTP/1.1 ")
	if text := http.StatusText(code); text != "" {
		bw.WriteString(strconv.Itoa(code))
		bw.WriteByte(' ')
		bw.WriteString(text)
		bw.WriteString("\r\n")
	} else {
		fmt.Fprintf(bw, "%03d status code %d\r\n", code, code)
	}
}

func bodyAllowedForStatus(status int) bool {
	switch {
	case status >= 100 && status <= 199, status == 204, status == 304:
		return false
	}
	return true
}

// hasToken reports whether the first of vs holds token t, as net/http
// tests a Connection header: t case-insensitively, between the value's
// ends, spaces, commas or tabs.
func hasToken(vs []string, t string) bool {
	if len(vs) == 0 {
		return false
	}
	v := vs[0]
	for i := 0; i+len(t) <= len(v); i++ {
		end := i + len(t)
		if (i == 0 || isTokenBoundary(v[i-1])) && (end == len(v) || isTokenBoundary(v[end])) &&
			strings.EqualFold(v[i:end], t) {
			return true
		}
	}
	return false
}

func isTokenBoundary(b byte) bool { return b == ' ' || b == ',' || b == '\t' }
