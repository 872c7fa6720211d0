package static

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// TestSymlinks checks which symlinks are followed, through openat2 and
// through the os.Root path kernels before 5.6 take. (tests/integration
// covers the rest of the handler through the real server.)
func TestSymlinks(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "sub"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "secret.txt"), []byte("SECRET"), 0o644))
	must(os.WriteFile(filepath.Join(root, "inside.txt"), []byte("INSIDE"), 0o644))
	for link, target := range map[string]string{
		"in-rel.txt":      "inside.txt",
		"in-abs.txt":      filepath.Join(root, "inside.txt"),
		"in-out-in.txt":   "../root/inside.txt",
		"sub/in-up.txt":   "../inside.txt",
		"out-rel.txt":     "../secret.txt",
		"out-abs.txt":     filepath.Join(dir, "secret.txt"),
		"out-dir":         dir,
		"loop":            "loop",
		"dangling-abs":    filepath.Join(root, "nothing"),
		"sub/out-deep.tx": "../../secret.txt",
	} {
		must(os.Symlink(target, filepath.Join(root, link)))
	}
	want := map[string]int{
		"/in-rel.txt": 200, "/in-abs.txt": 200, "/in-out-in.txt": 200, "/sub/in-up.txt": 200,
		"/out-rel.txt": 404, "/out-abs.txt": 404, "/out-dir/secret.txt": 404, "/sub/out-deep.tx": 404,
		"/loop": 404, "/dangling-abs": 404,
	}
	for _, slow := range []bool{false, true} {
		saved := openat2Missing.Load()
		openat2Missing.Store(slow)
		h, err := New(Options{Root: root, IndexFiles: []string{"index.html"}})
		must(err)
		for p, status := range want {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
			if rec.Code != status {
				t.Errorf("slow path %v: GET %s: status %d, want %d (%q)", slow, p, rec.Code, status, rec.Body)
			}
			if rec.Body.String() == "SECRET" {
				t.Errorf("slow path %v: GET %s: served the file outside the root", slow, p)
			}
		}
		h.Close()
		openat2Missing.Store(saved)
	}
}
