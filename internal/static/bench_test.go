package static

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// discardWriter is a ResponseWriter that keeps nothing, so that the
// benchmarks measure the handler.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkSmallFile measures the small-file paths: a cache hit
// (serveCached) and a miss (open, read: serveSmall), for a file named
// by the path itself and for one reached through a symlink.
func BenchmarkSmallFile(b *testing.B) {
	root := b.TempDir()
	if err := os.WriteFile(filepath.Join(root, "style.css"), make([]byte, 4096), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.Symlink("style.css", filepath.Join(root, "link.css")); err != nil {
		b.Fatal(err)
	}
	h, err := New(Options{Root: root})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	settle(h)
	for _, c := range []struct {
		name, path string
		cached     bool
	}{
		{"cached", "/style.css", true},
		{"cached-symlink", "/link.css", true},
		{"miss", "/style.css", false},
		{"miss-symlink", "/link.css", false},
	} {
		b.Run(c.name, func(b *testing.B) {
			r := httptest.NewRequest("GET", c.path, nil)
			w := &discardWriter{h: http.Header{}}
			for b.Loop() {
				if !c.cached {
					clear(h.cache.m)
				}
				clear(w.h)
				h.ServeHTTP(w, r)
			}
			if w.h.Get("Etag") == "" {
				b.Fatalf("GET %s: not served", c.path)
			}
		})
	}
}
