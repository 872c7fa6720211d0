package compress

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestCompressedHeaders covers what compression changes in the headers:
// Content-Length and Accept-Ranges go, the ETag becomes weak, Vary gets
// Accept-Encoding once.
func TestCompressedHeaders(t *testing.T) {
	c := mustNew(t, Options{})
	page := testHTML(4 << 10)
	tests := []struct {
		set      []string // header name, value pairs
		wantETag string
		wantVary []string
	}{
		{[]string{"Etag", `"abc"`}, `W/"abc"`, []string{"Accept-Encoding"}},
		{[]string{"Etag", `W/"abc"`}, `W/"abc"`, []string{"Accept-Encoding"}},
		{[]string{"Etag", `abc`}, "", []string{"Accept-Encoding"}}, // not a valid ETag: dropped
		{[]string{"Vary", "Cookie"}, "", []string{"Cookie, Accept-Encoding"}},
		{[]string{"Vary", "Cookie", "Vary", "Origin"}, "", []string{"Cookie, Origin, Accept-Encoding"}},
		{[]string{"Vary", "Cookie, accept-encoding"}, "", []string{"Cookie, accept-encoding"}},
		{[]string{"Vary", "Origin", "Vary", "Accept-Encoding"}, "", []string{"Origin", "Accept-Encoding"}},
		{[]string{"Vary", "*"}, "", []string{"*"}},
	}
	for _, tt := range tests {
		w := serve(c, "GET", "gzip", func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("Content-Type", "text/html")
			h.Set("Content-Length", "4096")
			h.Set("Accept-Ranges", "bytes")
			for i := 0; i < len(tt.set); i += 2 {
				h.Add(tt.set[i], tt.set[i+1])
			}
			w.Write(page)
		})
		h := w.Result().Header
		if h.Get("Content-Encoding") != "gzip" || h.Get("Content-Length") != "" || h.Get("Accept-Ranges") != "" {
			t.Errorf("%q: Content-Encoding %q, Content-Length %q, Accept-Ranges %q",
				tt.set, h.Get("Content-Encoding"), h.Get("Content-Length"), h.Get("Accept-Ranges"))
		}
		if got := h.Get("Etag"); got != tt.wantETag {
			t.Errorf("%q: ETag = %q, want %q", tt.set, got, tt.wantETag)
		}
		if got := h.Values("Vary"); !slices.Equal(got, tt.wantVary) {
			t.Errorf("%q: Vary = %q, want %q", tt.set, got, tt.wantVary)
		}
		if got := decode(t, "gzip", w.Body.Bytes()); !bytes.Equal(got, page) {
			t.Errorf("%q: body differs", tt.set)
		}
	}
}

// TestFlushDecides: a flush before MinLength bytes decides at once, for
// compression when the headers allow it, and pushes the bytes out.
func TestFlushDecides(t *testing.T) {
	c := mustNew(t, Options{})
	for _, alg := range algorithms {
		var seen []byte
		w := serve(c, "GET", alg, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: 1\n\n")
			w.(http.Flusher).Flush()
			seen = bytes.Clone(w.(interface{ Unwrap() http.ResponseWriter }).Unwrap().(*httptest.ResponseRecorder).Body.Bytes())
			io.WriteString(w, "data: 2\n\n")
		})
		if got := w.Result().Header.Get("Content-Encoding"); got != alg {
			t.Fatalf("%s: Content-Encoding = %q", alg, got)
		}
		// What was flushed decodes on its own (a stream not yet ended).
		if got := decodePrefix(t, alg, seen); got != "data: 1\n\n" {
			t.Errorf("%s: flushed %q, decodes to %q", alg, seen, got)
		}
		if got := decode(t, alg, w.Body.Bytes()); string(got) != "data: 1\n\ndata: 2\n\n" {
			t.Errorf("%s: body %q", alg, got)
		}
	}
}

