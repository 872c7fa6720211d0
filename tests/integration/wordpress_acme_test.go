//go:build fephp_bridge

package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/fe-php/fe-php/internal/testutil/pebbletest"
)

// TestWordPressACME is the ACME issue's "done when" end to end: Debian's
// WordPress with the spec's recipe (examples/wordpress/fe-php.toml) over
// HTTPS with a certificate fe-php obtains over ACME from a local CA
// (Pebble, built and run as in TestACMEEndToEnd, validating both
// challenge types on fe-php's own listeners), on HTTP/2 and HTTP/3 (the
// same port, over UDP), compressed, with HTTPS=on in PHP on both PHP
// backends. WordPress is installed over HTTPS once the certificate is
// served; every request after that goes through Go clients that trust
// Pebble's issuing root alone.
//
// What PHP saw comes from a must-use plugin the test drops into the
// site's own wp-content (X-Test-PHP on every response WordPress makes),
// which backend served a request from fe-php's access log, and, as
// WordPress itself tells it, from the login: wp-login.php (PHP-FPM) sets
// the secure auth cookie (wordpress_sec_...) only when is_ssl(), and
// /wp-admin/ (PHP-FPM) accepts only that cookie over HTTPS.
func TestWordPressACME(t *testing.T) {
	t.Parallel()
	pebbletest.Build(t) // once, before anything starts
	a := newWPACME(t)
	w := startWordPress(t, wpOptions{TLS: true, ACME: a}) // returns once the certificate is served
	_, tlsPort, _ := net.SplitHostPort(w.srv.TLSAddr)
	wpReportPHP(t, w)

	h2 := wpProto{name: "h2", proto: "HTTP/2.0", rt: w.client.Transport}
	// HTTP/3 on the port Alt-Svc names, on fe-php's TLS address over UDP.
	h3 := wpProto{name: "h3", proto: "HTTP/3.0", rt: a.h3Transport(t, net.JoinHostPort("127.0.0.1", tlsPort))}
	protos := []wpProto{h2, h3}

	t.Run("certificate", func(t *testing.T) {
		// Pebble's chain for the site's name alone; a client trusting only
		// the system's roots refuses it.
		checkACMEChain(t, w.srv.TLSAddr, a.host, a.roots)
		if w.srv.H3Addr != w.srv.TLSAddr {
			t.Errorf("fe-php serves HTTP/3 on %q, want the HTTPS port %s (over UDP)", w.srv.H3Addr, w.srv.TLSAddr)
		}
		if n := logCount(w.srv.Stderr(), "level=INFO", "certs: certificate obtained", "domain="+a.host); n != 1 {
			t.Errorf("%d log lines say the certificate was obtained, want 1", n)
		}
		http01, valid, invalid := pebbleValidations(a.pb, a.hostPort())
		if valid != 1 || invalid != 0 {
			t.Errorf("Pebble set %d authorization(s) valid and %d invalid, want 1 and 0", valid, invalid)
		}
		challenge := "TLS-ALPN-01 (on fe-php's HTTPS listener)"
		if http01 > 0 {
			challenge = "HTTP-01 (on fe-php's plain listener)"
		}
		t.Logf("Pebble validated the site's name by %s", challenge)
		if errs := logLines(w.srv.Stderr(), "level=ERROR"); errs != "" {
			t.Errorf("fe-php logged errors:\n%s", errs)
		}
	})

	t.Run("plain HTTP is a 308 to HTTPS", func(t *testing.T) {
		resp, body := w.do(t, mustRequest(t, "GET", w.httpBase+"/?p=1", nil), false)
		if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != w.base+"/?p=1" {
			t.Errorf("GET %s/?p=1: %d, Location %q; want 308 to %s/?p=1: %s", w.httpBase, resp.StatusCode, resp.Header.Get("Location"), w.base, trunc(body))
		}
	})

	var serial string // the certificate's, as the first response came with it
	for _, p := range protos {
		t.Run("front page over "+p.name, func(t *testing.T) {
			site := w.over(p, nil)
			req := mustRequest(t, "GET", w.base+"/", nil)
			req.Header.Set("Accept-Encoding", "zstd, gzip")
			resp, body := site.do(t, req, false)
			wantStatus(t, resp, body, 200)
			site.wantACME(t, resp, p, "embedded")
			html := wantCompressedBody(t, resp, body)
			if !regexp.MustCompile(`<title>` + regexp.QuoteMeta(wpTitle)).Match(html) {
				t.Errorf("the front page's title is not %q: %s", wpTitle, trunc(html))
			}
			if !bytes.Contains(html, []byte(`"`+w.base+`/`)) || bytes.Contains(html, []byte("http://"+a.host)) {
				t.Errorf("the front page does not link https:// URLs of %s only", w.base)
			}
			// Alt-Svc advertises HTTP/3 on the HTTPS port (over HTTP/3
			// itself too: fe-php sets it on every TLS response).
			if got := resp.Header.Get("Alt-Svc"); !strings.Contains(got, `h3=":`+tlsPort+`"`) {
				t.Errorf("Alt-Svc %q, want h3 on port %s", got, tlsPort)
			}
			s := fmt.Sprintf("%x", resp.TLS.PeerCertificates[0].SerialNumber)
			if serial == "" {
				serial = s
			} else if s != serial {
				t.Errorf("over %s the certificate's serial is %s, over the other protocol %s", p.name, s, serial)
			}
			t.Logf("%s: GET / %d over %s, Content-Encoding %s, %d bytes (%d decoded), Alt-Svc %q, certificate %s issued by %q, X-Test-PHP %s",
				p.name, resp.StatusCode, resp.Proto, resp.Header.Get("Content-Encoding"), len(body), len(html),
				resp.Header.Get("Alt-Svc"), s, resp.TLS.PeerCertificates[0].Issuer.CommonName, resp.Header.Get("X-Test-PHP"))
		})
	}

	for _, p := range protos {
		t.Run("WordPress's own URLs are https over "+p.name, func(t *testing.T) {
			// Not /wp-json/: the installer's loopback request that turns on
			// pretty permalinks does not trust Pebble's certificate.
			site := w.over(p, nil)
			resp, body := site.get(t, "/?rest_route=/")
			wantStatus(t, resp, body, 200)
			site.wantACME(t, resp, p, "embedded")
			var index struct {
				URL  string `json:"url"`
				Home string `json:"home"`
			}
			decodeJSON(t, resp, body, &index)
			if index.URL != w.base || index.Home != w.base {
				t.Errorf("WordPress's siteurl %q and home %q, want both %q", index.URL, index.Home, w.base)
			}
		})
	}

	// Log in over each protocol (a fresh cookie jar each time), then load
	// the dashboard over both.
	for _, login := range protos {
		t.Run("log in over "+login.name, func(t *testing.T) {
			jar, _ := cookiejar.New(nil)
			w.over(login, jar).acmeLogIn(t, login)
			for _, p := range protos {
				site := w.over(p, jar)
				req := mustRequest(t, "GET", w.base+"/wp-admin/", nil)
				req.Header.Set("Accept-Encoding", "zstd, gzip")
				resp, body := site.do(t, req, false)
				if resp.StatusCode != 200 {
					t.Fatalf("GET /wp-admin/ over %s after the login over %s: %d, Location %q (the secure auth cookie refused?): %s",
						p.name, login.name, resp.StatusCode, resp.Header.Get("Location"), trunc(body))
				}
				site.wantACME(t, resp, p, "fastcgi")
				if html := wantCompressedBody(t, resp, body); !bytes.Contains(html, []byte("<h1>Dashboard</h1>")) {
					t.Errorf("GET /wp-admin/ over %s: no dashboard: %s", p.name, trunc(html))
				}
				t.Logf("%s: GET /wp-admin/ %d over %s, Content-Encoding %s, X-Test-PHP %s", p.name, resp.StatusCode, resp.Proto,
					resp.Header.Get("Content-Encoding"), resp.Header.Get("X-Test-PHP"))
			}
		})
	}
}

