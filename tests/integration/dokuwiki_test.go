//go:build fephp_bridge

package integration

// TestDokuWiki serves Debian's dokuwiki package (/usr/share/dokuwiki) with
// the recipe's config, examples/dokuwiki/fe-php.toml (only the listen
// address, the session directory and, for the PHP-FPM run, the backend and
// its socket changed), and uses the wiki over HTTP: the start page, the
// directories the recipe closes, the assets the static backend serves, a
// log-in, and a page created and edited through DokuWiki's edit form with
// its CSRF token (sectok).
//
// The system's wiki is left alone. Debian's inc/preload.php picks the
// configuration directory by the Host header (DokuWiki's "farm", what
// dokuwiki-addsite sets up): /etc/dokuwiki/farm/HOST. The test links a
// unique HOST there to a temp dir holding the site's local.php (its
// savedir, the pages and media, is another temp dir), users and ACL, and
// removes the link when it ends. Nothing under /var/lib/dokuwiki is
// written.

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fe-php/fe-php/internal/testutil/fpmtest"
)

const (
	dwFarm     = "/etc/dokuwiki/farm"
	dwUser     = "editor"
	dwPassword = "fe-php-wiki-password-7"
	dwFullName = "Ed Itor"
)

func TestDokuWiki(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("the DokuWiki test links a site into /etc/dokuwiki/farm/: run it as root (CI does)")
	}
	for _, f := range []string{"/usr/share/dokuwiki/doku.php", "/usr/share/dokuwiki/inc/preload.php", "/etc/dokuwiki/dokuwiki.php"} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("%s is missing: install Debian's dokuwiki package (scripts/deps.sh installs it)", f)
		}
	}
	// The farm directory, if the system has none: removed at the end if
	// it is empty again (the subtests' links are gone by then).
	if _, err := os.Lstat(dwFarm); os.IsNotExist(err) {
		if err := os.Mkdir(dwFarm, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(dwFarm) })
	}
	for _, backend := range []string{"embedded", "fastcgi"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			testDokuWikiFlow(t, startDokuWiki(t, backend))
		})
	}
}

// dwSite is one DokuWiki site served by fe-php.
type dwSite struct {
	srv     *Server
	backend string
	host    string // the site's host name: its farm directory
	base    string // http://host:port
	data    string // the site's savedir
	marker  string // unique, on the start page
	client  *http.Client
}

func startDokuWiki(t *testing.T, backend string) *dwSite {
	t.Helper()
	w := &dwSite{backend: backend, host: "dw-" + randomHex(t, 6) + ".localhost", marker: "marker" + randomHex(t, 4)}
	dir := t.TempDir()
	conf := filepath.Join(dir, "conf")
	w.data = filepath.Join(dir, "data")
	state := filepath.Join(dir, "sessions")
	for _, d := range []string{"pages", "attic", "media/wiki", "media_attic", "media_meta", "meta", "cache", "index", "locks", "tmp", "log"} {
		if err := os.MkdirAll(filepath.Join(w.data, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sum := md5.Sum([]byte(dwPassword))
	writeFiles(t, dir, map[string]string{
		"sessions/": "",
		// As dokuwiki-addsite writes them: local.php, the savedir, users
		// and ACL (anyone reads, logged-in users edit).
		"conf/local.php": fmt.Sprintf("<?php\n$conf['title'] = 'fe-php wiki %s';\n$conf['savedir'] = %q;\n"+
			"$conf['useacl'] = 1;\n$conf['superuser'] = '@admin';\n", w.marker, w.data),
		"conf/acl.auth.php":    "*\t@ALL\t1\n*\t@user\t8\n",
		"conf/users.auth.php":  fmt.Sprintf("%s:%s:%s:editor@example.com:admin,user\n", dwUser, hex.EncodeToString(sum[:]), dwFullName),
		"data/pages/start.txt": "====== Welcome ======\n\nThis wiki is served by **fe-php**: " + w.marker + ".\n",
	})
	png, err := os.ReadFile("/var/lib/dokuwiki/data/media/wiki/dokuwiki-128.png")
	if err != nil {
		t.Fatalf("the dokuwiki package's sample media: %v", err)
	}
	if err := os.WriteFile(filepath.Join(w.data, "media", "wiki", "dokuwiki-128.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dwFarm, w.host)
	if err := os.Symlink(conf, link); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.Remove(link); err != nil {
			t.Errorf("removing %s: %v", link, err)
		}
	})

	cfg, err := os.ReadFile(filepath.Join(recipeExampleDir(t, "dokuwiki"), "fe-php.toml"))
	if err != nil {
		t.Fatal(err)
	}
	set := func(cfg, old, new string) string { return recipeSetLine(t, cfg, regexp.QuoteMeta(old), new) }
	config := set(string(cfg), `listen = "127.0.0.1:8080"`, "") // startServer picks a free port
	config = set(config, `"session.save_path" = "/var/lib/php/sessions"`, fmt.Sprintf("%q = %q", "session.save_path", state))
	if backend == "fastcgi" {
		fpm := fpmtest.Start(t, fpmtest.Options{Children: 3, DocRoot: "/usr/share/dokuwiki",
			ExtraINI: map[string]string{"session.save_path": state}})
		config = set(config, `fpm_socket = "/run/php/php8.2-fpm.sock"`, fmt.Sprintf("fpm_socket = %q", fpm.Address))
		config = set(config, `default_backend = "embedded"`, `default_backend = "fastcgi"`)
	}
	w.srv = startServer(t, config, nil)

	_, port, _ := net.SplitHostPort(w.srv.Addr)
	w.base = "http://" + w.host + ":" + port
	jar, _ := cookiejar.New(nil)
	addr := w.srv.Addr
	w.client = &http.Client{
		Jar:     jar,
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			// The site's host name is ours alone: every connection goes to
			// fe-php.
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, addr)
			},
			DisableCompression: true,
		},
	}
	return w
}

