package phpreq

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// helloRunner answers as embedded PHP does for hello.php: a head with
// PHP's default Content-type, then 13 bytes.
type helloRunner struct{}

var helloHead = []byte("Content-type: text/html; charset=UTF-8\n")
var helloBody = []byte("Hello, World!")

func (helloRunner) Run(req *Request, out *Output) error {
	if err := out.Head(200, helloHead); err != nil {
		return err
	}
	_, err := out.Write(helloBody)
	return err
}

// discardWriter is a ResponseWriter that keeps nothing.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

// BenchmarkPipelineHello is the pipeline's own cost for hello.php:
// resolve, environment, output buffering and delivery, without PHP.
func BenchmarkPipelineHello(b *testing.B) {
	root := site(b, "hello.php")
	rs := newResolver(b, root, "/index.php")
	h := &Handler{Resolver: rs, Static: http.NotFoundHandler(), Runner: helloRunner{},
		Bodies: &BodyBuffers{MemLimit: 64 << 10}, Output: &OutputLimits{MemLimit: 256 << 10},
		Log: slog.New(slog.DiscardHandler), Backend: "bench"}
	r := httptest.NewRequest("GET", "/hello.php", nil)
	r.Header.Set("User-Agent", "wrk")
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, r)
	}
	_ = io.Discard
}