// wpACME is a site's ACME setup (wpOptions.ACME): its host name, fe-php's
// two ports, fixed before anything starts, and a Pebble that resolves the
// name (only) to 127.0.0.1 and validates HTTP-01 and TLS-ALPN-01 on those
// ports, whichever certmagic tries.
type wpACME struct {
	host              string
	httpAddr, tlsAddr string
	pb                *pebbletest.Pebble
	roots             *x509.CertPool // Pebble's issuing root (/roots/0)
}

func newWPACME(t *testing.T) *wpACME {
	t.Helper()
	httpPort, tlsPort := freePortsTLSUDP(t)
	a := &wpACME{
		host:     "wp-" + randomHex(t, 6) + ".localhost",
		httpAddr: fmt.Sprintf("127.0.0.1:%d", httpPort),
		tlsAddr:  fmt.Sprintf("127.0.0.1:%d", tlsPort),
	}
	a.pb = pebbletest.Start(t, pebbletest.Options{HTTPPort: httpPort, TLSPort: tlsPort, Validity: 90 * 24 * time.Hour, Domain: a.host})
	a.roots = a.pb.IssuingRoot(t)
	return a
}

// tlsSection is the [server.tls] section: the site's name over ACME from
// Pebble, a storage directory of its own, HTTP/3.
func (a *wpACME) tlsSection(t *testing.T) string {
	return fmt.Sprintf(`[server.tls]
listen = %q
domains = [%q]
acme_email = "ops@fe-php.test"
acme_ca = %q
acme_ca_root = %q
storage_dir = %q
http3 = true
`, a.tlsAddr, a.host, a.pb.Directory, a.pb.MiniCA, t.TempDir())
}