func testDokuWikiFlow(t *testing.T, w *dwSite) {
	var page []byte
	t.Run("/ is the start page from doku.php", func(t *testing.T) {
		resp, body := w.get(t, "/")
		wantStatus(t, resp, body, 200)
		if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("/: Content-Type %q", ct)
		}
		for _, want := range []string{
			"<title>start [fe-php wiki " + w.marker + "]</title>",
			`<meta name="generator" content="DokuWiki"/>`,
			"This wiki is served by <strong>fe-php</strong>: " + w.marker + ".",
		} {
			if !bytes.Contains(body, []byte(want)) {
				t.Errorf("the start page lacks %q: %s", want, trunc(body))
			}
		}
		appWantBackend(t, w.srv, resp, w.backend)
		page = body
		// doku.php by its name, and index.php sending to it.
		resp, body = w.get(t, "/doku.php?id=start")
		if resp.StatusCode != 200 || !bytes.Contains(body, []byte(w.marker)) {
			t.Errorf("/doku.php?id=start: %s: %s", describe(resp), trunc(body))
		}
		resp, body = w.do(t, mustRequest(t, "GET", w.base+"/index.php", nil), false)
		if resp.StatusCode != 302 || resp.Header.Get("Location") != "/doku.php?id=start" {
			t.Errorf("/index.php: %d to %q, want 302 to /doku.php?id=start", resp.StatusCode, resp.Header.Get("Location"))
		}
		// A path naming no file is fe-php's 404 (no front controller).
		resp, body = w.get(t, "/no-such-page")
		wantStatus(t, resp, body, 404)
	})

	t.Run("DokuWiki's private directories answer 403", func(t *testing.T) {
		for _, p := range []string{
			"/inc/init.php", "/inc/", "/inc/lang/en/lang.php", "/conf/local.php", "/conf/users.auth.php",
			"/data/pages/start.txt", "/data/cache/", "/bin/dwpage.php", "/vendor/autoload.php",
			"/install.php", "/lib/plugins/authpdo/conf/default.php",
			// Spellings that name the same files.
			"/%69nc/init.php", "/lib/../inc/init.php", "//conf//local.php", "/inc/init.php/x",
		} {
			// Sent verbatim (the Go client would clean some of these).
			resp, body := rawGet(t, w.srv.Addr, p)
			if resp.StatusCode != 403 {
				t.Errorf("GET %s: %d, want 403: %s", p, resp.StatusCode, trunc(body))
			}
			if bytes.Contains(body, []byte("<?php")) || bytes.Contains(body, []byte("$conf")) || bytes.Contains(body, []byte(w.marker)) {
				t.Errorf("GET %s leaked content: %s", p, trunc(body))
			}
		}
		resp, body := w.get(t, "/conf/local.php")
		wantStatus(t, resp, body, 403)
		appWantBackend(t, w.srv, resp, "deny")
		// Dotfiles (Debian links /usr/share/dokuwiki/.htaccess) are never
		// served either.
		resp, body = w.get(t, "/.htaccess")
		wantStatus(t, resp, body, 404)
	})

	t.Run("the template's assets", func(t *testing.T) {
		if page == nil {
			t.Skip("no start page")
		}
		// The logo, through Debian's lib/tpl link to /var/lib/dokuwiki/lib/tpl.
		m := regexp.MustCompile(`src="(/lib/tpl/dokuwiki/images/logo\.png)"`).FindSubmatch(page)
		if m == nil {
			t.Fatalf("the start page shows no logo: %s", trunc(page))
		}
		want, err := os.ReadFile("/usr/share/dokuwiki/lib/tpl/dokuwiki/images/logo.png")
		if err != nil {
			t.Fatal(err)
		}
		resp, body := w.get(t, string(m[1]))
		wantStatus(t, resp, body, 200)
		if !bytes.Equal(body, want) || resp.Header.Get("Content-Type") != "image/png" {
			t.Errorf("%s: %d bytes of %q, want the %d bytes on disk as image/png", m[1], len(body), resp.Header.Get("Content-Type"), len(want))
		}
		appWantBackend(t, w.srv, resp, "static")
		// The stylesheet DokuWiki builds (lib/exe/css.php, PHP).
		m = regexp.MustCompile(`<link rel="stylesheet" href="([^"]+)"`).FindSubmatch(page)
		if m == nil {
			t.Fatalf("the start page links no stylesheet: %s", trunc(page))
		}
		css := html.UnescapeString(string(m[1]))
		resp, body = w.get(t, css)
		wantStatus(t, resp, body, 200)
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/css") || !bytes.Contains(body, []byte(".dokuwiki")) {
			t.Errorf("%s: Content-Type %q: %s", css, ct, trunc(body))
		}
		appWantBackend(t, w.srv, resp, w.backend)
		// Media from the wiki's savedir, through lib/exe/fetch.php.
		want, err = os.ReadFile(filepath.Join(w.data, "media", "wiki", "dokuwiki-128.png"))
		if err != nil {
			t.Fatal(err)
		}
		resp, body = w.get(t, "/lib/exe/fetch.php?media=wiki:dokuwiki-128.png")
		wantStatus(t, resp, body, 200)
		if !bytes.Equal(body, want) || resp.Header.Get("Content-Type") != "image/png" {
			t.Errorf("fetch.php: %d bytes of %q, want the %d bytes of the media file as image/png", len(body), resp.Header.Get("Content-Type"), len(want))
		}
		// fetch.php answers conditional and range requests itself, with
		// status lines of its own ("HTTP/1.0 304 Not Modified", "HTTP/1.1
		// 206 Partial Content").
		req := mustRequest(t, "GET", w.base+"/lib/exe/fetch.php?media=wiki:dokuwiki-128.png", nil)
		req.Header.Set("If-None-Match", resp.Header.Get("Etag"))
		resp, body = w.do(t, req, false)
		if resp.StatusCode != 304 || len(body) != 0 {
			t.Errorf("fetch.php with If-None-Match %q: %d with %d bytes, want an empty 304", req.Header.Get("If-None-Match"), resp.StatusCode, len(body))
		}
		req = mustRequest(t, "GET", w.base+"/lib/exe/fetch.php?media=wiki:dokuwiki-128.png", nil)
		req.Header.Set("Range", "bytes=100-199")
		resp, body = w.do(t, req, false)
		if resp.StatusCode != 206 || !bytes.Equal(body, want[100:200]) || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes 100-199/%d", len(want)) {
			t.Errorf("fetch.php with Range: %d, Content-Range %q, %d bytes; want 206 with bytes 100-199", resp.StatusCode, resp.Header.Get("Content-Range"), len(body))
		}
	})

	t.Run("log in", func(t *testing.T) {
		resp, body := w.get(t, "/doku.php?id=start&do=login")
		wantStatus(t, resp, body, 200)
		form := dwForm(t, body, "dw__login")
		form.Set("u", dwUser)
		form.Set("p", dwPassword)
		resp, body = w.postForm(t, "/doku.php?id=start", form)
		wantStatus(t, resp, body, 200)
		if !bytes.Contains(body, []byte(dwFullName)) || !bytes.Contains(body, []byte("do=logout")) {
			t.Fatalf("not logged in after the login form (%s): %s", resp.Request.URL, dwMessages(body))
		}
	})

	id := "fephp:notes"
	file := filepath.Join(w.data, "pages", "fephp", "notes.txt")
	first := "====== Notes ======\n\nWritten through the **edit form** on " + w.backend + ": " + w.marker + "-one.\n"
	t.Run("a page made through the edit form", func(t *testing.T) {
		resp, body := w.edit(t, id, first, "")
		wantStatus(t, resp, body, 200)
		if resp.Request.Method != "GET" || resp.Request.URL.Query().Get("id") != id {
			t.Errorf("saving did not redirect to the page: ended at %s %s", resp.Request.Method, resp.Request.URL)
		}
		for _, want := range []string{">Notes</h1>", "Written through the <strong>edit form</strong> on " + w.backend + ": " + w.marker + "-one."} {
			if !bytes.Contains(body, []byte(want)) {
				t.Errorf("the saved page does not show %q: %s", want, dwMessages(body))
			}
		}
		got, err := os.ReadFile(file)
		if err != nil || strings.TrimSpace(string(got)) != strings.TrimSpace(first) {
			t.Errorf("%s: %q, %v; want the text sent", file, got, err)
		}
		// A new visitor (no cookies) reads it too.
		anon := *w.client
		anon.Jar = nil
		resp, err = anon.Get(w.base + "/doku.php?id=" + url.QueryEscape(id))
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Contains(body, []byte(w.marker+"-one")) {
			t.Errorf("the page is not shown: %s", describe(resp))
		}
	})

	t.Run("an edit with a forged sectok is refused, a real one saves", func(t *testing.T) {
		second := strings.Replace(first, w.marker+"-one", w.marker+"-two", 1)
		resp, body := w.edit(t, id, second, "forged")
		if !bytes.Contains(body, []byte("Security Token did not match")) {
			t.Errorf("a forged sectok: %s: %s", describe(resp), dwMessages(body))
		}
		if got, _ := os.ReadFile(file); !bytes.Contains(got, []byte(w.marker+"-one")) {
			t.Fatalf("a forged sectok changed the page: %q", got)
		}
		resp, body = w.edit(t, id, second, "")
		wantStatus(t, resp, body, 200)
		if !bytes.Contains(body, []byte(w.marker+"-two")) || bytes.Contains(body, []byte(w.marker+"-one")) {
			t.Errorf("the edited page does not show the new text only: %s", dwMessages(body))
		}
		// Recent changes list the page with the edit's summary.
		resp, body = w.get(t, "/doku.php?id=start&do=recent")
		wantStatus(t, resp, body, 200)
		if !bytes.Contains(body, []byte("id="+id)) || !bytes.Contains(body, []byte("from fe-php&#039;s test")) {
			t.Errorf("do=recent does not list %s with its summary: %s", id, trunc(body))
		}
	})
}

