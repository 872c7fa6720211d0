package integration

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// staticOnly routes every path to the static backend through a rule, so
// that the SPA fallback of a static default backend stays out of the way.
const staticOnly = `
[backend]
default_backend = "static"

[backend.static_files]
root = "root"
index_files = ["index.html", "index.htm"]
cache_control = "public, max-age=60"

[[backend.routing_rules]]
pattern = { type = "prefix", value = "/" }
backend = "static"
priority = 1
`

var (
	pngBytes  = "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
	wasmBytes = "\x00asm\x01\x00\x00\x00"
	appJS     = "console.log('identity app.js');\n"
	appJSBr   = "\x1b\x20\x00BROTLI-BYTES-OF-APP-JS"
	appJSGz   = "\x1f\x8b\x08\x00GZIP-BYTES-OF-APP-JS"
	onlyGzCSS = "body{color:red}\n"
	onlyGzGz  = "\x1f\x8b\x08\x00GZIP-BYTES-OF-ONLY-CSS"
)

// randomBytes returns n reproducible pseudo-random bytes.
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

func staticSite(big []byte) map[string]string {
	return map[string]string{
		"root/index.html":        "<!doctype html><title>home</title>HOME-INDEX",
		"root/style.css":         "h1{font-weight:bold}\n",
		"root/app.js":            appJS,
		"root/app.js.br":         appJSBr,
		"root/app.js.gz":         appJSGz,
		"root/only.css":          onlyGzCSS,
		"root/only.css.gz":       onlyGzGz,
		"root/img.png":           pngBytes,
		"root/icon.svg":          `<svg xmlns="http://www.w3.org/2000/svg"/>`,
		"root/data.json":         `{"ok":true}`,
		"root/mod.wasm":          wasmBytes,
		"root/range.txt":         "0123456789abcdefghijklmnopqrstuvwxyz",
		"root/big.bin":           string(big),
		"root/sub/index.html":    "SUB-INDEX (no markup: the type must come from the name)",
		"root/sub/deeper/":       "",
		"root/sub/index.html.gz": "\x1f\x8b\x08\x00GZIP-OF-SUB-INDEX",
		"root/htm/index.htm":     "HTM-INDEX",
		"root/both/index.html":   "BOTH-HTML",
		"root/both/index.htm":    "BOTH-HTM",
		"root/empty/file.txt":    "LISTED-FILE-NAME-MUST-NOT-APPEAR",
		"root/sp ace/index.html": "SPACE-INDEX",
		"root/q?mark/index.html": "QMARK-INDEX",
	}
}

