package integration

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

const secret = "TOP-SECRET-OUTSIDE-ROOT"

// secureSite has secret.txt OUTSIDE the root (in its parent), and inside
// the root files and symlinks that must or must not be served.
func secureSite() map[string]string {
	return map[string]string{
		"secret.txt":                          secret,
		"outside/other.txt":                   secret + "-DIR",
		"root/index.html":                     "<!doctype html>INDEX",
		"root/static/a.css":                   "A-CSS",
		"root/inside.txt":                     "INSIDE-TARGET",
		"root/sub/inside2.txt":                "INSIDE-TARGET-2",
		"root/link-out-rel.txt":               "symlink:../secret.txt",
		"root/link-out-abs.txt":               "symlink:{{dir}}/secret.txt",
		"root/static/link-out-deep.txt":       "symlink:../../secret.txt",
		"root/linkdir-out":                    "symlink:../outside",
		"root/link-in.txt":                    "symlink:inside.txt",
		"root/sub/link-in-up.txt":             "symlink:../inside.txt",
		"root/link-in-sub.txt":                "symlink:sub/inside2.txt",
		"root/linkdir-in":                     "symlink:sub",
		"root/link-in-abs.txt":                "symlink:{{root}}/inside.txt",
		"root/linkdir-in-abs":                 "symlink:{{root}}/sub",
		"root/loop":                           "symlink:loop",
		"root/loop-abs":                       "symlink:{{root}}/loop-abs",
		"root/dangling-abs":                   "symlink:{{root}}/no-such-file",
		"root/fifo":                           "fifo:",
		"outside-fifo":                        "fifo:",
		"root/link-fifo-out":                  "symlink:{{dir}}/outside-fifo",
		"root/link-in-out-in.txt":             "symlink:../root/inside.txt",
		"root/.env":                           "DB_PASSWORD=" + secret,
		"root/.git/config":                    "[core] " + secret,
		"root/.htaccess":                      "Deny from all " + secret,
		"root/sub/.secret":                    secret,
		"root/.hidden/file.txt":               secret,
		"root/.well-known/acme-challenge/tok": "ACME-TOKEN-CONTENT",
		"root/x.php":                          "<?php echo '" + secret + "';",
		"root/X.PHP":                          "<?php echo '" + secret + "';",
		"root/a.phtml":                        "<?php echo '" + secret + "';",
		"root/a.phar":                         "<?php __HALT_COMPILER(); " + secret,
		"root/static/lib.inc":                 "<?php " + secret,
		"root/static/page.php5":               "<?php " + secret,
		"root/phpdir/index.php":               "<?php echo '" + secret + "';",
		"root/phpfirst/index.php":             "<?php echo '" + secret + "';",
		"root/phpfirst/index.html":            "PHPFIRST-HTML",
	}
}

const secureConfig = `
[backend]
default_backend = "static"

[backend.static_files]
root = "root"
index_files = ["index.php", "index.html"]

[[backend.routing_rules]]
pattern = { type = "prefix", value = "/" }
backend = "static"
priority = 1
`

// notServed asserts a response is not a 200 and does not leak secret.
func notServed(t *testing.T, what string, status int, body []byte) {
	t.Helper()
	if status == 200 || status == 206 || status == 304 {
		t.Errorf("%s: status %d, want it refused", what, status)
	}
	if bytes.Contains(body, []byte(secret)) {
		t.Errorf("%s: the secret leaked: %q", what, trunc(body))
	}
}

