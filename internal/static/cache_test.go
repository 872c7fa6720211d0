package static

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func getBody(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

// settle moves h's cache clock past settleTime, so that files a test has
// just written count as settled and are cached.
func settle(h *Handler) {
	h.cache.now = func() time.Time { return time.Now().Add(time.Hour) }
}

// A file changed less than settleTime ago is served but not cached: a
// same-size rewrite within the same timestamp tick would pass the
// revalidation and the old bytes would be served on.
func TestSmallCacheWaitsForSettledFiles(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "a.txt"), []byte("fresh"), 0o644)
	h, err := New(Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for i := range 2 {
		if code, body := getBody(t, h, "/a.txt"); code != 200 || body != "fresh" {
			t.Fatalf("GET %d: %d %q", i, code, body)
		}
	}
	if h.cache.get("a.txt") != nil {
		t.Fatal("a file changed just now was cached")
	}
	if hits, _ := h.CacheStats(); hits != 0 {
		t.Fatalf("%d answers from the cache for a fresh file", hits)
	}
	h.cache.now = func() time.Time { return time.Now().Add(settleTime) }
	getBody(t, h, "/a.txt")
	if h.cache.get("a.txt") == nil {
		t.Fatalf("a file last changed %v ago was not cached", settleTime)
	}
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
	settle(h)

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

// A root that is a symlink ("current -> releases/N") follows a switch of
// the symlink without a restart.
func TestSymlinkedRootFollowsDeploys(t *testing.T) {
	dir := t.TempDir()
	for _, rel := range []string{"r1", "r2"} {
		os.MkdirAll(filepath.Join(dir, rel), 0o755)
		os.WriteFile(filepath.Join(dir, rel, "v.txt"), []byte(rel), 0o644)
	}
	current := filepath.Join(dir, "current")
	if err := os.Symlink(filepath.Join(dir, "r1"), current); err != nil {
		t.Fatal(err)
	}
	h, err := New(Options{Root: current})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if _, body := getBody(t, h, "/v.txt"); body != "r1" {
		t.Fatalf("before the deploy: %q", body)
	}
	// Deploy: switch the symlink atomically, as deploy tools do.
	tmp := filepath.Join(dir, "current.tmp")
	os.Symlink(filepath.Join(dir, "r2"), tmp)
	if err := os.Rename(tmp, current); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, body := getBody(t, h, "/v.txt")
		if body == "r2" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after switching the symlink: still %q", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A cached file reached through a symlink is served from the cache only
// while it still resolves to the same place: renaming a directory on the
// way changes no file, so the cache must notice the new name itself.
func TestSmallCacheRechecksSymlinkTargets(t *testing.T) {
	root := t.TempDir()
	os.Mkdir(filepath.Join(root, "d"), 0o755)
	os.WriteFile(filepath.Join(root, "d", "a.css"), []byte("A-CSS"), 0o644)
	os.Symlink("d", filepath.Join(root, "dl"))
	os.Symlink("dl/a.css", filepath.Join(root, "style.css"))
	h, err := New(Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	settle(h)
	for i := range 2 {
		if code, body := getBody(t, h, "/style.css"); code != 200 || body != "A-CSS" {
			t.Fatalf("GET %d: %d %q", i, code, body)
		}
	}
	if h.cache.get("style.css") == nil {
		t.Fatal("a small file reached through a symlink was not cached")
	}
	// The same, unchanged file, now at a name never served.
	if err := os.Rename(filepath.Join(root, "d"), filepath.Join(root, ".d")); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(root, "dl"))
	os.Symlink(".d", filepath.Join(root, "dl"))
	if code, body := getBody(t, h, "/style.css"); code != 404 {
		t.Fatalf("after the target's directory became a dot-directory: %d %q, want 404", code, body)
	}
}

// CacheStats counts the answers from the cache and the lookups it missed.
func TestCacheStats(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "a.txt")
	os.WriteFile(p, []byte("first"), 0o644)
	h, err := New(Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	settle(h)
	for range 3 {
		if code, _ := getBody(t, h, "/a.txt"); code != 200 {
			t.Fatalf("GET /a.txt: %d", code)
		}
	}
	if hits, misses := h.CacheStats(); hits != 2 || misses != 1 {
		t.Errorf("after 3 GETs: hits %d, misses %d; want 2 and 1", hits, misses)
	}
	os.WriteFile(p, []byte("second, longer"), 0o644) // changed: a miss
	getBody(t, h, "/a.txt")
	if hits, misses := h.WithFallback().CacheStats(); hits != 2 || misses != 2 {
		t.Errorf("after a change: hits %d, misses %d; want 2 and 2", hits, misses)
	}
}

// Only local file systems are cached: on NFS, SMB and FUSE a stat may
// answer from an attribute cache while the file changed on the server.
func TestLocalFSType(t *testing.T) {
	for _, c := range []struct {
		name  string
		magic int64
		local bool
	}{
		{"ext4", unix.EXT4_SUPER_MAGIC, true},
		{"xfs", unix.XFS_SUPER_MAGIC, true},
		{"tmpfs", unix.TMPFS_MAGIC, true},
		{"overlay", unix.OVERLAYFS_SUPER_MAGIC, true},
		{"nfs", unix.NFS_SUPER_MAGIC, false},
		{"cifs", unix.CIFS_SUPER_MAGIC, false},
		{"smb2", unix.SMB2_SUPER_MAGIC, false},
		{"fuse", unix.FUSE_SUPER_MAGIC, false},
		{"unknown", 0x12345678, false},
	} {
		if got := localFSType(c.magic); got != c.local {
			t.Errorf("%s: local %v, want %v", c.name, got, c.local)
		}
	}
	// This machine's temporary directory is one of the local ones, or
	// the cache tests above would not see a hit.
	var fs unix.Statfs_t
	if err := unix.Statfs(t.TempDir(), &fs); err != nil || !localFSType(int64(fs.Type)) {
		t.Errorf("the test directory's file system (type %#x, %v) does not count as local", fs.Type, err)
	}
}

// The bound counts each entry, not only its bytes: names of empty files
// cannot grow the cache without limit.
func TestSmallCacheBoundsEntries(t *testing.T) {
	c := newSmallCache()
	n := cacheMaxBytes/entryOverhead + 100
	for i := range n {
		c.put(fmt.Sprintf("empty-%d.txt", i), &cachedFile{})
	}
	if len(c.m) >= n || c.bytes > cacheMaxBytes {
		t.Errorf("%d empty files: %d entries, %d bytes counted; want fewer than %d and at most %d",
			n, len(c.m), c.bytes, n, cacheMaxBytes)
	}
}

// HEAD answers with GET's headers, from the cache or not: a type sniffed
// from the bytes when the name has none, the same Vary.
func TestHeadHasGetsHeaders(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "README"), []byte("plain words\n"), 0o644)
	os.WriteFile(filepath.Join(root, "blob"), []byte("\x00\x01\x02binary"), 0o644)
	h, err := New(Options{Root: root, Precompressed: true})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	heads := func(method, path string) http.Header {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		if rec.Code != 200 {
			t.Fatalf("%s %s: %d", method, path, rec.Code)
		}
		return rec.Result().Header
	}
	for _, p := range []string{"/README", "/blob"} {
		want := heads("GET", p) // not cached: the file is fresh
		for _, when := range []string{"fresh", "cached"} {
			if when == "cached" {
				settle(h)
				heads("GET", p)
				if h.cache.get(p[1:]) == nil {
					t.Fatalf("%s was not cached", p)
				}
			}
			for _, m := range []string{"HEAD", "GET"} {
				got := heads(m, p)
				for _, k := range []string{"Content-Type", "Content-Length", "Vary", "Etag", "Last-Modified"} {
					if got.Get(k) != want.Get(k) {
						t.Errorf("%s %s (%s): %s %q, want GET's %q", m, p, when, k, got.Get(k), want.Get(k))
					}
				}
			}
		}
	}
}

// A device found not to be local is remembered: its files are served,
// never cached, without asking the file system again.
func TestSmallCacheSkipsRemoteDevices(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "a.txt")
	os.WriteFile(p, []byte("remote"), 0o644)
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	h, err := New(Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	settle(h)
	h.cache.remote.Store(st.Dev, struct{}{}) // as if fstatfs had said NFS
	for i := range 2 {
		if code, body := getBody(t, h, "/a.txt"); code != 200 || body != "remote" {
			t.Fatalf("GET %d: %d %q", i, code, body)
		}
	}
	if h.cache.get("a.txt") != nil {
		t.Error("a file on a device known not to be local was cached")
	}
}
