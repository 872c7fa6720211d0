//go:build fephp_bridge

package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fe-php/fe-php/internal/testutil/fpmtest"
)

// The WordPress tests serve Debian's wordpress package with the spec's
// WordPress recipe as written in examples/wordpress/fe-php.toml: uploads,
// themes and wp-includes static, wp-admin/ and wp-login.php on a real
// php-fpm, everything else embedded. The site's database is a MariaDB the
// test starts (scripts/wp-site.sh, no network), and the site is installed
// by WordPress's own installer over HTTP (or HTTPS: wpOptions.TLS).

const (
	wpTitle    = "fe-php WordPress"
	wpUser     = "admin"
	wpPassword = "correct-horse-battery-staple-42"
)

// wpSite is one WordPress site served by fe-php.
type wpSite struct {
	srv    *Server
	fpm    *fpmtest.FPM
	dir    string // MariaDB and the static root (dir/webroot)
	host   string // the site's host name; Debian picks its config by it
	base   string // http://host:port, the site URL WordPress knows
	client *http.Client

	// With wpOptions.TLS, base is https://host:port on fe-php's HTTPS
	// listener, httpBase the plain one, and certFile (trusted by pool) the
	// site's self-signed certificate (with wpOptions.ACME, no certFile:
	// pool is the ACME CA's issuing root). Without, httpBase is base.
	httpBase string
	certFile string
	pool     *x509.CertPool
}

// wpOptions says how startWordPress serves the site.
type wpOptions struct {
	// TLS adds a [server.tls] section: HTTPS on a free port with a
	// self-signed certificate for the site's host name, plain HTTP
	// redirecting to it (server.https_redirect's default), and the
	// installer run over HTTPS, so that WordPress's siteurl and home are
	// https:// URLs.
	TLS bool
	// ACME, with TLS, has fe-php obtain the site's certificate from an
	// ACME CA instead (TestWordPressACME): the site's host name, fe-php's
	// fixed ports and its [server.tls] section are ACME's, and the site is
	// installed once the certificate is served.
	ACME *wpACME
}

