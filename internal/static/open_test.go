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

// TestSymlinkTargets: what a symlink leads to passes the checks the
// request path passes (dot segments, PHP source, backup names), whatever
// the link itself is called; ordinary links keep working, cached or not.
func TestSymlinkTargets(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	files := map[string]string{
		"root/config.php":         "<?php SOURCE",
		"root/config.php.bak":     "<?php BACKUP",
		"root/.env":               "DOTENV",
		"root/.git/config":        "GITCONFIG",
		"root/.hidden/page.html":  "HIDDEN",
		"root/style.v2.css":       "STYLE-V2",
		"root/sub/index.html":     "SUB-INDEX",
		"root/ix/keep.txt":        "",
		"outside/secret.php":      "<?php OUTSIDE-SOURCE",
		"outside/.ssh/id_rsa":     "OUTSIDE-KEY",
		"outside/pub/app.js":      "OUTSIDE-APP",
		"outside/pub/.env":        "OUTSIDE-DOTENV",
		"root/js/app.js":          "APP-JS",
		"root/fine/readme.txt":    "README",
		"root/fine/php/notes.txt": "NOTES",
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"safe.txt":       "config.php",
		"bak.txt":        "config.php.bak",
		"x.css":          ".env",
		"dir-link":       ".git",
		"hidden-link":    ".hidden",
		"y.js":           "../outside/secret.php",
		"key.txt":        "../outside/.ssh/id_rsa",
		"pub":            "../outside/pub",
		"abs.txt":        filepath.Join(root, "config.php"), // absolute, inside: the EXDEV path
		"sub/up.css":     "../.env",
		"chain.css":      "safe.txt", // a link to a link to config.php
		"style.css":      "style.v2.css",
		"abs-style.css":  filepath.Join(root, "style.v2.css"),
		"fine-link":      "fine",
		"ix/index.html":  "../config.php", // an index file
		"js/app.js.gz":   "../.env",       // a precompressed sibling
		"sub-link":       "sub",
		"outside-js":     "../outside/pub/app.js",
		"outside-js-abs": filepath.Join(dir, "outside/pub/app.js"),
		"phpdir-notes":   "fine/php/notes.txt",
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	// The body with AllowSymlinksOutsideRoot off and on: "" for a 404,
	// "403" for a 403.
	cases := []struct {
		path     string
		off, on  string
		encoding string
	}{
		{"/safe.txt", "", "", ""},
		{"/bak.txt", "", "", ""},
		{"/x.css", "", "", ""},
		{"/dir-link/config", "", "", ""},
		{"/hidden-link/page.html", "", "", ""},
		{"/y.js", "", "", ""},
		{"/key.txt", "", "", ""},
		{"/pub/.env", "", "", ""}, // the request path already says no
		{"/abs.txt", "", "", ""},
		{"/sub/up.css", "", "", ""},
		{"/chain.css", "", "", ""},
		{"/ix/", "403", "403", ""}, // as a directory without an index file
		{"/style.css", "STYLE-V2", "STYLE-V2", ""},
		{"/abs-style.css", "STYLE-V2", "STYLE-V2", ""},
		{"/fine-link/readme.txt", "README", "README", ""},
		{"/sub-link/", "SUB-INDEX", "SUB-INDEX", ""},
		{"/phpdir-notes", "NOTES", "NOTES", ""},
		{"/js/app.js", "APP-JS", "APP-JS", "gzip"}, // the sibling is refused, the identity file sent
		{"/pub/app.js", "", "OUTSIDE-APP", ""},
		{"/outside-js", "", "OUTSIDE-APP", ""},
		{"/outside-js-abs", "", "OUTSIDE-APP", ""},
	}
	for _, slow := range []bool{false, true} {
		for _, outside := range []bool{false, true} {
			saved := openat2Missing.Load()
			openat2Missing.Store(slow)
			h, err := New(Options{Root: root, IndexFiles: []string{"index.html"}, AllowSymlinksOutsideRoot: outside, Precompressed: true})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range cases {
				want := c.off
				if outside {
					want = c.on
				}
				code := 200
				switch want {
				case "":
					code, want = 404, "404 not found\n"
				case "403":
					code, want = 403, "403 forbidden\n"
				}
				for i := range 2 { // the second time from the cache, if cached
					r := httptest.NewRequest(http.MethodGet, c.path, nil)
					if c.encoding != "" {
						r.Header.Set("Accept-Encoding", c.encoding)
					}
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, r)
					if rec.Code != code || rec.Body.String() != want {
						t.Errorf("slow %v, outside %v, GET %s (%d): %d %q, want %q", slow, outside, c.path, i, rec.Code, rec.Body, want)
					}
				}
			}
			h.Close()
			openat2Missing.Store(saved)
		}
	}
}

// TestSymlinkTargetsDebianWordPress: Debian's WordPress layout, a static
// root whose wp-content is a symlink to a directory outside, where themes
// are symlinks to a third tree, keeps working with
// AllowSymlinksOutsideRoot; what it must not send stays refused.
func TestSymlinkTargetsDebianWordPress(t *testing.T) {
	dir := t.TempDir()
	share := filepath.Join(dir, "usr/share/wordpress")
	lib := filepath.Join(dir, "var/lib/wordpress")
	webroot := filepath.Join(dir, "srv/wordpress-static")
	for name, content := range map[string]string{
		share + "/wp-includes/js/jquery.js":                  "JQUERY",
		share + "/wp-content/themes/tt3/style.css":           "TT3-STYLE",
		share + "/wp-content/themes/tt3/functions.php":       "<?php THEME",
		share + "/wp-config.php":                             "<?php CONFIG",
		lib + "/wp-content/uploads/2026/11/a.jpg":            "JPEG",
		lib + "/wp-content/uploads/shell.php.bak":            "<?php SHELL",
		lib + "/wp-content/uploads/.htaccess":                "HTACCESS",
		lib + "/wp-content/plugins/akismet.real/akismet.css": "AKISMET-CSS",
	} {
		os.MkdirAll(filepath.Dir(name), 0o755)
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(webroot, 0o755)
	os.MkdirAll(lib+"/wp-content/themes", 0o755)
	for link, target := range map[string]string{
		webroot + "/wp-content":                     lib + "/wp-content",
		webroot + "/wp-includes":                    share + "/wp-includes",
		lib + "/wp-content/themes/tt3":              share + "/wp-content/themes/tt3",
		lib + "/wp-content/plugins/akismet":         "akismet.real",
		lib + "/wp-content/uploads/2026/11/cfg.jpg": share + "/wp-config.php",
		lib + "/wp-content/uploads/dot.css":         ".htaccess",
	} {
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	h, err := New(Options{Root: webroot, AllowSymlinksOutsideRoot: true})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for p, want := range map[string]string{
		"/wp-includes/js/jquery.js":               "JQUERY",
		"/wp-content/themes/tt3/style.css":        "TT3-STYLE",
		"/wp-content/uploads/2026/11/a.jpg":       "JPEG",
		"/wp-content/plugins/akismet/akismet.css": "AKISMET-CSS",
		"/wp-content/themes/tt3/functions.php":    "",
		"/wp-content/uploads/shell.php.bak":       "",
		"/wp-content/uploads/2026/11/cfg.jpg":     "",
		"/wp-content/uploads/dot.css":             "",
	} {
		for i := range 2 {
			code, body := getBody(t, h, p)
			if want == "" && code != http.StatusNotFound || want != "" && (code != 200 || body != want) {
				t.Errorf("GET %s (%d): %d %q, want %q", p, i, code, body, want)
			}
		}
	}
}