func TestStatic(t *testing.T) {
	t.Parallel()
	big := randomBytes(5<<20, 1)
	s := startServer(t, staticOnly, staticSite(big))

	t.Run("ContentType", func(t *testing.T) {
		t.Parallel()
		for _, c := range []struct {
			path string
			want []string // acceptable media types (system mime.types may differ)
			body string
		}{
			{"/index.html", []string{"text/html"}, "<!doctype html><title>home</title>HOME-INDEX"},
			{"/style.css", []string{"text/css"}, "h1{font-weight:bold}\n"},
			{"/app.js", []string{"text/javascript", "application/javascript"}, appJS},
			{"/img.png", []string{"image/png"}, pngBytes},
			{"/icon.svg", []string{"image/svg+xml"}, `<svg xmlns="http://www.w3.org/2000/svg"/>`},
			{"/data.json", []string{"application/json"}, `{"ok":true}`},
			{"/mod.wasm", []string{"application/wasm"}, wasmBytes},
		} {
			resp, body := get(t, s, c.path)
			wantStatus(t, resp, body, 200)
			mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
			if err != nil || !contains(c.want, mt) {
				t.Errorf("GET %s: Content-Type %q, want one of %q", c.path, resp.Header.Get("Content-Type"), c.want)
			}
			if string(body) != c.body {
				t.Errorf("GET %s: body %q, want %q", c.path, body, c.body)
			}
		}
	})

	t.Run("Validators", func(t *testing.T) {
		t.Parallel()
		for _, p := range []string{"/style.css", "/big.bin"} {
			resp, body := get(t, s, p)
			wantStatus(t, resp, body, 200)
			etag, lastMod := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
			if etag == "" || lastMod == "" {
				t.Fatalf("GET %s: ETag %q, Last-Modified %q: want both", p, etag, lastMod)
			}
			if _, err := http.ParseTime(lastMod); err != nil {
				t.Errorf("GET %s: Last-Modified %q: %v", p, lastMod, err)
			}

			resp, body = get(t, s, p, "If-None-Match: "+etag)
			wantStatus(t, resp, body, 304)
			if len(body) != 0 {
				t.Errorf("GET %s If-None-Match: 304 with a body %q", p, trunc(body))
			}
			resp, body = get(t, s, p, "If-None-Match: W/"+etag)
			wantStatus(t, resp, body, 304)
			resp, body = get(t, s, p, `If-None-Match: "something-else"`)
			wantStatus(t, resp, body, 200)

			resp, body = get(t, s, p, "If-Modified-Since: "+lastMod)
			wantStatus(t, resp, body, 304)
			old := time.Unix(0, 0).UTC().Format(http.TimeFormat)
			resp, body = get(t, s, p, "If-Modified-Since: "+old)
			wantStatus(t, resp, body, 200)
		}
	})

	t.Run("Range", func(t *testing.T) {
		t.Parallel()
		for _, c := range []struct{ path, rng string }{
			{"/range.txt", "bytes=0-4"},
			{"/range.txt", "bytes=10-"},
			{"/range.txt", "bytes=-3"},
			{"/range.txt", "bytes=0-1,5-6"},
			{"/range.txt", "bytes=30-1000"},
			{"/range.txt", "bytes=999-"},
			{"/range.txt", "bytes=5-2"},
			{"/range.txt", "bytes=abc"},
			{"/range.txt", "pages=1-2"},
			{"/big.bin", "bytes=1048576-1048600"},
			{"/big.bin", "bytes=0-0,-1"},
			{"/big.bin", "bytes=99999999-"},
		} {
			compareWithServeContent(t, s, c.path, "Range: "+c.rng)
		}
		// The cases the brief names explicitly, asserted directly too.
		resp, body := get(t, s, "/range.txt", "Range: bytes=0-4")
		wantStatus(t, resp, body, 206)
		if cr := resp.Header.Get("Content-Range"); cr != "bytes 0-4/36" || string(body) != "01234" {
			t.Errorf("Range bytes=0-4: Content-Range %q body %q", cr, body)
		}
		resp, body = get(t, s, "/range.txt", "Range: bytes=999-")
		wantStatus(t, resp, body, 416)
		if cr := resp.Header.Get("Content-Range"); cr != "bytes */36" {
			t.Errorf("unsatisfiable range: Content-Range %q, want %q", cr, "bytes */36")
		}
	})

	t.Run("HEAD", func(t *testing.T) {
		t.Parallel()
		for _, p := range []string{"/style.css", "/big.bin", "/sub/"} {
			full, fullBody := get(t, s, p)
			wantStatus(t, full, fullBody, 200)
			out := rawExchange(t, s.Addr, "HEAD "+p+" HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
			head, rest, ok := bytes.Cut(out, []byte("\r\n\r\n"))
			if !ok {
				t.Fatalf("HEAD %s: no end of headers in %q", p, trunc(out))
			}
			if !bytes.HasPrefix(head, []byte("HTTP/1.1 200 ")) {
				t.Fatalf("HEAD %s: %q", p, trunc(head))
			}
			if len(rest) != 0 {
				t.Errorf("HEAD %s: %d body bytes sent", p, len(rest))
			}
			want := "\r\nContent-Length: " + strconv.Itoa(len(fullBody)) + "\r\n"
			if !bytes.Contains(head, []byte(want)) {
				t.Errorf("HEAD %s: headers lack %q:\n%s", p, strings.TrimSpace(want), head)
			}
		}
	})

	t.Run("Precompressed", func(t *testing.T) {
		t.Parallel()
		ident, identBody := get(t, s, "/app.js")
		wantStatus(t, ident, identBody, 200)
		if string(identBody) != appJS || ident.Header.Get("Content-Encoding") != "" {
			t.Fatalf("identity: Content-Encoding %q body %q", ident.Header.Get("Content-Encoding"), identBody)
		}
		identType, identTag := ident.Header.Get("Content-Type"), ident.Header.Get("ETag")
		if !hasToken(ident.Header.Values("Vary"), "Accept-Encoding") {
			t.Errorf("identity response of a file with siblings: Vary %q, want Accept-Encoding", ident.Header.Values("Vary"))
		}
		for _, c := range []struct {
			accept, wantEnc, wantBody string
		}{
			{"br", "br", appJSBr},
			{"gzip, deflate, br", "br", appJSBr},
			{"gzip", "gzip", appJSGz},
			{"br;q=0, gzip", "gzip", appJSGz},
			{"BR;Q=0.0, GZIP;q=0.5", "gzip", appJSGz},
			{"br;q=0, gzip;q=0", "", appJS},
			{"deflate", "", appJS},
			{"identity", "", appJS},
		} {
			resp, body := get(t, s, "/app.js", "Accept-Encoding: "+c.accept)
			wantStatus(t, resp, body, 200)
			if got := resp.Header.Get("Content-Encoding"); got != c.wantEnc || string(body) != c.wantBody {
				t.Errorf("Accept-Encoding %q: Content-Encoding %q body %q; want %q %q", c.accept, got, body, c.wantEnc, c.wantBody)
			}
			if got := resp.Header.Get("Content-Type"); got != identType {
				t.Errorf("Accept-Encoding %q: Content-Type %q, want app.js's %q", c.accept, got, identType)
			}
			if !hasToken(resp.Header.Values("Vary"), "Accept-Encoding") {
				t.Errorf("Accept-Encoding %q: Vary %q, want Accept-Encoding", c.accept, resp.Header.Values("Vary"))
			}
			if cl := resp.Header.Get("Content-Length"); cl != strconv.Itoa(len(c.wantBody)) {
				t.Errorf("Accept-Encoding %q: Content-Length %q, want %d", c.accept, cl, len(c.wantBody))
			}
			tag := resp.Header.Get("ETag")
			if (c.wantEnc != "") == (tag == identTag) {
				t.Errorf("Accept-Encoding %q: ETag %q vs identity %q: want different exactly when encoded", c.accept, tag, identTag)
			}
			// The validator is per representation.
			r304, b304 := get(t, s, "/app.js", "Accept-Encoding: "+c.accept, "If-None-Match: "+tag)
			wantStatus(t, r304, b304, 304)
			if c.wantEnc != "" {
				r200, b200 := get(t, s, "/app.js", "Accept-Encoding: "+c.accept, "If-None-Match: "+identTag)
				wantStatus(t, r200, b200, 200)
			}
		}
		resp, body := get(t, s, "/only.css", "Accept-Encoding: br, gzip")
		wantStatus(t, resp, body, 200)
		if resp.Header.Get("Content-Encoding") != "gzip" || string(body) != onlyGzGz {
			t.Errorf("only .gz sibling, br and gzip accepted: Content-Encoding %q body %q", resp.Header.Get("Content-Encoding"), body)
		}
		if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/css" {
			t.Errorf("only.css.gz: Content-Type %q, want text/css", resp.Header.Get("Content-Type"))
		}
		// A range of a precompressed representation is a range of its bytes.
		resp, body = get(t, s, "/app.js", "Accept-Encoding: br", "Range: bytes=0-3")
		wantStatus(t, resp, body, 206)
		if string(body) != appJSBr[:4] || resp.Header.Get("Content-Encoding") != "br" {
			t.Errorf("br range: Content-Encoding %q body %q", resp.Header.Get("Content-Encoding"), body)
		}
	})

	t.Run("CacheControl", func(t *testing.T) {
		t.Parallel()
		for _, p := range []string{"/style.css", "/big.bin", "/sub/"} {
			resp, body := get(t, s, p)
			wantStatus(t, resp, body, 200)
			if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=60" {
				t.Errorf("GET %s: Cache-Control %q", p, cc)
			}
		}
	})

	t.Run("DirectoryRedirect", func(t *testing.T) {
		t.Parallel()
		for _, c := range []struct{ target, wantPath, wantQuery, wantBody string }{
			{"/sub", "/sub/", "", "SUB-INDEX"},
			{"/sub?x=1&y=a%20b", "/sub/", "x=1&y=a%20b", "SUB-INDEX"},
			{"/sub/deeper", "/sub/deeper/", "", ""},
			{"/sp%20ace", "/sp ace/", "", "SPACE-INDEX"},
			{"/q%3Fmark?k=v", "/q?mark/", "k=v", "QMARK-INDEX"},
		} {
			resp, body := rawGet(t, s.Addr, c.target)
			wantStatus(t, resp, body, 301)
			loc := resp.Header.Get("Location")
			if strings.ContainsAny(loc, " \t") {
				t.Errorf("GET %s: Location %q is not a URI reference (unescaped space)", c.target, loc)
			}
			base, _ := url.Parse(s.URL(c.target))
			u, err := base.Parse(loc)
			if err != nil {
				t.Errorf("GET %s: Location %q does not parse: %v", c.target, loc, err)
				continue
			}
			if u.Path != c.wantPath || u.RawQuery != c.wantQuery || u.Host != s.Addr {
				t.Errorf("GET %s: Location %q means path %q query %q host %q; want path %q query %q on this server",
					c.target, loc, u.Path, u.RawQuery, u.Host, c.wantPath, c.wantQuery)
				continue
			}
			if c.wantBody == "" {
				continue
			}
			resp, body = rawGet(t, s.Addr, u.RequestURI())
			wantStatus(t, resp, body, 200)
			if !strings.HasPrefix(string(body), c.wantBody) {
				t.Errorf("following %q: body %q, want %q", loc, body, c.wantBody)
			}
		}
	})

	t.Run("DirectoryIndex", func(t *testing.T) {
		t.Parallel()
		for _, c := range []struct{ path, body string }{
			{"/", "<!doctype html><title>home</title>HOME-INDEX"},
			{"/sub/", "SUB-INDEX (no markup: the type must come from the name)"},
			{"/htm/", "HTM-INDEX"},  // index.htm, listed second, used when index.html is missing
			{"/both/", "BOTH-HTML"}, // index.html, listed first, wins
		} {
			resp, body := get(t, s, c.path)
			wantStatus(t, resp, body, 200)
			if string(body) != c.body {
				t.Errorf("GET %s: body %q, want %q", c.path, body, c.body)
			}
			if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/html" {
				t.Errorf("GET %s: Content-Type %q, want text/html (from the index file's name)", c.path, resp.Header.Get("Content-Type"))
			}
		}
	})

	t.Run("DirectoryIndexPrecompressed", func(t *testing.T) {
		t.Parallel()
		resp, body := get(t, s, "/sub/", "Accept-Encoding: gzip")
		wantStatus(t, resp, body, 200)
		if resp.Header.Get("Content-Encoding") != "gzip" || string(body) != "\x1f\x8b\x08\x00GZIP-OF-SUB-INDEX" {
			t.Errorf("GET /sub/ gzip: Content-Encoding %q body %q", resp.Header.Get("Content-Encoding"), body)
		}
		if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/html" {
			t.Errorf("GET /sub/ gzip: Content-Type %q, want text/html", resp.Header.Get("Content-Type"))
		}
	})

	t.Run("DirectoryWithoutIndex", func(t *testing.T) {
		t.Parallel()
		for _, p := range []string{"/empty/", "/sub/deeper/"} {
			resp, body := get(t, s, p)
			wantStatus(t, resp, body, 403)
			if bytes.Contains(body, []byte("file.txt")) || bytes.Contains(body, []byte("<a href")) {
				t.Errorf("GET %s: looks like a listing: %q", p, body)
			}
		}
	})

	t.Run("LargeFile", func(t *testing.T) {
		t.Parallel()
		resp, body := get(t, s, "/big.bin")
		wantStatus(t, resp, body, 200)
		if len(body) != len(big) || sha256.Sum256(body) != sha256.Sum256(big) {
			t.Fatalf("GET /big.bin: %d bytes, sha256 mismatch (want %d bytes intact)", len(body), len(big))
		}
		if cl := resp.Header.Get("Content-Length"); cl != strconv.Itoa(len(big)) {
			t.Errorf("GET /big.bin: Content-Length %q", cl)
		}
	})

	t.Run("MethodNotAllowed", func(t *testing.T) {
		t.Parallel()
		for _, m := range []string{"POST", "PUT", "DELETE", "PATCH"} {
			for _, p := range []string{"/index.html", "/missing", "/sub/"} {
				resp, body := do(t, s, m, p)
				wantStatus(t, resp, body, 405)
				allow := resp.Header.Get("Allow")
				if !strings.Contains(allow, "GET") || !strings.Contains(allow, "HEAD") {
					t.Errorf("%s %s: Allow %q, want GET and HEAD", m, p, allow)
				}
			}
		}
	})
}