// startWordPress starts MariaDB, php-fpm and fe-php, and installs the site.
func startWordPress(t *testing.T, opts wpOptions) *wpSite {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the WordPress test writes /etc/wordpress/config-HOST.php: run it as root (CI does)")
	}
	if _, err := os.Stat("/usr/share/wordpress/wp-settings.php"); err != nil {
		t.Fatal("Debian's wordpress package is not installed (scripts/deps.sh installs it)")
	}
	// A short directory: the MariaDB socket lives in it.
	dir, err := os.MkdirTemp("", "fephp-wp-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	w := &wpSite{dir: dir, host: "wp-" + randomHex(t, 6) + ".localhost"}
	if opts.ACME != nil {
		w.host = opts.ACME.host // the name the CA resolves and certifies
	}

	script := filepath.Join(repoRoot(t), "scripts", "wp-site.sh")
	if out, err := exec.Command("bash", script, "start", dir, w.host).CombinedOutput(); err != nil {
		t.Fatalf("wp-site.sh start: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("bash", script, "stop", dir, w.host).CombinedOutput(); err != nil {
			t.Errorf("wp-site.sh stop: %v\n%s", err, out)
		}
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "mysql.err")); err == nil {
				t.Logf("MariaDB log:\n%s", tail(string(b), 2000))
			}
		}
	})

	w.fpm = fpmtest.Start(t, fpmtest.Options{Children: 4, DocRoot: "/usr/share/wordpress"})
	cfg, err := os.ReadFile(filepath.Join(recipeExampleDir(t, "wordpress"), "fe-php.toml"))
	if err != nil {
		t.Fatal(err)
	}
	// Only where things are changes; the recipe block stays as written.
	set := func(cfg, old, new string) string { return recipeSetLine(t, cfg, regexp.QuoteMeta(old), new) }
	config := set(string(cfg), `fpm_socket = "/run/php/php8.2-fpm.sock"`, fmt.Sprintf("fpm_socket = %q", w.fpm.Address))
	config = set(config, `root = "/srv/wordpress-static"`, fmt.Sprintf("root = %q", filepath.Join(dir, "webroot")))
	config = set(config, `max_size = 5`, "max_size = 4")
	config = set(config, `listen = "127.0.0.1:8080"`, "") // startServer picks a free port
	var tlsConfig *tls.Config
	switch {
	case opts.ACME != nil:
		if !opts.TLS {
			t.Fatal("wpOptions.ACME needs TLS")
		}
		w.pool = opts.ACME.roots
		tlsConfig = &tls.Config{RootCAs: w.pool}
		config = set(config, `[php]`, opts.ACME.tlsSection(t)+"\n[php]")
	case opts.TLS:
		var keyFile string
		w.certFile, keyFile, w.pool = selfSigned(t, t.TempDir(), w.host)
		tlsConfig = &tls.Config{RootCAs: w.pool}
		config = set(config, `[php]`, fmt.Sprintf("[server.tls]\nlisten = \"127.0.0.1:0\"\ncert_file = %q\nkey_file = %q\n\n[php]", w.certFile, keyFile))
	}
	if opts.ACME != nil {
		w.srv = opts.ACME.start(t, config) // returns once the certificate is served
	} else {
		w.srv = startServer(t, config, nil)
	}

	_, port, _ := net.SplitHostPort(w.srv.Addr)
	w.base = "http://" + w.host + ":" + port
	w.httpBase = w.base
	jar, _ := cookiejar.New(nil)
	addr := w.srv.Addr
	tlsAddr, tlsPort := "", ""
	if opts.TLS {
		if w.srv.TLSAddr == "" {
			t.Fatalf("fe-php logged no HTTPS listener:\n%s", w.srv.Stderr())
		}
		tlsAddr = w.srv.TLSAddr
		_, tlsPort, _ = net.SplitHostPort(tlsAddr)
		w.base = "https://" + w.host + ":" + tlsPort
	}
	w.client = &http.Client{
		Jar:     jar,
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			// The site's host name is ours alone: every connection goes to
			// fe-php, whatever the resolver says of *.localhost (to its
			// HTTPS listener for the HTTPS port, else to its plain one).
			DialContext: func(ctx context.Context, network, hostPort string) (net.Conn, error) {
				var d net.Dialer
				if _, p, _ := net.SplitHostPort(hostPort); tlsAddr != "" && p == tlsPort {
					return d.DialContext(ctx, network, tlsAddr)
				}
				return d.DialContext(ctx, network, addr)
			},
			TLSClientConfig:    tlsConfig,
			ForceAttemptHTTP2:  opts.TLS,
			DisableCompression: true,
		},
	}

	// WordPress's installer, as a user runs it: step 1 then step 2.
	resp, body := w.get(t, "/")
	if resp.Request.URL.Path != "/wp-admin/install.php" {
		t.Fatalf("a new site should send / to the installer, ended at %s (%s)", resp.Request.URL, describe(resp))
	}
	resp, body = w.postForm(t, "/wp-admin/install.php?step=2", url.Values{
		"weblog_title": {wpTitle}, "user_name": {wpUser},
		"admin_password": {wpPassword}, "admin_password2": {wpPassword}, "pw_weak": {"1"},
		"admin_email": {"admin@example.com"}, "blog_public": {"0"}, "language": {""},
	})
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte("<h1>Success!</h1>")) {
		t.Fatalf("install step 2: %s\n%s", describe(resp), trunc(body))
	}
	return w
}

