package compress

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// discardWriter is a ResponseWriter that keeps nothing, so that the
// benchmarks measure the wrapper and the encoders alone.
type discardWriter struct {
	h http.Header
	n int64
}

func (d *discardWriter) Header() http.Header { return d.h }
func (d *discardWriter) WriteHeader(int)     {}
func (d *discardWriter) Flush()              {}
func (d *discardWriter) Write(p []byte) (int, error) {
	d.n += int64(len(p))
	return len(p), nil
}

// page answers as PHP's output arrives: a type, no length, one write.
func page(body []byte, sized bool) http.Handler {
	length := strconv.Itoa(len(body))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = []string{"text/html; charset=UTF-8"}
		if sized {
			w.Header()["Content-Length"] = []string{length}
		}
		w.Write(body)
	})
}

func benchmarkServe(b *testing.B, h http.Handler, acceptEncoding string, size int) {
	r := httptest.NewRequest("GET", "/", nil)
	if acceptEncoding != "" {
		r.Header.Set("Accept-Encoding", acceptEncoding)
	}
	w := &discardWriter{h: make(http.Header)}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		w.n = 0
		h.ServeHTTP(w, r)
	}
	b.ReportMetric(float64(w.n), "sent-bytes")
}

const browserAE = "gzip, deflate, br, zstd"

// A 200-byte response, not compressed (under MinLength): the cost of
// the wrapper where it does nothing but hold back and add Vary.
func BenchmarkWrap_Small200(b *testing.B) {
	body := testHTML(200)
	c := mustNew(b, Options{})
	b.Run("unwrapped", func(b *testing.B) { benchmarkServe(b, page(body, false), browserAE, len(body)) })
	b.Run("unknown-length", func(b *testing.B) { benchmarkServe(b, c.Wrap(page(body, false)), browserAE, len(body)) })
	b.Run("sized", func(b *testing.B) { benchmarkServe(b, c.Wrap(page(body, true)), browserAE, len(body)) })
	b.Run("no-accept-encoding", func(b *testing.B) { benchmarkServe(b, c.Wrap(page(body, false)), "", len(body)) })
}

// A 20 KiB HTML page of unknown length, compressed by each coding.
func BenchmarkWrap_HTML20K(b *testing.B) {
	body := testHTML(20 << 10)
	b.Run("unwrapped", func(b *testing.B) { benchmarkServe(b, page(body, false), browserAE, len(body)) })
	for _, alg := range algorithms {
		c := mustNew(b, Options{Algorithms: []string{alg}})
		b.Run(alg, func(b *testing.B) { benchmarkServe(b, c.Wrap(page(body, false)), browserAE, len(body)) })
	}
}

// BenchmarkNegotiate: a browser's Accept-Encoding.
func BenchmarkNegotiate(b *testing.B) {
	c := mustNew(b, Options{})
	fields := []string{"gzip, deflate, br, zstd"}
	b.ReportAllocs()
	for b.Loop() {
		if negotiate(fields, c.codings) != zstdCoding {
			b.Fatal("not zstd")
		}
	}
}
