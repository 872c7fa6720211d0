package compress

import (
	"bytes"
	stdgzip "compress/gzip"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

var algorithms = []string{"zstd", "br", "gzip"}

func TestNew(t *testing.T) {
	c := mustNew(t, Options{})
	if c.minLength != DefaultMinLength {
		t.Errorf("minLength = %d, want %d", c.minLength, DefaultMinLength)
	}
	var names []string
	for _, cd := range c.codings {
		names = append(names, cd.name)
	}
	if !slices.Equal(names, algorithms) {
		t.Errorf("codings = %q, want %q", names, algorithms)
	}
	if len(c.types) != len(DefaultTypes()) {
		t.Errorf("%d types, want the %d defaults", len(c.types), len(DefaultTypes()))
	}

	c = mustNew(t, Options{Algorithms: []string{"GZIP", "br"}, MinLength: 10, Types: []string{"Text/HTML", "application/*"}})
	if len(c.codings) != 2 || c.codings[0] != gzipCoding || c.codings[1] != brotliCoding || c.minLength != 10 {
		t.Errorf("got %+v", c)
	}
	if _, ok := c.types["text/html"]; !ok {
		t.Errorf("types = %v, want text/html in lower case", c.types)
	}

	bad := []struct {
		opts Options
		want string // in the error
	}{
		{Options{Algorithms: []string{"zstd", "lz4"}}, `Algorithms: unknown algorithm "lz4"`},
		{Options{Algorithms: []string{"deflate"}}, `"deflate"`},
		{Options{Algorithms: []string{"gzip", "br", "gzip"}}, `"gzip" is listed twice`},
		{Options{MinLength: -1}, "MinLength -1"},
		{Options{Types: []string{"text/html", "html"}}, `Types: "html"`},
		{Options{Types: []string{"text/"}}, `Types: "text/"`},
		{Options{Types: []string{"/html"}}, `Types: "/html"`},
		{Options{Types: []string{"*/*"}}, `Types: "*/*"`},
		{Options{Types: []string{"text/html; charset=utf-8"}}, "without parameters"},
		{Options{Types: []string{"text/ht*"}}, `Types: "text/ht*"`},
		{Options{Types: []string{"te(xt/html"}}, "not a valid media type"},
		{Options{Types: []string{""}}, `Types: ""`},
	}
	for _, tt := range bad {
		_, err := New(tt.opts)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%+v) = %v, want an error with %q", tt.opts, err, tt.want)
		}
	}
}

func TestTypeQualifies(t *testing.T) {
	c := mustNew(t, Options{})
	yes := []string{
		"text/html", "text/html; charset=UTF-8", "TEXT/HTML", " text/css ; x=y", "text/javascript; charset=utf-8",
		"application/json", "Application/JSON;charset=utf-8", "image/svg+xml", "application/wasm", "font/ttf",
	}
	no := []string{
		"", "text", "text/", "/html", "image/png", "image/jpeg", "font/woff2", "application/octet-stream",
		"application/zip", "application/jsonx", "textual/html", strings.Repeat("a", 200) + "/html",
	}
	for _, ct := range yes {
		if !c.typeQualifies(ct) {
			t.Errorf("typeQualifies(%q) = false", ct)
		}
	}
	for _, ct := range no {
		if c.typeQualifies(ct) {
			t.Errorf("typeQualifies(%q) = true", ct)
		}
	}
	c = mustNew(t, Options{Types: []string{"application/json"}})
	if c.typeQualifies("text/html") || !c.typeQualifies("application/json") {
		t.Error("Types did not replace the defaults")
	}
}

// testHTML returns n bytes of HTML that compress about as well as a
// real page does (three to six times).
func testHTML(n int) []byte {
	words := strings.Fields("the quick brown fox jumps over lazy dog product price cart order total shipping " +
		"account login search category review rating stock available customer support contact about help")
	rnd := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	b.WriteString("<!DOCTYPE html>\n<html><head><title>Shop</title></head><body><table>\n")
	for b.Len() < n {
		fmt.Fprintf(&b, `<tr class="row-%d"><td><a href="/p/%d">`, rnd.IntN(4), rnd.IntN(100000))
		for range 3 + rnd.IntN(6) {
			b.WriteString(words[rnd.IntN(len(words))])
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "</a></td><td>%d.%02d</td></tr>\n", rnd.IntN(500), rnd.IntN(100))
	}
	return b.Bytes()[:n]
}

// decode decodes a complete body in a content coding.
func decode(t testing.TB, coding string, body []byte) []byte {
	t.Helper()
	if coding == "" {
		return body
	}
	out, err := decodeErr(coding, body)
	if err != nil {
		t.Fatalf("decoding %s (%d bytes): %v", coding, len(body), err)
	}
	return out
}

// decoder returns a streaming decoder for a content coding.
func decoder(coding string, r io.Reader) (io.ReadCloser, error) {
	switch coding {
	case "gzip":
		return stdgzip.NewReader(r)
	case "br":
		return io.NopCloser(brotli.NewReader(r)), nil
	case "zstd":
		// One goroutine: blocks are decoded as they arrive.
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		return zr.IOReadCloser(), nil
	}
	return nil, fmt.Errorf("unknown coding %q", coding)
}

// serve runs h wrapped by c for a GET with Accept-Encoding ae ("-": no
// such header) and returns the recorder.
func serve(c *Compressor, method, ae string, h http.HandlerFunc) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "/", nil)
	if ae != "-" {
		r.Header.Set("Accept-Encoding", ae)
	}
	w := httptest.NewRecorder()
	c.Wrap(h).ServeHTTP(w, r)
	return w
}