func TestWordPress(t *testing.T) {
	t.Parallel()
	w := startWordPress(t, wpOptions{})
	word := "fephp" + randomHex(t, 4) // unique, to search for
	postTitle := "Served by fe-php " + word

	t.Run("front page shows the site title", func(t *testing.T) {
		resp, body := w.get(t, "/")
		wantStatus(t, resp, body, 200)
		if !regexp.MustCompile(`<title>` + regexp.QuoteMeta(wpTitle)).Match(body) {
			t.Errorf("front page title is not %q: %s", wpTitle, trunc(body))
		}
		w.wantBackend(t, resp, "embedded")
		// The theme's fonts are served by the static backend.
		m := regexp.MustCompile(`/wp-content/themes/twentytwentythree/[^'"\s)]+\.woff2`).Find(body)
		if m == nil {
			t.Fatalf("the front page names no font of the theme")
		}
		resp, body = w.get(t, string(m))
		wantStatus(t, resp, body, 200)
		if ct := resp.Header.Get("Content-Type"); ct != "font/woff2" {
			t.Errorf("%s: Content-Type %q, want font/woff2", m, ct)
		}
		w.wantBackend(t, resp, "static")
	})

	t.Run("login with cookies reaches the dashboard", func(t *testing.T) {
		w.login(t)
		resp, body := w.get(t, "/wp-admin/")
		wantStatus(t, resp, body, 200)
		if !bytes.Contains(body, []byte("<h1>Dashboard</h1>")) {
			t.Errorf("no dashboard: %s", trunc(body))
		}
		w.wantBackend(t, resp, "fastcgi")
		// The server, not WordPress, adds the slash to a directory.
		resp, body = w.do(t, mustRequest(t, "GET", w.base+"/wp-admin", nil), false)
		if resp.StatusCode != 301 || resp.Header.Get("Location") != "/wp-admin/" {
			t.Errorf("/wp-admin: want 301 to /wp-admin/, got %s", describe(resp))
		}
	})

	var postURL string
	t.Run("a post made through the REST API is at its pretty permalink", func(t *testing.T) {
		nonce := w.restNonce(t)
		payload, _ := json.Marshal(map[string]string{"title": postTitle, "content": "<p>Hello from the REST API, " + word + ".</p>", "status": "publish"})
		req := mustRequest(t, "POST", w.base+"/wp-json/wp/v2/posts", bytes.NewReader(payload))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-WP-Nonce", nonce)
		resp, body := w.do(t, req, true)
		wantStatus(t, resp, body, 201)
		w.wantBackend(t, resp, "embedded")
		var post struct {
			ID   int    `json:"id"`
			Link string `json:"link"`
		}
		if err := json.Unmarshal(body, &post); err != nil || post.ID == 0 {
			t.Fatalf("REST answer is not a post: %v: %s", err, trunc(body))
		}
		if !regexp.MustCompile(`^` + regexp.QuoteMeta(w.base) + `/\d{4}/\d{2}/\d{2}/[a-z0-9-]+/$`).MatchString(post.Link) {
			t.Fatalf("permalink %q is not pretty (want /YYYY/MM/DD/slug/)", post.Link)
		}
		postURL = post.Link
		resp, body = w.get(t, postURL)
		wantStatus(t, resp, body, 200)
		if !bytes.Contains(body, []byte(postTitle)) {
			t.Errorf("the post page does not show its title: %s", trunc(body))
		}
		w.wantBackend(t, resp, "embedded")
	})

	t.Run("an image uploaded through the admin is served from uploads by static", func(t *testing.T) {
		img := testPNG(t, 640, 480)
		resp, body := w.get(t, "/wp-admin/media-new.php?browser-uploader")
		wantStatus(t, resp, body, 200)
		nonce := regexp.MustCompile(`name="_wpnonce" value="([0-9a-f]+)"`).FindSubmatch(body)
		if nonce == nil {
			t.Fatalf("no upload form nonce in media-new.php: %s", trunc(body))
		}
		var form bytes.Buffer
		mw := multipart.NewWriter(&form)
		mw.WriteField("post_id", "0")
		mw.WriteField("_wpnonce", string(nonce[1]))
		mw.WriteField("_wp_http_referer", "/wp-admin/media-new.php?browser-uploader")
		fw, _ := mw.CreateFormFile("async-upload", word+".png")
		fw.Write(img)
		mw.WriteField("html-upload", "Upload")
		mw.Close()
		req := mustRequest(t, "POST", w.base+"/wp-admin/media-new.php", &form)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		resp, body = w.do(t, req, false)
		if resp.StatusCode != 302 || !strings.Contains(resp.Header.Get("Location"), "upload.php") {
			t.Fatalf("upload: want a 302 to upload.php, got %s: %s", describe(resp), trunc(body))
		}
		w.wantBackend(t, resp, "fastcgi")

		// Where WordPress put it, and the thumbnail it made with GD.
		req = mustRequest(t, "GET", w.base+"/wp-json/wp/v2/media?search="+word, nil)
		req.Header.Set("X-WP-Nonce", w.restNonce(t))
		resp, body = w.do(t, req, true)
		wantStatus(t, resp, body, 200)
		var media []struct {
			SourceURL    string `json:"source_url"`
			MediaDetails struct {
				Sizes map[string]struct {
					SourceURL string `json:"source_url"`
				} `json:"sizes"`
			} `json:"media_details"`
		}
		if err := json.Unmarshal(body, &media); err != nil || len(media) != 1 {
			t.Fatalf("media search for %s: %v: %s", word, err, trunc(body))
		}
		src := media[0].SourceURL
		if !strings.HasPrefix(src, w.base+"/wp-content/uploads/") {
			t.Fatalf("upload URL %q is not under /wp-content/uploads/", src)
		}
		resp, body = w.get(t, src)
		wantStatus(t, resp, body, 200)
		if !bytes.Equal(body, img) || resp.Header.Get("Content-Type") != "image/png" {
			t.Errorf("uploaded image: got %d bytes of %s, want the %d bytes sent as image/png", len(body), resp.Header.Get("Content-Type"), len(img))
		}
		w.wantBackend(t, resp, "static")
		thumb, ok := media[0].MediaDetails.Sizes["thumbnail"]
		if !ok {
			t.Fatalf("WordPress made no thumbnail: %s", trunc(body))
		}
		resp, body = w.get(t, thumb.SourceURL)
		wantStatus(t, resp, body, 200)
		if cfg, err := png.DecodeConfig(bytes.NewReader(body)); err != nil || cfg.Width != 150 {
			t.Errorf("thumbnail is not a 150 px wide PNG: %v %+v", err, cfg)
		}
	})

	t.Run("search finds the post", func(t *testing.T) {
		resp, body := w.get(t, "/?s="+word)
		wantStatus(t, resp, body, 200)
		if !bytes.Contains(body, []byte(postTitle)) {
			t.Errorf("search for %s does not list %q: %s", word, postTitle, trunc(body))
		}
		w.wantBackend(t, resp, "embedded")
	})

	t.Run("the RSS feed lists the post", func(t *testing.T) {
		resp, body := w.get(t, "/feed/")
		wantStatus(t, resp, body, 200)
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/rss+xml") {
			t.Errorf("feed Content-Type %q", ct)
		}
		if !bytes.Contains(body, []byte("<title>"+postTitle+"</title>")) {
			t.Errorf("the feed does not list %q: %s", postTitle, trunc(body))
		}
	})

	t.Run("PHP in uploads never runs", func(t *testing.T) {
		evil := filepath.Join(w.dir, "webroot", "wp-content", "uploads", "evil.php")
		if err := os.WriteFile(evil, []byte(`<?php echo "EXEC"."UTED";`), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"/wp-content/uploads/evil.php", "/wp-content/uploads/evil.php/x.php", "/wp-content/uploads/evil.php%00.png"} {
			resp, body := w.do(t, mustRequest(t, "GET", w.base+p, nil), false)
			if resp.StatusCode < 400 || bytes.Contains(body, []byte("EXECUTED")) || bytes.Contains(body, []byte("<?php")) {
				t.Errorf("GET %s: %s: %s", p, describe(resp), trunc(body))
			}
		}
	})

	t.Run("browser", func(t *testing.T) {
		testWordPressBrowser(t, w)
	})
}

