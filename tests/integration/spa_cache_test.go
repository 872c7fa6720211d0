//go:build fephp_bridge

package integration

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const (
	spaImmutable = "public, max-age=31536000, immutable"
	spaNoCache   = "no-cache"
)

// TestRecipeSPACaching is the SPA recipe (examples/spa) with the caching
// docs/recipes/spa.md recommends: the hashed bundles under /assets/ cached
// for a year by a rule's Cache-Control, every other static answer
// (index.html, the fallback for deep links, favicon.svg) with
// cache_control = "no-cache", so that browsers revalidate it (a 304 while
// it has not changed), and the API's own Cache-Control left alone.
func TestRecipeSPACaching(t *testing.T) {
	t.Parallel()
	dir := recipeCopy(t, "spa")
	s := recipeStart(t, dir, func(cfg string) string {
		cfg = recipeSetLine(t, cfg, regexp.QuoteMeta(`index_files = ["index.html"]`),
			`index_files = ["index.html"]`+"\n"+`cache_control = "no-cache"`)
		return recipeSetLine(t, cfg, regexp.QuoteMeta(`pattern = { type = "prefix", value = "/assets/" }`),
			`pattern = { type = "prefix", value = "/assets/" }`+"\n"+`headers = { "Cache-Control" = "public, max-age=31536000, immutable" }`)
	})
	read := func(rel string) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	index := read("dist/index.html")

	// Each path twice: the first answer reads the file, the second may come
	// from the static backend's cache of small files; both must carry the
	// same Cache-Control.
	for _, c := range []struct{ path, file, cacheControl string }{
		{"/assets/app.js", "dist/assets/app.js", spaImmutable},
		{"/assets/app.css", "dist/assets/app.css", spaImmutable},
		{"/", "dist/index.html", spaNoCache},
		{"/index.html", "dist/index.html", spaNoCache},
		{"/settings/profile", "dist/index.html", spaNoCache}, // a deep link: the fallback
		{"/favicon.svg", "dist/favicon.svg", spaNoCache},     // dist/ outside /assets/
	} {
		for i := range 2 {
			resp, body := get(t, s.Server, c.path)
			wantStatus(t, resp, body, http.StatusOK)
			if !bytes.Equal(body, read(c.file)) {
				t.Errorf("GET %s (#%d): body is not %s", c.path, i+1, c.file)
			}
			if got := resp.Header.Values("Cache-Control"); len(got) != 1 || got[0] != c.cacheControl {
				t.Errorf("GET %s (#%d): Cache-Control %q, want %q", c.path, i+1, got, c.cacheControl)
			}
			recipeWantNoPHP(t, resp)
		}
		// HEAD (curl -I) says the same.
		resp, body := do(t, s.Server, http.MethodHead, c.path)
		wantStatus(t, resp, body, http.StatusOK)
		if got := resp.Header.Values("Cache-Control"); len(got) != 1 || got[0] != c.cacheControl {
			t.Errorf("HEAD %s: Cache-Control %q, want %q", c.path, got, c.cacheControl)
		}
	}

	// The API (embedded PHP) keeps what PHP sent (api/index.php: no-store):
	// neither the assets' rule nor the static backend's cache_control
	// reaches it.
	resp, body := get(t, s.Server, "/api/status")
	var status struct {
		OK   bool   `json:"ok"`
		SAPI string `json:"sapi"`
	}
	recipeJSON(t, resp, body, http.StatusOK, &status)
	recipeWantPHP(t, resp, status.SAPI, "fe-php")
	if got := resp.Header.Values("Cache-Control"); len(got) != 1 || got[0] != "no-store" {
		t.Errorf("GET /api/status: Cache-Control %q, want PHP's own [no-store]", got)
	}

	// A bundle compressed on the fly (app.js is over the 1K min_length)
	// keeps the year-long Cache-Control, and says it varies.
	appJS := read("dist/assets/app.js")
	var jsETag string
	for _, c := range []struct{ accept, coding string }{
		{"zstd, gzip", "zstd"},
		{"gzip", "gzip"},
		{"gzip;q=0.5, zstd;q=1", "zstd"},
	} {
		resp, body := get(t, s.Server, "/assets/app.js", "Accept-Encoding: "+c.accept)
		wantStatus(t, resp, body, http.StatusOK)
		if got := resp.Header.Get("Content-Encoding"); got != c.coding {
			t.Errorf("GET /assets/app.js, Accept-Encoding %q: Content-Encoding %q, want %q", c.accept, got, c.coding)
			continue
		}
		if got := decode(t, c.coding, body); !bytes.Equal(got, appJS) {
			t.Errorf("GET /assets/app.js, Accept-Encoding %q: the decoded body (%d bytes) is not app.js (%d bytes)", c.accept, len(got), len(appJS))
		}
		if got := resp.Header.Values("Cache-Control"); len(got) != 1 || got[0] != spaImmutable {
			t.Errorf("GET /assets/app.js, Accept-Encoding %q: Cache-Control %q, want %q", c.accept, got, spaImmutable)
		}
		if !spaVaries(resp) {
			t.Errorf("GET /assets/app.js, Accept-Encoding %q: Vary %q, want Accept-Encoding", c.accept, resp.Header.Values("Vary"))
		}
		jsETag = resp.Header.Get("ETag")
		if !strings.HasPrefix(jsETag, `W/"`) {
			t.Errorf("GET /assets/app.js, Accept-Encoding %q: ETag %q, want a weak one (the bytes are not the file's)", c.accept, jsETag)
		}
	}
	// Revalidating the compressed bundle (what a browser does after a
	// reload that bypasses immutable) is a 304 with the same headers.
	if jsETag != "" {
		resp, body := get(t, s.Server, "/assets/app.js", "Accept-Encoding: gzip", "If-None-Match: "+jsETag)
		wantStatus(t, resp, body, http.StatusNotModified)
		if got := resp.Header.Get("Cache-Control"); got != spaImmutable {
			t.Errorf("304 for /assets/app.js: Cache-Control %q, want %q", got, spaImmutable)
		}
		if got := resp.Header.Get("ETag"); got != jsETag {
			// RFC 9110 15.4.5: the ETag a 200 to the same request would
			// have carried. A client that stores the strong one still
			// revalidates with it (If-None-Match compares weakly).
			t.Logf("note: 304 for the compressed /assets/app.js has ETag %q, the 200 had %q", got, jsETag)
		}
	}

	// index.html revalidates: its validators from a first answer get a 304
	// (with no-cache on it, and no body), for / and for a deep link alike
	// (the same file).
	resp, body = get(t, s.Server, "/")
	wantStatus(t, resp, body, http.StatusOK)
	etag, lastModified := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	if etag == "" || lastModified == "" {
		t.Fatalf("GET /: ETag %q, Last-Modified %q; want both", etag, lastModified)
	}
	for _, c := range []struct{ path, header string }{
		{"/", "If-None-Match: " + etag},
		{"/", "If-Modified-Since: " + lastModified},
		{"/index.html", "If-None-Match: " + etag},
		{"/settings/profile", "If-None-Match: " + etag},
		{"/settings/profile", "If-Modified-Since: " + lastModified},
	} {
		resp, body := get(t, s.Server, c.path, c.header)
		if resp.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with %s: status %d, want 304", c.path, c.header, resp.StatusCode)
			continue
		}
		if len(body) != 0 {
			t.Errorf("GET %s with %s: a 304 with a %d-byte body", c.path, c.header, len(body))
		}
		if got := resp.Header.Get("Cache-Control"); got != spaNoCache {
			t.Errorf("GET %s with %s: 304 with Cache-Control %q, want %q", c.path, c.header, got, spaNoCache)
		}
		if got := resp.Header.Get("ETag"); got != etag {
			t.Errorf("GET %s with %s: 304 with ETag %q, want %q", c.path, c.header, got, etag)
		}
	}
	// A validator that does not match (an old release's) gets the file.
	resp, body = get(t, s.Server, "/", `If-None-Match: "0-0"`)
	wantStatus(t, resp, body, http.StatusOK)
	if !bytes.Equal(body, index) || resp.Header.Get("Cache-Control") != spaNoCache {
		t.Errorf(`GET / with If-None-Match "0-0": Cache-Control %q, body %q; want no-cache and index.html`, resp.Header.Get("Cache-Control"), trunc(body))
	}

	// A missing bundle is a 404, not index.html. What it carries for
	// caching is logged, not judged: rule headers apply to every status
	// (docs/configuration.md), so a CDN may keep this 404 for a year.
	resp, body = get(t, s.Server, "/assets/missing-3f2a1b.js")
	wantStatus(t, resp, body, http.StatusNotFound)
	if bytes.Equal(body, index) {
		t.Error("GET /assets/missing-3f2a1b.js: answered with index.html")
	}
	t.Logf("404 for a missing bundle: Cache-Control %q", resp.Header.Values("Cache-Control"))
}

// spaVaries reports whether resp says it varies with Accept-Encoding.
func spaVaries(resp *http.Response) bool {
	for _, v := range resp.Header.Values("Vary") {
		for _, name := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(name), "Accept-Encoding") {
				return true
			}
		}
	}
	return false
}