// start starts fe-php with config on the fixed ports and waits (90s at
// most) until its HTTPS listener serves the site's certificate, verified
// against Pebble's root.
func (a *wpACME) start(t *testing.T, config string) *Server {
	t.Helper()
	s := startServerAt(t, a.httpAddr, config, nil)
	if s.Addr != a.httpAddr || s.TLSAddr != a.tlsAddr {
		t.Fatalf("fe-php serves on %s and %s, want %s and %s (the ports Pebble validates on)", s.Addr, s.TLSAddr, a.httpAddr, a.tlsAddr)
	}
	if s.H3Addr == "" {
		t.Fatalf("fe-php logged no HTTP/3 listener:\n%s", s.Stderr())
	}
	waitACMECert(t, a.tlsAddr, a.host, a.roots, 90*time.Second, "the site's certificate from Pebble", nil)
	return s
}

// hostPort is the site's name with fe-php's plain port, as in HTTP-01
// validation URLs.
func (a *wpACME) hostPort() string {
	_, port, _ := net.SplitHostPort(a.httpAddr)
	return a.host + ":" + port
}

// h3Transport speaks HTTP/3 to addr (UDP) for the site's name, trusting
// Pebble's root only, without asking for compression by itself (as the
// site's HTTP/2 client).
func (a *wpACME) h3Transport(t *testing.T, addr string) *http3.Transport {
	tr := &http3.Transport{
		TLSClientConfig:    &tls.Config{RootCAs: a.roots, ServerName: a.host},
		DisableCompression: true,
		Dial: func(ctx context.Context, _ string, tlsCfg *tls.Config, cfg *quic.Config) (*quic.Conn, error) {
			return quic.DialAddrEarly(ctx, addr, tlsCfg, cfg)
		},
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// freePortsTLSUDP is freePorts, the second port free over UDP as well
// (HTTP/3 shares the HTTPS port).
func freePortsTLSUDP(t *testing.T) (int, int) {
	t.Helper()
	for range 20 {
		httpPort, tlsPort := freePorts(t)
		pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", tlsPort))
		if err == nil {
			pc.Close()
			return httpPort, tlsPort
		}
	}
	t.Fatal("no port free over both TCP and UDP on 127.0.0.1")
	return 0, 0
}

// wpProto is one of the protocols the site is tested over.
type wpProto struct {
	name, proto string // "h2", "HTTP/2.0"
	rt          http.RoundTripper
}

// over is the site with a client over p with jar (nil: w's own).
func (w *wpSite) over(p wpProto, jar http.CookieJar) *wpSite {
	c := *w
	if jar == nil {
		jar = w.client.Jar
	}
	c.client = &http.Client{Jar: jar, Transport: p.rt, Timeout: w.client.Timeout}
	return &c
}

// wpReportPHP drops a must-use plugin into the site's wp-content that
// tells, in X-Test-PHP on every response of WordPress, what PHP saw of the
// request.
func wpReportPHP(t *testing.T, w *wpSite) {
	t.Helper()
	dir := filepath.Join(w.dir, "webroot", "wp-content", "mu-plugins")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	const plugin = `<?php
// Written by fe-php's TestWordPressACME: what PHP saw of the request.
header('X-Test-PHP: ' . http_build_query([
	'sapi' => PHP_SAPI,
	'HTTPS' => $_SERVER['HTTPS'] ?? '',
	'REQUEST_SCHEME' => $_SERVER['REQUEST_SCHEME'] ?? '',
	'SERVER_PORT' => $_SERVER['SERVER_PORT'] ?? '',
	'SERVER_PROTOCOL' => $_SERVER['SERVER_PROTOCOL'] ?? '',
	'is_ssl' => is_ssl() ? '1' : '0',
]));
`
	if err := os.WriteFile(filepath.Join(dir, "fe-php-test-https.php"), []byte(plugin), 0o644); err != nil {
		t.Fatal(err)
	}
}

// wantACME checks a response of the site over p: its protocol, the
// certificate (verified for the site's name), the backend and protocol
// of fe-php's access log line, and that PHP (of that backend's SAPI) saw
// HTTPS=on on the HTTPS port.
func (w *wpSite) wantACME(t *testing.T, resp *http.Response, p wpProto, backend string) {
	t.Helper()
	what := fmt.Sprintf("%s %s over %s", resp.Request.Method, resp.Request.URL.RequestURI(), p.name)
	if resp.Proto != p.proto {
		t.Errorf("%s: protocol %s, want %s", what, resp.Proto, p.proto)
	}
	if resp.TLS == nil || len(resp.TLS.VerifiedChains) == 0 {
		t.Errorf("%s: no verified TLS chain", what)
	} else if leaf := resp.TLS.PeerCertificates[0]; !slices.Equal(leaf.DNSNames, []string{w.host}) {
		t.Errorf("%s: a certificate for %v, want [%s]", what, leaf.DNSNames, w.host)
	}
	if got := w.accessLog(t, resp.Header.Get("X-Request-Id")); got["backend"] != backend || got["proto"] != p.proto {
		t.Errorf("%s: the access log says backend=%s proto=%s, want %s and %s", what, got["backend"], got["proto"], backend, p.proto)
	}
	seen, err := url.ParseQuery(resp.Header.Get("X-Test-PHP"))
	if err != nil || len(seen) == 0 {
		t.Errorf("%s: X-Test-PHP %q (the must-use plugin did not run?)", what, resp.Header.Get("X-Test-PHP"))
		return
	}
	_, tlsPort, _ := net.SplitHostPort(w.srv.TLSAddr)
	sapi := map[string]string{"embedded": "fe-php", "fastcgi": "fpm-fcgi"}[backend]
	for k, want := range map[string]string{"sapi": sapi, "HTTPS": "on", "REQUEST_SCHEME": "https",
		"SERVER_PORT": tlsPort, "SERVER_PROTOCOL": p.proto, "is_ssl": "1"} {
		if got := seen.Get(k); got != want {
			t.Errorf("%s: PHP saw %s=%q, want %q (X-Test-PHP: %s)", what, k, got, want, resp.Header.Get("X-Test-PHP"))
		}
	}
}

// acmeLogIn logs in through wp-login.php over p as a browser does (the
// GET sets the test cookie, the form POST the auth cookies), checks that
// PHP-FPM answered over HTTPS with WordPress's secure auth cookie.
func (w *wpSite) acmeLogIn(t *testing.T, p wpProto) {
	t.Helper()
	resp, body := w.get(t, "/wp-login.php")
	wantStatus(t, resp, body, 200)
	w.wantACME(t, resp, p, "fastcgi")
	form := url.Values{"log": {wpUser}, "pwd": {wpPassword}, "wp-submit": {"Log In"},
		"redirect_to": {w.base + "/wp-admin/"}, "testcookie": {"1"}}
	req := mustRequest(t, "POST", w.base+"/wp-login.php", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, body = w.do(t, req, false)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != w.base+"/wp-admin/" {
		t.Fatalf("POST /wp-login.php over %s: %d, Location %q; want 302 to %s/wp-admin/; WordPress says: %s",
			p.name, resp.StatusCode, resp.Header.Get("Location"), w.base, loginError(body))
	}
	w.wantACME(t, resp, p, "fastcgi")
	// is_ssl() on PHP-FPM: the auth cookie is the secure one, for
	// /wp-admin/ and with the Secure flag, and so is the logged-in one.
	var names []string
	var sec, loggedIn bool
	for _, c := range resp.Cookies() {
		names = append(names, fmt.Sprintf("%s (path %s, secure %v)", c.Name, c.Path, c.Secure))
		switch {
		case c.Value == "":
		case strings.HasPrefix(c.Name, "wordpress_sec_") && c.Secure && c.Path == "/wp-admin":
			sec = true
		case strings.HasPrefix(c.Name, "wordpress_logged_in_") && c.Secure:
			loggedIn = true
		case regexp.MustCompile(`^wordpress_[0-9a-f]{32}$`).MatchString(c.Name):
			t.Errorf("POST /wp-login.php over %s: the plain-HTTP auth cookie %s (is_ssl() false on PHP-FPM?)", p.name, c.Name)
		}
	}
	if !sec || !loggedIn {
		t.Errorf("POST /wp-login.php over %s: want a secure wordpress_sec_ cookie for /wp-admin and a secure wordpress_logged_in_ one; got %v", p.name, names)
	} else {
		t.Logf("%s: POST /wp-login.php %d over %s, cookies %v", p.name, resp.StatusCode, resp.Proto, names)
	}
}

// wantCompressedBody wants resp compressed (zstd or gzip, as asked) with
// Vary: Accept-Encoding, and returns body decoded.
func wantCompressedBody(t *testing.T, resp *http.Response, body []byte) []byte {
	t.Helper()
	enc := resp.Header.Get("Content-Encoding")
	if enc != "zstd" && enc != "gzip" {
		t.Errorf("%s over %s: Content-Encoding %q, want zstd or gzip (asked for with Accept-Encoding)", describe(resp), resp.Proto, enc)
		return body
	}
	if !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
		t.Errorf("%s over %s: compressed, but Vary %q", describe(resp), resp.Proto, resp.Header.Get("Vary"))
	}
	return decode(t, enc, body)
}

// logLines is the lines of log containing sub.
func logLines(log, sub string) string {
	var b strings.Builder
	for line := range strings.Lines(log) {
		if strings.Contains(line, sub) {
			b.WriteString(line)
		}
	}
	return b.String()
}