// login logs in through wp-login.php as a browser does: a GET sets the
// test cookie, the form POST sets the auth cookies.
func (w *wpSite) login(t *testing.T) {
	t.Helper()
	resp, body := w.get(t, "/wp-login.php")
	wantStatus(t, resp, body, 200)
	w.wantBackend(t, resp, "fastcgi")
	resp, body = w.postForm(t, "/wp-login.php", url.Values{
		"log": {wpUser}, "pwd": {wpPassword}, "wp-submit": {"Log In"},
		"redirect_to": {w.base + "/wp-admin/"}, "testcookie": {"1"},
	})
	if resp.Request.URL.Path != "/wp-admin/" {
		t.Fatalf("login ended at %s (status %d), not /wp-admin/; WordPress says: %s", resp.Request.URL, resp.StatusCode, loginError(body))
	}
}

// loginError is the text of the error wp-login.php shows (#login_error),
// e.g. that cookies are blocked or the password is wrong.
func loginError(page []byte) string {
	m := regexp.MustCompile(`(?s)<div id="login_error">(.*?)</div>`).FindSubmatch(page)
	if m == nil {
		return "(no #login_error on the page) " + trunc(page)
	}
	text := regexp.MustCompile(`<[^>]*>`).ReplaceAll(m[1], nil)
	return strings.Join(strings.Fields(string(text)), " ")
}