// TestCompresses covers the responses that are compressed, by each
// coding: with a Content-Length known at once, and of unknown length
// written piecemeal (PHP's output) so that they are held back first.
func TestCompresses(t *testing.T) {
	c := mustNew(t, Options{})
	page := testHTML(20 << 10)
	for _, alg := range algorithms {
		for _, sized := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/sized=%v", alg, sized), func(t *testing.T) {
				w := serve(c, "GET", alg, func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "text/html; charset=UTF-8")
					if sized {
						w.Header().Set("Content-Length", fmt.Sprint(len(page)))
						w.Write(page)
						return
					}
					for p := page; len(p) > 0; {
						n := min(len(p), 100)
						if _, err := w.Write(p[:n]); err != nil {
							t.Error(err)
						}
						p = p[n:]
					}
				})
				res := w.Result()
				if got := res.Header.Get("Content-Encoding"); got != alg {
					t.Fatalf("Content-Encoding = %q, want %q", got, alg)
				}
				if cl := res.Header.Get("Content-Length"); cl != "" {
					t.Errorf("Content-Length = %q, want none", cl)
				}
				if v := res.Header.Values("Vary"); !slices.Equal(v, []string{"Accept-Encoding"}) {
					t.Errorf("Vary = %q", v)
				}
				body := w.Body.Bytes()
				if len(body) > len(page)/2 {
					t.Errorf("%d bytes compressed to %d", len(page), len(body))
				}
				if got := decode(t, alg, body); !bytes.Equal(got, page) {
					t.Errorf("decoded %d bytes, want the %d written", len(got), len(page))
				}
			})
		}
	}
}

// TestNotCompressed covers the responses sent as they are, and whether
// they get Vary: Accept-Encoding (when another request could have had
// the response compressed).
func TestNotCompressed(t *testing.T) {
	c := mustNew(t, Options{})
	page := testHTML(4 << 10)
	html := func(status int, extra ...string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			for i := 0; i+1 < len(extra); i += 2 {
				w.Header().Set(extra[i], extra[i+1])
			}
			w.WriteHeader(status)
			w.Write(page)
		}
	}
	tests := []struct {
		name   string
		method string
		ae     string // Accept-Encoding, "-" for none
		range_ bool
		h      http.HandlerFunc
		vary   bool
		body   []byte // nil: page
		length string // the Content-Length sent, "" for none
		ce     string // the Content-Encoding sent
	}{
		{name: "no Accept-Encoding", ae: "-", h: html(200), vary: true},
		{name: "no coding offered", ae: "deflate", h: html(200), vary: true},
		{name: "identity preferred", ae: "gzip;q=0.1, identity", h: html(200), vary: true},
		{name: "all refused", ae: "*;q=0", h: html(200), vary: true},
		{name: "HEAD", method: "HEAD", ae: "gzip", vary: true, body: []byte{}, length: "20000", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("Content-Length", "20000")
		}},
		{name: "Range", ae: "gzip", range_: true, h: html(200), vary: true},
		{name: "206", ae: "gzip", h: html(206, "Content-Range", "bytes 0-4095/9999"), vary: true},
		{name: "204", ae: "gzip", vary: true, body: []byte{}, h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(204)
		}},
		{name: "304", ae: "gzip", vary: true, body: []byte{}, h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(304)
		}},
		{name: "Content-Encoding already", ae: "gzip", ce: "br", h: html(200, "Content-Encoding", "br")},
		{name: "no-transform", ae: "gzip", h: html(200, "Cache-Control", "public, No-Transform")},
		{name: "type not listed", ae: "gzip", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "image/png")
			w.Write(page)
		}},
		{name: "no type", ae: "gzip", h: func(w http.ResponseWriter, r *http.Request) {
			w.Write(page)
		}},
		{name: "Content-Length below MinLength", ae: "gzip", body: page[:1023], length: "1023", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("Content-Length", "1023")
			w.Write(page[:1023])
		}},
		{name: "Content-Length 0", ae: "gzip", body: []byte{}, length: "0", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("Content-Length", "0")
		}},
		// Unknown length, ending under MinLength: held back, then sent
		// with its length. Its headers allowed compression: Vary.
		{name: "short, unknown length", ae: "gzip", vary: true, body: page[:1023], length: "1023", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Write(page[:1000])
			w.Write(page[1000:1023])
		}},
		{name: "nothing written", ae: "gzip", vary: true, body: []byte{}, length: "0", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = "GET"
			}
			r := httptest.NewRequest(method, "/", nil)
			if tt.ae != "-" {
				r.Header.Set("Accept-Encoding", tt.ae)
			}
			if tt.range_ {
				r.Header.Set("Range", "bytes=0-")
			}
			w := httptest.NewRecorder()
			c.Wrap(tt.h).ServeHTTP(w, r)
			res := w.Result()
			if ce := res.Header.Get("Content-Encoding"); ce != tt.ce {
				t.Errorf("Content-Encoding = %q", ce)
			}
			want := tt.body
			if want == nil {
				want = page
			}
			if !bytes.Equal(w.Body.Bytes(), want) {
				t.Errorf("body: %d bytes, want %d as written", w.Body.Len(), len(want))
			}
			if got := res.Header.Get("Vary") == "Accept-Encoding"; got != tt.vary {
				t.Errorf("Vary = %q, want Accept-Encoding: %v", res.Header.Get("Vary"), tt.vary)
			}
			if got := res.Header.Get("Content-Length"); got != tt.length {
				t.Errorf("Content-Length = %q, want %q", got, tt.length)
			}
		})
	}
}