func TestForbiddenPaths(t *testing.T) {
	t.Parallel()
	s := startServer(t, secureConfig, secureSite())

	// Each target is written verbatim on the wire.
	targets := []string{
		// ".." plain, encoded, double-encoded, mixed case.
		"/../secret.txt",
		"/../../secret.txt",
		"/%2e%2e/secret.txt",
		"/%2E%2E/secret.txt",
		"/.%2e/secret.txt",
		"/%2e./secret.txt",
		"/%252e%252e/secret.txt",
		"/static/../../secret.txt",
		"/static/%2e%2e/%2e%2e/secret.txt",
		"/static/%252e%252e/%252e%252e/secret.txt",
		// Encoded slashes.
		"/static/..%2f..%2fsecret.txt",
		"/static/..%2F..%2Fsecret.txt",
		"/static/%2e%2e%2f%2e%2e%2fsecret.txt",
		"/static/..%252f..%252fsecret.txt",
		"/%2f..%2f..%2fsecret.txt",
		"//../secret.txt",
		// Backslashes, raw and encoded.
		"/..%5csecret.txt",
		"/..%5Csecret.txt",
		"/..%255csecret.txt",
		`/..\secret.txt`,
		`/static\..\..\secret.txt`,
		"/static%5c..%5c..%5csecret.txt",
		"/static%5C%2e%2e%5C%2e%2e%5Csecret.txt",
		// NUL bytes.
		"/index.html%00.png",
		"/secret.txt%00.png",
		"/index.html%2500.png",
		"/../secret.txt%00",
		// Not an absolute path at all.
		"../secret.txt",
		"secret.txt",
		// Absolute-form targets.
		"http://test/../secret.txt",
		"http://test/%2e%2e/secret.txt",
		// Symlinks out of the root, through a file or a directory.
		"/link-out-rel.txt",
		"/link-out-abs.txt",
		"/static/link-out-deep.txt",
		"/linkdir-out/other.txt",
		"/linkdir-out/../secret.txt",
		"/%6cink-out-rel.txt",
	}
	for _, target := range targets {
		t.Run(strings.ReplaceAll(target, "/", "|"), func(t *testing.T) {
			t.Parallel()
			for _, method := range []string{"GET", "HEAD"} {
				out := rawExchange(t, s.Addr, method+" "+target+" HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
				status := statusOf(t, out)
				notServed(t, method+" "+target, status, out)
			}
		})
	}
	// A raw NUL byte and a raw backslash-escaped path on the wire.
	for _, target := range []string{"/index.html\x00.png", "/secret.txt\x00"} {
		out := rawExchange(t, s.Addr, "GET "+target+" HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
		notServed(t, "GET "+strings.ReplaceAll(target, "\x00", `\0`), statusOf(t, out), out)
	}

	t.Run("NeverServed", func(t *testing.T) {
		t.Parallel()
		for _, p := range []string{
			"/.env", "/.git/config", "/.git/", "/.git", "/.htaccess", "/sub/.secret", "/.hidden/file.txt",
			"/%2eenv", "/%2egit/config", "/sub/%2esecret", "/.well-known/../.env", "/static/../.git/config",
			"/x.php", "/X.PHP", "/x.PhP", "/a.phtml", "/a.phar", "/static/lib.inc", "/static/page.php5",
			"/x%2ephp", "/x.ph%70", "/phpdir/", "/phpdir/index.php", "/phpdir",
		} {
			resp, body := rawGet(t, s.Addr, p)
			notServed(t, "GET "+p, resp.StatusCode, body)
			if bytes.Contains(body, []byte("<?php")) {
				t.Errorf("GET %s: PHP source in the body: %q", p, body)
			}
		}
	})

	t.Run("NotFiles", func(t *testing.T) {
		t.Parallel()
		// Loops, dangling links and pipes: a plain 404, never a hang or a 500.
		for _, p := range []string{"/loop", "/loop-abs", "/dangling-abs", "/fifo", "/link-fifo-out"} {
			resp, body := rawGet(t, s.Addr, p)
			wantStatus(t, resp, body, 404)
		}
	})

	t.Run("Served", func(t *testing.T) {
		t.Parallel()
		for _, c := range []struct{ path, body string }{
			{"/.well-known/acme-challenge/tok", "ACME-TOKEN-CONTENT"},
			{"/link-in.txt", "INSIDE-TARGET"},
			{"/sub/link-in-up.txt", "INSIDE-TARGET"},
			{"/link-in-sub.txt", "INSIDE-TARGET-2"},
			{"/linkdir-in/inside2.txt", "INSIDE-TARGET-2"},
			{"/link-in-abs.txt", "INSIDE-TARGET"},
			{"/linkdir-in-abs/inside2.txt", "INSIDE-TARGET-2"},
			{"/link-in-out-in.txt", "INSIDE-TARGET"}, // leaves the root, comes back in
			{"/static/a.css", "A-CSS"},
			{"/static/../static/a.css", "A-CSS"},
			{"/static/./a.css", "A-CSS"},
			{"//static//a.css", "A-CSS"},
			// An index_files entry naming PHP never serves its source:
			// the next index file is used.
			{"/phpfirst/", "PHPFIRST-HTML"},
		} {
			resp, body := rawGet(t, s.Addr, c.path)
			wantStatus(t, resp, body, 200)
			if string(body) != c.body {
				t.Errorf("GET %s: body %q, want %q", c.path, body, c.body)
			}
		}
	})
}

// statusOf parses the status code of a raw response, 0 if there is none
// (the server closed without answering, which is fine for a refusal).
func statusOf(t *testing.T, out []byte) int {
	t.Helper()
	if len(out) == 0 {
		return 0
	}
	line, _, _ := bytes.Cut(out, []byte("\r\n"))
	f := strings.Fields(string(line))
	if len(f) < 2 || !strings.HasPrefix(f[0], "HTTP/1.") {
		t.Errorf("not an HTTP response: %q", trunc(out))
		return 0
	}
	n := 0
	for _, c := range f[1] {
		n = n*10 + int(c-'0')
	}
	return n
}

// TestSymlinksOutsideRootAllowed: allow_symlinks_outside_root = true
// serves a symlink pointing outside, and still not ".." escapes.
func TestSymlinksOutsideRootAllowed(t *testing.T) {
	t.Parallel()
	s := startServer(t, strings.Replace(secureConfig, `root = "root"`, "root = \"root\"\nallow_symlinks_outside_root = true", 1), secureSite())
	for _, p := range []string{"/link-out-rel.txt", "/link-out-abs.txt", "/static/link-out-deep.txt"} {
		resp, body := rawGet(t, s.Addr, p)
		wantStatus(t, resp, body, 200)
		if string(body) != secret {
			t.Errorf("GET %s: body %q, want the symlink's target", p, body)
		}
	}
	resp, body := rawGet(t, s.Addr, "/linkdir-out/other.txt")
	wantStatus(t, resp, body, 200)
	for _, p := range []string{"/../secret.txt", "/%2e%2e/secret.txt", "/static/..%2f..%2fsecret.txt", `/..\secret.txt`, "/.env", "/x.php"} {
		resp, body := rawGet(t, s.Addr, p)
		notServed(t, "GET "+p, resp.StatusCode, body)
	}
}

// TestSecuritySymlinkTargets: a symlink is only followed to a file the
// server would send under its own name: links to PHP sources, backups
// and dotfiles give 404, whatever the link is called, and with
// allow_symlinks_outside_root too; an ordinary link still works.
func TestSecuritySymlinkTargets(t *testing.T) {
	t.Parallel()
	files := map[string]string{
		"outside/secret.php":    "<?php echo '" + secret + "';",
		"outside/pub/app.js":    "OUTSIDE-APP-JS",
		"root/config.php":       "<?php echo '" + secret + "';",
		"root/config.php.bak":   "<?php echo '" + secret + "';",
		"root/.env":             "DB_PASSWORD=" + secret,
		"root/.git/config":      "[core] " + secret,
		"root/style.v2.css":     "STYLE-V2",
		"root/safe.txt":         "symlink:config.php",
		"root/x.css":            "symlink:.env",
		"root/y.js":             "symlink:../outside/secret.php",
		"root/z.txt":            "symlink:config.php.bak",
		"root/abs.txt":          "symlink:{{root}}/config.php",
		"root/dir-link":         "symlink:.git",
		"root/sub/up.css":       "symlink:../.env",
		"root/style.css":        "symlink:style.v2.css",
		"root/pub":              "symlink:../outside/pub",
		"root/assets/app.js":    "APP-JS",
		"root/assets/app.js.gz": "symlink:../.env",
	}
	for _, outside := range []bool{false, true} {
		cfg := strings.Replace(secureConfig, `index_files = ["index.php", "index.html"]`, `index_files = ["index.html"]`+"\nprecompressed = true", 1)
		if outside {
			cfg = strings.Replace(cfg, `root = "root"`, "root = \"root\"\nallow_symlinks_outside_root = true", 1)
		}
		s := startServer(t, cfg, files)
		for _, p := range []string{
			"/safe.txt", "/x.css", "/y.js", "/z.txt", "/abs.txt", "/dir-link/config", "/sub/up.css",
			"/%73afe.txt", "/SAFE.TXT", "/safe.txt.", "/dir-link/%63onfig", "/dir%2dlink/config",
		} {
			for i := range 2 { // the second time, a cached answer would show
				resp, body := rawGet(t, s.Addr, p)
				what := fmt.Sprintf("outside %v: GET %s (%d)", outside, p, i)
				if resp.StatusCode != 404 {
					t.Errorf("%s: status %d, want 404", what, resp.StatusCode)
				}
				notServed(t, what, resp.StatusCode, body)
			}
		}
		for p, want := range map[string]string{"/style.css": "STYLE-V2", "/assets/app.js": "APP-JS"} {
			for i := range 2 {
				resp, body := rawGet(t, s.Addr, p, "Accept-Encoding: gzip")
				wantStatus(t, resp, body, 200)
				if string(body) != want {
					t.Errorf("outside %v: GET %s (%d): %q, want %q", outside, p, i, body, want)
				}
			}
		}
		resp, body := rawGet(t, s.Addr, "/pub/app.js")
		if outside {
			wantStatus(t, resp, body, 200)
		} else {
			wantStatus(t, resp, body, 404)
		}
	}
}

// TestSecurityDebianWordPressLinks: Debian's WordPress layout, a static
// root of links into /var/lib/wordpress and /usr/share/wordpress whose
// themes are links again, serves its assets with
// allow_symlinks_outside_root, and not what a link there reaches that
// the server never sends.
func TestSecurityDebianWordPressLinks(t *testing.T) {
	t.Parallel()
	s := startServer(t, `
[backend]
default_backend = "static"

[backend.static_files]
root = "webroot"
allow_symlinks_outside_root = true

[[backend.routing_rules]]
pattern = { type = "prefix", value = "/" }
backend = "static"
priority = 1
`, map[string]string{
		"share/wp-includes/js/jquery.js":            "JQUERY",
		"share/wp-content/themes/tt3/style.css":     "TT3-STYLE",
		"share/wp-content/themes/tt3/functions.php": "<?php " + secret,
		"share/wp-config.php":                       "<?php " + secret,
		"lib/wp-content/uploads/2026/11/a.jpg":      "JPEG",
		"lib/wp-content/uploads/x.php.bak":          "<?php " + secret,
		"lib/wp-content/uploads/.htaccess":          secret,
		"lib/wp-content/uploads/cfg.jpg":            "symlink:{{dir}}/share/wp-config.php",
		"lib/wp-content/uploads/dot.css":            "symlink:.htaccess",
		"lib/wp-content/themes/tt3":                 "symlink:{{dir}}/share/wp-content/themes/tt3",
		"webroot/wp-content":                        "symlink:{{dir}}/lib/wp-content",
		"webroot/wp-includes":                       "symlink:{{dir}}/share/wp-includes",
	})
	for p, want := range map[string]string{
		"/wp-includes/js/jquery.js":         "JQUERY",
		"/wp-content/themes/tt3/style.css":  "TT3-STYLE",
		"/wp-content/uploads/2026/11/a.jpg": "JPEG",
	} {
		for i := range 2 {
			resp, body := rawGet(t, s.Addr, p)
			wantStatus(t, resp, body, 200)
			if string(body) != want {
				t.Errorf("GET %s (%d): %q, want %q", p, i, body, want)
			}
		}
	}
	for _, p := range []string{
		"/wp-content/themes/tt3/functions.php", "/wp-content/uploads/x.php.bak", "/wp-content/uploads/.htaccess",
		"/wp-content/uploads/cfg.jpg", "/wp-content/uploads/dot.css", "/wp-content/uploads/x.php%2Ebak",
	} {
		resp, body := rawGet(t, s.Addr, p)
		if resp.StatusCode != 404 {
			t.Errorf("GET %s: status %d, want 404", p, resp.StatusCode)
		}
		notServed(t, "GET "+p, resp.StatusCode, body)
	}
}