// restNonce asks WordPress for a REST API nonce (cookie authentication,
// as the block editor does).
func (w *wpSite) restNonce(t *testing.T) string {
	t.Helper()
	resp, body := w.get(t, "/wp-admin/admin-ajax.php?action=rest-nonce")
	wantStatus(t, resp, body, 200)
	if !regexp.MustCompile(`^[0-9a-f]{10}$`).Match(body) {
		t.Fatalf("rest-nonce answered %q (logged in?)", trunc(body))
	}
	return string(body)
}

func (w *wpSite) get(t *testing.T, pathOrURL string) (*http.Response, []byte) {
	t.Helper()
	if strings.HasPrefix(pathOrURL, "/") {
		pathOrURL = w.base + pathOrURL
	}
	return w.do(t, mustRequest(t, "GET", pathOrURL, nil), true)
}

func (w *wpSite) postForm(t *testing.T, path string, form url.Values) (*http.Response, []byte) {
	t.Helper()
	req := mustRequest(t, "POST", w.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return w.do(t, req, true)
}

// do sends req with the site's cookies, following redirects or not.
func (w *wpSite) do(t *testing.T, req *http.Request, follow bool) (*http.Response, []byte) {
	t.Helper()
	return clientDo(t, w.client, req, follow)
}

// wantBackend checks, in fe-php's access log, which backend served resp.
func (w *wpSite) wantBackend(t *testing.T, resp *http.Response, want string) {
	t.Helper()
	id := resp.Header.Get("X-Request-Id")
	if id == "" {
		t.Fatalf("%s: no X-Request-Id", resp.Request.URL)
	}
	re := regexp.MustCompile(`id=` + regexp.QuoteMeta(id) + ` .* backend=(\S+)`)
	var got string
	waitFor(t, 5*time.Second, "access log line of "+id, func() bool {
		m := re.FindStringSubmatch(w.srv.Stdout())
		if m != nil {
			got = m[1]
		}
		return m != nil
	})
	if got != want {
		t.Errorf("%s %s was served by %s, want %s", resp.Request.Method, resp.Request.URL.Path, got, want)
	}
}

func mustRequest(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// testPNG draws a w x h gradient, a real image for GD to resize.
func testPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 128, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
