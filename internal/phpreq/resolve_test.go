package phpreq

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// site builds a document root in a temporary directory: each entry is a
// file, or a directory if it ends in "/".
func site(t testing.TB, entries ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, e := range entries {
		p := filepath.Join(root, filepath.FromSlash(e))
		if strings.HasSuffix(e, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("<?php // "+e), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

var wpSite = []string{
	"index.php", "a.php", "style.css",
	"blog/index.php", "empty/",
	"wp-admin/index.php", "wp-admin/css/x.css",
	"uploads/x.jpg", "uploads/y.php/", // a directory named like a script
	"dir.php/b.php", // a script inside a directory named like one
	".env", ".git/config", ".hidden.php", ".well-known/x", ".well-known/acme.php",
	"config.inc", "legacy.phtml", "upper.PHP",
	"back\\slash.css",
}

// request builds a request as the server hands it to a backend: the path
// decoded and cleaned, RequestURI the original.
func request(method, target string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	p := r.URL.Path
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	if c != p {
		r.URL.Path, r.URL.RawPath = c, ""
	}
	return r
}

func newResolver(t testing.TB, root, front string) *Resolver {
	t.Helper()
	rs, err := NewResolver(Options{DocumentRoot: root, FrontController: front, ServerSoftware: "fe-php/test"})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func TestResolve(t *testing.T) {
	root := site(t, wpSite...)
	withFront := newResolver(t, root, "/index.php")
	noFront := newResolver(t, root, "")

	script := func(name, info string) Target {
		return Target{Kind: Script, ScriptName: name, ScriptFilename: root + name, PathInfo: info, Root: root}
	}
	static := func(name string) Target {
		return Target{Kind: Static, ScriptName: name, ScriptFilename: root + name}
	}
	front := script("/index.php", "")
	notFound := Target{Kind: NotFound}
	forbidden := Target{Kind: Forbidden}
	redirect := func(loc string) Target { return Target{Kind: Redirect, Location: loc} }

	tests := []struct {
		target          string
		withFront, none Target
	}{
		{"/index.php", script("/index.php", ""), script("/index.php", "")},
		{"/a.php", script("/a.php", ""), script("/a.php", "")},
		{"/a.php/b/c", script("/a.php", "/b/c"), script("/a.php", "/b/c")},
		{"/a.php/b/c?x=1", script("/a.php", "/b/c"), script("/a.php", "/b/c")},
		{"/a.php/", script("/a.php", "/"), script("/a.php", "/")},
		{"/a.php/b.php/c", script("/a.php", "/b.php/c"), script("/a.php", "/b.php/c")},
		{"/a.php/%2e%2e/x", front, notFound}, // decoded and cleaned to /x, nothing there
		// A ".php" segment that is a directory is no split point.
		{"/dir.php/b.php/c", script("/dir.php/b.php", "/c"), script("/dir.php/b.php", "/c")},
		{"/dir.php", redirect("/dir.php/"), redirect("/dir.php/")},
		// CVE-2019-11043: never x.jpg.
		{"/uploads/x.jpg/y.php", front, notFound},
		{"/uploads/x.jpg/y.php/z", front, notFound},
		{"/uploads/x.jpg", static("/uploads/x.jpg"), static("/uploads/x.jpg")},
		{"/uploads/y.php", redirect("/uploads/y.php/"), redirect("/uploads/y.php/")},
		{"/uploads/y.php/", front, notFound},
		{"/style.css", static("/style.css"), static("/style.css")},
		{"/style.css/", front, notFound},
		{"/style.css/x.php", front, notFound},
		{"/wp-admin/css/x.css", static("/wp-admin/css/x.css"), static("/wp-admin/css/x.css")},
		{"/wp-admin", redirect("/wp-admin/"), redirect("/wp-admin/")},
		{"/wp-admin?a=1&b=2", redirect("/wp-admin/?a=1&b=2"), redirect("/wp-admin/?a=1&b=2")},
		{"/wp-admin/", script("/wp-admin/index.php", ""), script("/wp-admin/index.php", "")},
		{"/blog/", script("/blog/index.php", ""), script("/blog/index.php", "")},
		{"/empty/", front, notFound},
		{"/empty", redirect("/empty/"), redirect("/empty/")},
		{"/", script("/index.php", ""), script("/index.php", "")},
		{"/missing", front, notFound},
		{"/missing/", front, notFound},
		{"/missing.php", front, notFound},
		{"/missing.php/x", front, notFound},
		{"/2024/01/hello-world/?p=1", front, notFound},
		// Dot segments, whether or not they exist.
		{"/.env", forbidden, forbidden},
		{"/.git/config", forbidden, forbidden},
		{"/.git/", forbidden, forbidden},
		{"/.hidden.php", forbidden, forbidden},
		{"/.nothing", forbidden, forbidden},
		{"/a.php/.env", forbidden, forbidden},
		{"/wp-admin/.htaccess", forbidden, forbidden},
		{"/.well-known/x", static("/.well-known/x"), static("/.well-known/x")},
		{"/.well-known/acme.php", script("/.well-known/acme.php", ""), script("/.well-known/acme.php", "")},
		{"/.well-known/missing", front, notFound},
		{"/.well-known/.x", forbidden, forbidden},
		{"/.well-knownx", forbidden, forbidden},
		// Other PHP sources: neither run nor served.
		{"/config.inc", forbidden, forbidden},
		{"/legacy.phtml", forbidden, forbidden},
		{"/upper.PHP", forbidden, forbidden},
		{"/upper.PHP/x", front, notFound},
		// A backslash: no file lookup.
		{"/back%5Cslash.css", front, notFound},
	}
	for _, tt := range tests {
		for _, c := range []struct {
			rs   *Resolver
			want Target
			name string
		}{{withFront, tt.withFront, "front"}, {noFront, tt.none, "nofront"}} {
			got := c.rs.Resolve(request(http.MethodGet, tt.target))
			if got != c.want {
				t.Errorf("%s %s: got %+v, want %+v", c.name, tt.target, got, c.want)
			}
		}
	}
}

func TestResolveFrontControllerMissing(t *testing.T) {
	root := site(t, "a.php")
	rs := newResolver(t, root, "index.php") // leading slash added
	if rs.FrontController() != "/index.php" {
		t.Fatalf("front controller %q", rs.FrontController())
	}
	if got := rs.Resolve(request("GET", "/missing")); got.Kind != NotFound {
		t.Errorf("missing front controller: %+v", got)
	}
	// Created later: picked up without a restart.
	if err := os.WriteFile(filepath.Join(root, "index.php"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := rs.Resolve(request("GET", "/missing")); got.Kind != Script || got.ScriptName != "/index.php" {
		t.Errorf("front controller created: %+v", got)
	}
}

func TestResolveSymlink(t *testing.T) {
	outside := site(t, "plugin.php", "logo.png")
	root := site(t, "index.php")
	if err := os.Symlink(outside, filepath.Join(root, "wp-content")); err != nil {
		t.Fatal(err)
	}
	rs := newResolver(t, root, "/index.php")
	if got := rs.Resolve(request("GET", "/wp-content/plugin.php/x")); got.Kind != Script ||
		got.ScriptFilename != root+"/wp-content/plugin.php" || got.PathInfo != "/x" {
		t.Errorf("symlinked script: %+v", got)
	}
	if got := rs.Resolve(request("GET", "/wp-content/logo.png")); got.Kind != Static {
		t.Errorf("symlinked file: %+v", got)
	}
}

func TestResolveRedirectEscapes(t *testing.T) {
	root := site(t, "a b/", "q?/")
	rs := newResolver(t, root, "")
	if got := rs.Resolve(request("GET", "/a%20b?x=%2F")); got.Kind != Redirect || got.Location != "/a%20b/?x=%2F" {
		t.Errorf("got %+v", got)
	}
	if got := rs.Resolve(request("GET", "/q%3F")); got.Kind != Redirect || got.Location != "/q%3F/" {
		t.Errorf("got %+v", got)
	}
}

func TestResolveRootSlash(t *testing.T) {
	root := site(t, "index.php")
	rs := newResolver(t, root+"/", "")
	if rs.DocumentRoot() != root {
		t.Errorf("document root %q", rs.DocumentRoot())
	}
	if got := rs.Resolve(request("GET", "/")); got.ScriptFilename != root+"/index.php" {
		t.Errorf("got %+v", got)
	}
}

func TestResolveOddPaths(t *testing.T) {
	rs := newResolver(t, site(t, "index.php"), "/index.php")
	for _, p := range []string{"", "index.php", "/a\x00.php"} {
		r := request("GET", "/")
		r.URL.Path = p
		if got := rs.Resolve(r); got.Kind != NotFound {
			t.Errorf("%q: %+v", p, got)
		}
	}
}

func TestNewResolverErrors(t *testing.T) {
	root := site(t, "file")
	for _, o := range []Options{
		{},
		{DocumentRoot: filepath.Join(root, "missing")},
		{DocumentRoot: filepath.Join(root, "file")},
		{DocumentRoot: root, FrontController: "/"},
		{DocumentRoot: root, FrontController: "/.index.php"},
		{DocumentRoot: root, FrontController: "/app/"},
	} {
		if _, err := NewResolver(o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}

func TestKindString(t *testing.T) {
	if Forbidden.String() != "forbidden" || Kind(42).String() != "Kind(42)" {
		t.Error(Forbidden.String(), Kind(42).String())
	}
}

// php.index_files: tried in order for a directory; a ".php" one runs,
// another is sent, a PHP source under another extension never.
func TestResolveIndexFiles(t *testing.T) {
	root := site(t, "doku.php", "index.php", "docs/index.html", "docs/index.php", "lib/index.inc", "empty/")
	rs, err := NewResolver(Options{DocumentRoot: root, FrontController: "/doku.php", IndexFiles: []string{"doku.php", "index.html", "index.inc", "index.php"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, name string
		kind       Kind
	}{
		{"/", "/doku.php", Script},
		{"/docs/", "/docs/index.html", Static}, // before index.php in the list
		{"/lib/", "/doku.php", Script},         // index.inc is PHP source: skipped, front controller
		{"/empty/", "/doku.php", Script},       // no index: front controller
	} {
		got := rs.Resolve(request("GET", tc.path))
		if got.Kind != tc.kind || got.ScriptName != tc.name {
			t.Errorf("%s: %v %q, want %v %q", tc.path, got.Kind, got.ScriptName, tc.kind, tc.name)
		}
	}
	for _, bad := range []string{"", "a/b.php", ".hidden.php", "x\x00.php"} {
		if _, err := NewResolver(Options{DocumentRoot: root, IndexFiles: []string{bad}}); err == nil {
			t.Errorf("index file %q accepted", bad)
		}
	}
}