// edit opens the page's edit form, fills in text and saves; sectok, if
// not "", replaces the form's token.
func (w *dwSite) edit(t *testing.T, id, text, sectok string) (*http.Response, []byte) {
	t.Helper()
	resp, body := w.get(t, "/doku.php?id="+url.QueryEscape(id)+"&do=edit")
	wantStatus(t, resp, body, 200)
	form := dwForm(t, body, "dw__editform")
	if form.Get("sectok") == "" {
		t.Fatalf("the edit form has no sectok (logged in?): %s", dwMessages(body))
	}
	if sectok != "" {
		form.Set("sectok", sectok)
	}
	form.Set("wikitext", text)
	form.Set("summary", "from fe-php's test")
	form.Set("do[save]", "1")
	m := regexp.MustCompile(`<form [^>]*\baction="([^"]*)"[^>]*>`).FindSubmatch(dwFormHTML(t, body, "dw__editform"))
	if m == nil {
		t.Fatalf("no action on the edit form")
	}
	return w.postForm(t, html.UnescapeString(string(m[1])), form)
}

// dwForm returns the hidden fields of the form with the given id.
func dwForm(t *testing.T, page []byte, id string) url.Values {
	t.Helper()
	m := dwFormHTML(t, page, id)
	v := url.Values{}
	for _, f := range regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)"`).FindAllSubmatch(m, -1) {
		v.Set(html.UnescapeString(string(f[1])), html.UnescapeString(string(f[2])))
	}
	return v
}