// compareWithServeContent checks that fe-php answers a request for path
// with header the way net/http's ServeContent answers it for the same
// bytes: same status, Content-Range and body (multipart parts compared
// part by part, since boundaries are random).
func compareWithServeContent(t *testing.T, s *Server, path, header string) {
	t.Helper()
	file := filepath.Join(s.Root, filepath.FromSlash(strings.TrimPrefix(path, "/")))
	content, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", path, nil)
	k, v, _ := strings.Cut(header, ":")
	req.Header.Set(k, strings.TrimSpace(v))
	rec := httptest.NewRecorder()
	http.ServeContent(rec, req, path, st.ModTime(), bytes.NewReader(content))
	want := rec.Result()
	wantBody := rec.Body.Bytes()

	got, gotBody := get(t, s, path, header)
	if got.StatusCode != want.StatusCode {
		t.Errorf("GET %s %s: status %d, net/http says %d", path, header, got.StatusCode, want.StatusCode)
		return
	}
	if g, w := got.Header.Get("Content-Range"), want.Header.Get("Content-Range"); g != w {
		t.Errorf("GET %s %s: Content-Range %q, net/http says %q", path, header, g, w)
	}
	if got.StatusCode >= 400 {
		return
	}
	gmt, gp, _ := mime.ParseMediaType(got.Header.Get("Content-Type"))
	wmt, wp, _ := mime.ParseMediaType(want.Header.Get("Content-Type"))
	if wmt == "multipart/byteranges" {
		if gmt != wmt {
			t.Errorf("GET %s %s: Content-Type %q, want multipart/byteranges", path, header, got.Header.Get("Content-Type"))
			return
		}
		g, w := parts(t, gotBody, gp["boundary"]), parts(t, wantBody, wp["boundary"])
		if strings.Join(g, "\n---\n") != strings.Join(w, "\n---\n") {
			t.Errorf("GET %s %s: parts %q, net/http's %q", path, header, g, w)
		}
		return
	}
	if !bytes.Equal(gotBody, wantBody) {
		t.Errorf("GET %s %s: body of %d bytes differs from net/http's %d", path, header, len(gotBody), len(wantBody))
	}
}

