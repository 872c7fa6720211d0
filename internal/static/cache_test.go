package static

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func getBody(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

// The small-file cache never serves a changed, replaced or escaped file.
func TestSmallCacheRevalidates(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	os.Mkdir(root, 0o755)
	os.WriteFile(filepath.Join(dir, "secret.txt"), []byte("SECRET"), 0o644)
	p := filepath.Join(root, "a.txt")
	os.WriteFile(p, []byte("first"), 0o644)
	h, err := New(Options{Root: root, IndexFiles: []string{"index.html"}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()

	for i := 0; i < 2; i++ { // the second answer comes from the cache
		if code, body := getBody(t, h, "/a.txt"); code != 200 || body != "first" {
			t.Fatalf("GET %d: %d %q", i, code, body)
		}
	}
	if h.cache.get("a.txt") == nil {
		t.Fatal("a small file was not cached")
	}

	// Same size, new content and mtime.
	os.WriteFile(p, []byte("other"), 0o644)
	os.Chtimes(p, time.Now().Add(time.Hour), time.Now().Add(time.Hour))
	if _, body := getBody(t, h, "/a.txt"); body != "other" {
		t.Fatalf("after a rewrite: %q, want the new content", body)
	}

	// Replaced by a symlink leading out of the root: refused, not cached content.
	os.Remove(p)
	if err := os.Symlink(filepath.Join(dir, "secret.txt"), p); err != nil {
		t.Fatal(err)
	}
	if code, body := getBody(t, h, "/a.txt"); code == 200 || body == "SECRET" || body == "other" {
		t.Fatalf("after the file became an escaping symlink: %d %q", code, body)
	}

	// Removed: 404.
	os.Remove(p)
	if code, _ := getBody(t, h, "/a.txt"); code != 404 {
		t.Fatalf("after removal: %d, want 404", code)
	}
}