// TestEmptyCompressedBody: a response compressed from its headers that
// then writes nothing still gets a valid (empty) stream.
func TestEmptyCompressedBody(t *testing.T) {
	c := mustNew(t, Options{})
	for _, alg := range algorithms {
		w := serve(c, "GET", alg, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("Content-Length", "5000")
			w.WriteHeader(200)
		})
		if w.Result().Header.Get("Content-Encoding") != alg || w.Body.Len() == 0 {
			t.Fatalf("%s: Content-Encoding %q, %d bytes", alg, w.Result().Header.Get("Content-Encoding"), w.Body.Len())
		}
		if got := decode(t, alg, w.Body.Bytes()); len(got) != 0 {
			t.Errorf("%s: decoded %q", alg, got)
		}
	}
}

var errBroken = errors.New("broken pipe")

// brokenWriter fails every write.
type brokenWriter struct{ h http.Header }

func (b *brokenWriter) Header() http.Header       { return b.h }
func (b *brokenWriter) WriteHeader(int)           {}
func (b *brokenWriter) Write([]byte) (int, error) { return 0, errBroken }
func (b *brokenWriter) Flush()                    {}

// TestWriteErrors: the wrapped writer's errors reach the handler, from
// Write and from a flush, compressed or not.
func TestWriteErrors(t *testing.T) {
	c := mustNew(t, Options{})
	// Incompressible data, so that every encoder writes soon.
	noise := make([]byte, 1<<20)
	rnd := rand.NewChaCha8([32]byte{1})
	rnd.Read(noise)
	for _, alg := range append(algorithms, "-") {
		var writeErr, flushErr error
		h := c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			for p := noise; len(p) > 0 && writeErr == nil; p = p[min(len(p), 8192):] {
				_, writeErr = w.Write(p[:min(len(p), 8192)])
			}
			w.Write([]byte("x"))
			flushErr = http.NewResponseController(w).Flush()
		}))
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Accept-Encoding", alg)
		h.ServeHTTP(&brokenWriter{h: http.Header{}}, r)
		if !errors.Is(writeErr, errBroken) {
			t.Errorf("%s: Write error %v, want %v", alg, writeErr, errBroken)
		}
		if alg != "-" && !errors.Is(flushErr, errBroken) {
			t.Errorf("%s: Flush error %v, want %v", alg, flushErr, errBroken)
		}
	}
}

// TestPanicLeavesBodyIncomplete: after a handler's panic the compressed
// body does not end (no final bytes): it must not pass for a whole one.
func TestPanicLeavesBodyIncomplete(t *testing.T) {
	c := mustNew(t, Options{})
	page := testHTML(8 << 10)
	for _, alg := range algorithms {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Accept-Encoding", alg)
		func() {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.Write(page)
				w.(http.Flusher).Flush()
				panic(http.ErrAbortHandler)
			})).ServeHTTP(w, r)
		}()
		if n := len(decodePrefix(t, alg, w.Body.Bytes())); n != len(page) {
			t.Fatalf("%s: flushed part decodes to %d bytes, want %d", alg, n, len(page))
		}
		if _, err := decodeErr(alg, w.Body.Bytes()); err == nil {
			t.Errorf("%s: the body of a handler that panicked decodes as complete", alg)
		}
	}
}

// readFromWriter records whether ReadFrom was used.
type readFromWriter struct {
	*httptest.ResponseRecorder
	readFrom bool
}

func (w *readFromWriter) ReadFrom(r io.Reader) (int64, error) {
	w.readFrom = true
	return io.Copy(w.ResponseRecorder, r)
}