// parts returns each part of a multipart/byteranges body as
// "Content-Range\nbody".
func parts(t *testing.T, body []byte, boundary string) []string {
	t.Helper()
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	var out []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("multipart body: %v", err)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p.Header.Get("Content-Range")+"\n"+string(b))
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// hasToken reports whether a comma-separated header has token.
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), token) {
				return true
			}
		}
	}
	return false
}

// TestStaticNotFoundLog: a 404 logs the URI-to-file mapping at debug level,
// the spec's troubleshooting promise.
func TestStaticNotFoundLog(t *testing.T) {
	t.Parallel()
	s := startServer(t, "[server]\nlog_level = \"debug\"\n"+staticOnly, map[string]string{"root/index.html": "x"})
	resp, body := get(t, s, "/no/such/file.css")
	wantStatus(t, resp, body, 404)
	file := filepath.Join(s.Root, "no/such/file.css")
	waitFor(t, 10*time.Second, "the not-served log line", func() bool {
		for line := range strings.SplitSeq(s.Stderr(), "\n") {
			if strings.Contains(line, `msg="static: not served"`) && strings.Contains(line, "uri=/no/such/file.css") &&
				strings.Contains(line, "file="+file) && strings.Contains(line, "status=404") {
				return true
			}
		}
		return false
	})
}