// dwFormHTML is the form with the given id, from its tag to its end.
func dwFormHTML(t *testing.T, page []byte, id string) []byte {
	t.Helper()
	m := regexp.MustCompile(`(?s)<form [^>]*\bid="` + regexp.QuoteMeta(id) + `".*?</form>`).Find(page)
	if m == nil {
		t.Fatalf("no form %s on the page: %s", id, dwMessages(page))
	}
	return m
}

// dwMessages is the text of DokuWiki's messages (div.error, div.info,
// div.success) on a page, for failure messages.
func dwMessages(page []byte) string {
	var msgs []string
	for _, m := range regexp.MustCompile(`(?s)<div class="(?:error|info|success|notify)">(.*?)</div>`).FindAllSubmatch(page, -1) {
		text := regexp.MustCompile(`<[^>]*>`).ReplaceAll(m[1], nil)
		msgs = append(msgs, strings.Join(strings.Fields(html.UnescapeString(string(text))), " "))
	}
	if msgs == nil {
		return "(no message on the page) " + trunc(page)
	}
	return strings.Join(msgs, " | ")
}

func (w *dwSite) get(t *testing.T, path string) (*http.Response, []byte) {
	t.Helper()
	return w.do(t, mustRequest(t, "GET", w.base+path, nil), true)
}

func (w *dwSite) postForm(t *testing.T, path string, form url.Values) (*http.Response, []byte) {
	t.Helper()
	req := mustRequest(t, "POST", w.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return w.do(t, req, true)
}

// do sends req with the site's cookies, following redirects or not.
func (w *dwSite) do(t *testing.T, req *http.Request, follow bool) (*http.Response, []byte) {
	t.Helper()
	return clientDo(t, w.client, req, follow)
}