// TestServeContent: a file through http.ServeContent (the static
// backend) is compressed, unless the request has a Range (a 206 of the
// identity bytes) or the response is sent as it is, in which case the
// wrapped writer's ReadFrom (sendfile) is used.
func TestServeContent(t *testing.T) {
	c := mustNew(t, Options{})
	page := testHTML(64 << 10)
	path := filepath.Join(t.TempDir(), "page.html")
	if err := os.WriteFile(path, page, 0o644); err != nil {
		t.Fatal(err)
	}
	h := c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(path)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		w.Header().Set("Etag", `"v1"`)
		http.ServeContent(w, r, "page.html", time.Unix(1e9, 0), f)
	}))
	get := func(ae, rng string) (*http.Response, *readFromWriter) {
		r := httptest.NewRequest("GET", "/page.html", nil)
		if ae != "" {
			r.Header.Set("Accept-Encoding", ae)
		}
		if rng != "" {
			r.Header.Set("Range", rng)
		}
		w := &readFromWriter{ResponseRecorder: httptest.NewRecorder()}
		h.ServeHTTP(w, r)
		return w.Result(), w
	}
	for _, alg := range algorithms {
		res, w := get(alg, "")
		if res.StatusCode != 200 || res.Header.Get("Content-Encoding") != alg || res.Header.Get("Etag") != `W/"v1"` {
			t.Fatalf("%s: %d, Content-Encoding %q, ETag %q", alg, res.StatusCode, res.Header.Get("Content-Encoding"), res.Header.Get("Etag"))
		}
		if got := decode(t, alg, w.Body.Bytes()); !bytes.Equal(got, page) {
			t.Errorf("%s: body differs", alg)
		}
	}

	res, w := get("gzip", "bytes=100-199")
	if res.StatusCode != 206 || res.Header.Get("Content-Encoding") != "" || !bytes.Equal(w.Body.Bytes(), page[100:200]) {
		t.Errorf("Range: %d, Content-Encoding %q, %d bytes", res.StatusCode, res.Header.Get("Content-Encoding"), w.Body.Len())
	}
	if res.Header.Get("Vary") != "Accept-Encoding" || res.Header.Get("Etag") != `"v1"` {
		t.Errorf("Range: Vary %q, ETag %q", res.Header.Get("Vary"), res.Header.Get("Etag"))
	}
	if !w.readFrom {
		t.Error("Range: the wrapped writer's ReadFrom was not used")
	}

	res, w = get("", "")
	if res.Header.Get("Content-Encoding") != "" || !bytes.Equal(w.Body.Bytes(), page) || !w.readFrom {
		t.Errorf("no Accept-Encoding: Content-Encoding %q, %d bytes, ReadFrom used: %v",
			res.Header.Get("Content-Encoding"), w.Body.Len(), w.readFrom)
	}
}

// TestReadFromHeldBack: io.Copy into a response of unknown length goes
// through the hold-back, whichever way it ends.
func TestReadFromHeldBack(t *testing.T) {
	c := mustNew(t, Options{})
	for _, n := range []int{10, 5000} {
		page := testHTML(n)
		w := serve(c, "GET", "br", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			if _, err := io.Copy(w, strings.NewReader(string(page))); err != nil {
				t.Error(err)
			}
		})
		ce := w.Result().Header.Get("Content-Encoding")
		if (n >= DefaultMinLength) != (ce == "br") {
			t.Errorf("%d bytes: Content-Encoding %q", n, ce)
		}
		if got := decode(t, ce, w.Body.Bytes()); !bytes.Equal(got, page) {
			t.Errorf("%d bytes: body differs", n)
		}
	}
}

// TestWriteAfterEnd: once complete, the writer refuses writes.
func TestWriteAfterEnd(t *testing.T) {
	c := mustNew(t, Options{})
	cw := c.newWriter(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	cw.finish()
	if _, err := cw.Write([]byte("x")); !errors.Is(err, errComplete) {
		t.Errorf("Write after finish: %v", err)
	}
}

// decodePrefix decodes what a stream not yet ended holds so far.
func decodePrefix(t testing.TB, coding string, body []byte) string {
	t.Helper()
	out, _ := decodeErr(coding, body)
	return string(out)
}

// decodeErr decodes body, returning what it got and the decoder's error.
func decodeErr(coding string, body []byte) ([]byte, error) {
	r, err := decoder(coding, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out bytes.Buffer
	_, err = io.Copy(&out, r)
	return out.Bytes(), err
}