// TestSPA: a static default backend falls back to the index file for paths
// naming no file; a static rule does not.
func TestSPA(t *testing.T) {
	t.Parallel()
	s := startServer(t, `
[backend]
default_backend = "static"

[backend.static_files]
root = "root"
index_files = ["index.html"]

[[backend.routing_rules]]
pattern = { type = "prefix", value = "/assets/" }
backend = "static"
priority = 100
`, map[string]string{
		"root/index.html":    "<!doctype html>SPA-SHELL",
		"root/assets/app.js": "APP-JS",
		"root/robots.txt":    "ROBOTS",
		"root/.env":          "SECRET=SPA-DOTENV",
		"root/x.php":         "<?php echo 'SPA-PHP-SOURCE';",
	})
	for _, c := range []struct {
		path   string
		status int
		body   string
	}{
		{"/deep/link/x", 200, "<!doctype html>SPA-SHELL"},
		{"/settings", 200, "<!doctype html>SPA-SHELL"},
		{"/", 200, "<!doctype html>SPA-SHELL"},
		{"/robots.txt", 200, "ROBOTS"},
		{"/assets/app.js", 200, "APP-JS"},
		{"/assets/missing.js", 404, ""},
	} {
		resp, body := get(t, s, c.path)
		wantStatus(t, resp, body, c.status)
		if c.body != "" && string(body) != c.body {
			t.Errorf("GET %s: body %q, want %q", c.path, body, c.body)
		}
		if c.path == "/deep/link/x" {
			if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/html" {
				t.Errorf("GET %s: Content-Type %q, want text/html", c.path, resp.Header.Get("Content-Type"))
			}
		}
	}
	for _, p := range []string{"/.env", "/x.php"} {
		resp, body := get(t, s, p)
		if resp.StatusCode == 200 && !bytes.Contains(body, []byte("SPA-SHELL")) || bytes.Contains(body, []byte("SPA-DOTENV")) || bytes.Contains(body, []byte("SPA-PHP-SOURCE")) {
			t.Errorf("GET %s: %d %q: a file that must never be served", p, resp.StatusCode, body)
		}
	}
}

// TestSPAPHPIndexFirst: with index_files naming a PHP file first, the SPA
// fallback and directory requests use the next, non-PHP, index file.
func TestSPAPHPIndexFirst(t *testing.T) {
	t.Parallel()
	s := startServer(t, `
[backend]
default_backend = "static"

[backend.static_files]
root = "root"
index_files = ["index.php", "index.html"]
`, map[string]string{
		"root/index.php":     "<?php echo 'PHP-INDEX-SOURCE';",
		"root/index.html":    "<!doctype html>SPA-SHELL",
		"root/app/index.php": "<?php echo 'PHP-INDEX-SOURCE';",
	})
	for _, c := range []struct {
		path   string
		status int
	}{{"/", 200}, {"/deep/link", 200}, {"/app/", 403}, {"/index.php", 404}} {
		resp, body := get(t, s, c.path)
		wantStatus(t, resp, body, c.status)
		if bytes.Contains(body, []byte("PHP-INDEX-SOURCE")) {
			t.Errorf("GET %s: PHP source served: %q", c.path, body)
		}
		if c.status == 200 && string(body) != "<!doctype html>SPA-SHELL" {
			t.Errorf("GET %s: body %q, want the HTML index", c.path, body)
		}
	}
}

// TestStaticRangeAbuse: a Range header cannot make the server send more
// than the file (CVE-2011-3192): more than 16 ranges, or overlapping
// ones, get the whole file once with 200; two disjoint ranges still get
// a 206 multipart/byteranges.
func TestStaticRangeAbuse(t *testing.T) {
	t.Parallel()
	big := randomBytes(1<<20, 7)
	small := big[:1000]
	s := startServer(t, staticOnly, map[string]string{"root/big.bin": string(big), "root/small.bin": string(small)})
	ranges := func(n int, spec func(i int) string) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = spec(i)
		}
		return "Range: bytes=" + strings.Join(parts, ",")
	}
	for _, f := range []struct {
		path string
		body []byte
	}{{"/big.bin", big}, {"/small.bin", small}} {
		size := len(f.body)
		for _, rng := range []string{
			ranges(1000, func(i int) string { return strconv.Itoa(2*i) + "-" + strconv.Itoa(2*i) }),
			ranges(1000, func(int) string { return "0-0" }),
			ranges(1000, func(int) string { return "-1" }),
			ranges(1000, func(int) string { return strconv.Itoa(size-size/1000) + "-" }),
			ranges(17, func(i int) string { return strconv.Itoa(10*i) + "-" + strconv.Itoa(10*i+4) }),
			"Range: bytes=0-99,50-149",
		} {
			resp, body := get(t, s, f.path, rng)
			if resp.StatusCode != 200 || !bytes.Equal(body, f.body) {
				t.Errorf("GET %s %.60s...: %d, %d bytes (%.1fx the file); want 200 and the file once",
					f.path, rng, resp.StatusCode, len(body), float64(len(body))/float64(size))
			}
		}
	}
	// Two disjoint ranges: multipart, as before.
	resp, body := get(t, s, "/big.bin", "Range: bytes=0-9,1000-1009")
	wantStatus(t, resp, body, 206)
	mt, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt != "multipart/byteranges" {
		t.Fatalf("two disjoint ranges: Content-Type %q", resp.Header.Get("Content-Type"))
	}
	got := parts(t, body, params["boundary"])
	want := []string{"bytes 0-9/1048576\n" + string(big[:10]), "bytes 1000-1009/1048576\n" + string(big[1000:1010])}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("two disjoint ranges: parts %q", got)
	}
	// The limit: 16 disjoint ranges are still answered part by part.
	resp, body = get(t, s, "/big.bin", ranges(16, func(i int) string { return strconv.Itoa(10*i) + "-" + strconv.Itoa(10*i+4) }))
	wantStatus(t, resp, body, 206)
	if _, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); len(parts(t, body, params["boundary"])) != 16 {
		t.Errorf("16 disjoint ranges: not 16 parts")
	}
}

// TestStaticBackupNames: editor and backup copies of PHP sources
// ("config.php~", "config.php.bak", "#config.php#"...) are never sent,
// whatever the case or encoding; look-alike names are.
func TestStaticBackupNames(t *testing.T) {
	t.Parallel()
	const src = "<?php $password = 'BACKUP-SOURCE';"
	files := map[string]string{"root/index.html": "INDEX"}
	for _, name := range []string{
		"config.php~", "config.php.bak", "config.php.old", "config.php.orig", "config.php.save",
		"config.php.swp", "config.php.swo", ".config.php.swp", "#config.php#", "config.php.dist",
		"config.php.tmp", "config.php.1", "config.php-", "config.php.", "config.php..", "config.php ",
		"CONFIG.PHP.BAK", "wp-config.php.2024", "lib.inc.old", "sub/page.php5~",
	} {
		files["root/"+name] = src
	}
	for _, name := range []string{"php.png", "phpinfo.html", "docs/php-guide.pdf", "my.phpstorm.xml"} {
		files["root/"+name] = "LOOKALIKE " + name
	}
	s := startServer(t, staticOnly, files)
	for _, target := range []string{
		"/config.php~", "/config.php%7e", "/config.php%7E", "/config.php.bak", "/config.php%2ebak", "/config.ph%70.bak",
		"/config.php.old", "/config.php.orig", "/config.php.save", "/config.php.swp", "/config.php.swo",
		"/.config.php.swp", "/%2econfig.php.swp", "/%23config.php%23", "/config.php.dist", "/config.php.tmp",
		"/config.php.1", "/config.php-", "/config.php.", "/config.php..", "/config.php%2e", "/config.php%20",
		"/CONFIG.PHP.BAK", "/CONFIG.PHP%2EBAK", "/wp-config.php.2024", "/lib.inc.old", "/sub/page.php5~",
		"/sub/../config.php.bak", "/sub/%2e%2e/config.php.bak", "//config.php.bak",
	} {
		for _, method := range []string{"GET", "HEAD"} {
			out := rawExchange(t, s.Addr, method+" "+target+" HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
			if status := statusOf(t, out); status != 404 && status != 400 {
				t.Errorf("%s %s: status %d, want 404", method, target, status)
			}
			if bytes.Contains(out, []byte("BACKUP-SOURCE")) {
				t.Errorf("%s %s: the PHP source leaked", method, target)
			}
		}
	}
	for _, p := range []string{"/php.png", "/phpinfo.html", "/docs/php-guide.pdf", "/my.phpstorm.xml"} {
		resp, body := rawGet(t, s.Addr, p)
		wantStatus(t, resp, body, 200)
		if !bytes.HasPrefix(body, []byte("LOOKALIKE ")) {
			t.Errorf("GET %s: body %q", p, body)
		}
	}
}
