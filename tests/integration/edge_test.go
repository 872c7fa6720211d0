//go:build fephp_bridge

package integration

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// edgeHost is the name the edge tests' certificates are for.
const edgeHost = "site.test"

// selfSigned writes a self-signed certificate for names (and 127.0.0.1)
// and its key into dir, and returns their paths and a pool trusting it.
func selfSigned(t *testing.T, dir string, names ...string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// tlsClient speaks HTTPS to addr whatever the URL's host (edgeHost, for
// SNI and Host), over HTTP/2 unless h1.
func tlsClient(pool *x509.CertPool, addr string, h1 bool) *http.Client {
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: edgeHost},
		ForceAttemptHTTP2: !h1,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	if h1 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// h3Client speaks HTTP/3 to addr.
func h3Client(t *testing.T, pool *x509.CertPool, addr string) *http.Client {
	tr := &http3.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: edgeHost},
		Dial: func(ctx context.Context, _ string, tlsCfg *tls.Config, cfg *quic.Config) (*quic.Conn, error) {
			return quic.DialAddrEarly(ctx, addr, tlsCfg, cfg)
		},
	}
	t.Cleanup(func() { tr.Close() })
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

// fetchURL GETs url through c with headers (name, value pairs; "Host"
// sets the request's host) and reads the body.
func fetchURL(t *testing.T, c *http.Client, url string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if strings.EqualFold(headers[i], "Host") {
			req.Host = headers[i+1]
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	return clientDo(t, c, req, true)
}

func serverVars(t *testing.T, resp *http.Response, body []byte) map[string]any {
	t.Helper()
	var d phpDump
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %s", describe(resp), trunc(body))
	}
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatalf("%v: %s", err, trunc(body))
	}
	return d.Server
}

// startTLS starts fe-php with HTTPS and HTTP/3 on a self-signed
// certificate for edgeHost, the test site of testdata/php on the embedded
// backend, and extra config.
func startTLS(t *testing.T, extraServer, extraTLS, rest string) (*Server, *x509.CertPool, string) {
	t.Helper()
	root, state := newPHPSiteDir(t)
	certFile, keyFile, pool := selfSigned(t, t.TempDir(), edgeHost)
	s := startServer(t, fmt.Sprintf(`[server]
%s

[server.tls]
listen = "127.0.0.1:0"
cert_file = %q
key_file = %q
http3 = true
%s

[php]
document_root = %q
worker_pool_size = 2

%s
`, extraServer, certFile, keyFile, extraTLS, root, rest), nil)
	if s.TLSAddr == "" || s.H3Addr == "" {
		t.Fatalf("fe-php logged no HTTPS or HTTP/3 listener:\n%s", s.Stderr())
	}
	return s, pool, state
}

// HTTPS on HTTP/2, HTTP/1.1 and HTTP/3: PHP sees the request as secure
// (HTTPS, REQUEST_SCHEME, SERVER_PORT, SSL_PROTOCOL), the response has
// HSTS and Alt-Svc, and plain HTTP is redirected to HTTPS.
func TestHTTPSAndProtocols(t *testing.T) {
	t.Parallel()
	s, pool, _ := startTLS(t, "", `hsts = "max-age=600"`, "")
	_, tlsPort, _ := net.SplitHostPort(s.TLSAddr)
	url := "https://" + edgeHost + "/info.php?a=1"
	for _, c := range []struct {
		name, proto string
		client      *http.Client
	}{
		{"h2", "HTTP/2.0", tlsClient(pool, s.TLSAddr, false)},
		{"h1", "HTTP/1.1", tlsClient(pool, s.TLSAddr, true)},
		{"h3", "HTTP/3.0", h3Client(t, pool, s.H3Addr)},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := fetchURL(t, c.client, url)
			if resp.Proto != c.proto {
				t.Errorf("protocol %s, want %s", resp.Proto, c.proto)
			}
			sv := serverVars(t, resp, body)
			for k, want := range map[string]string{"HTTPS": "on", "REQUEST_SCHEME": "https", "SERVER_PORT": tlsPort,
				"SERVER_PROTOCOL": c.proto, "SSL_PROTOCOL": "TLSv1.3", "HTTP_HOST": edgeHost, "SERVER_NAME": edgeHost} {
				if got := fmt.Sprint(sv[k]); got != want {
					t.Errorf("$_SERVER[%s] = %q, want %q", k, got, want)
				}
			}
			if got := fmt.Sprint(sv["SSL_CIPHER"]); !strings.HasPrefix(got, "TLS_") {
				t.Errorf("$_SERVER[SSL_CIPHER] = %q", got)
			}
			if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=600" {
				t.Errorf("Strict-Transport-Security %q", got)
			}
			if got := resp.Header.Get("Alt-Svc"); got != fmt.Sprintf(`h3=":%s"; ma=86400`, tlsPort) {
				t.Errorf("Alt-Svc %q", got)
			}
		})
	}

	// Plain HTTP: a 308 to the same URL on HTTPS, nothing else.
	resp, _ := hostGet(t, s.Addr, edgeHost, "/info.php?a=1")
	if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != "https://"+edgeHost+":"+tlsPort+"/info.php?a=1" {
		t.Errorf("plain HTTP: %s, Location %q; want a 308 to https", describe(resp), resp.Header.Get("Location"))
	}
	if resp.Header.Get("Strict-Transport-Security") != "" {
		t.Error("HSTS sent over plain HTTP")
	}
}

// Streaming and fastcgi_finish_request() behave on HTTP/2 as on
// HTTP/1.1: a flushed part arrives while the script still runs.
func TestHTTP2Streaming(t *testing.T) {
	t.Parallel()
	s, pool, state := startTLS(t, "", "", "")
	c := tlsClient(pool, s.TLSAddr, false)
	req, _ := http.NewRequest("GET", "https://"+edgeHost+"/stream.php?go=h2go&mark=h2mark", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Proto != "HTTP/2.0" {
		t.Fatalf("protocol %s", resp.Proto)
	}
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); line != "first\n" {
		t.Fatalf("first streamed line: %q, %v", line, err)
	}
	// The script waits for this file: "first" came while it ran.
	if err := os.WriteFile(filepath.Join(state, "h2go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if rest, _ := io.ReadAll(br); string(rest) != "second\n" {
		t.Errorf("the rest: %q", rest)
	}
}

// The host names served: allowed_hosts answers 421 to others, and
// server_name is the SERVER_NAME PHP sees whatever the Host.
func TestAllowedHostsAndServerName(t *testing.T) {
	t.Parallel()
	root, _ := newPHPSiteDir(t)
	s := startServer(t, fmt.Sprintf(`[server]
server_name = "www.example.com"
allowed_hosts = ["example.com", "www.example.com", "*.example.org"]

[php]
document_root = %q
worker_pool_size = 1
`, root), nil)
	for host, want := range map[string]int{"example.com": 200, "EXAMPLE.com:8080": 200, "a.example.org": 200,
		"b.a.example.org": 200, "example.org": 421, "evil.com": 421, "example.com.evil.com": 421, "127.0.0.1": 421} {
		resp, body := hostGet(t, s.Addr, host, "/info.php")
		if resp.StatusCode != want {
			t.Errorf("Host %s: %s, want %d", host, describe(resp), want)
			continue
		}
		if want == 200 {
			if got := fmt.Sprint(serverVars(t, resp, body)["SERVER_NAME"]); got != "www.example.com" {
				t.Errorf("Host %s: SERVER_NAME %q, want server_name's", host, got)
			}
		}
	}
}

// Response headers from the configuration: [server] headers on every
// response, a rule's over them (and over PHP's), "-Name" removing one.
func TestConfiguredHeaders(t *testing.T) {
	t.Parallel()
	root, _ := newPHPSiteDir(t)
	s := startServer(t, fmt.Sprintf(`[server]
headers = { "X-Frame-Options" = "SAMEORIGIN", "-Server" = "" }

[php]
document_root = %q
worker_pool_size = 1

[[backend.routing_rules]]
pattern = { type = "prefix", value = "/css/" }
backend = "static"
headers = { "Cache-Control" = "public, max-age=31536000, immutable" }

[[backend.routing_rules]]
pattern = { type = "exact", value = "/raw.html" }
backend = "static"
headers = { "Cache-Control" = "public, no-transform" }

[[backend.routing_rules]]
pattern = { type = "exact", value = "/cachecontrol.php" }
backend = "embedded"
headers = { "Cache-Control" = "no-store", "-X-Frame-Options" = "" }
`, root), nil)
	writeFiles(t, root, map[string]string{"raw.html": strings.Repeat("<p>not to be transformed</p>\n", 200)})
	css, _ := filepath.Glob(filepath.Join(root, "css", "*"))
	if len(css) == 0 {
		t.Fatal("no file in testdata/php/css")
	}
	resp, _ := get(t, s, "/css/"+filepath.Base(css[0]))
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" ||
		resp.Header.Get("X-Frame-Options") != "SAMEORIGIN" || resp.Header.Get("Server") != "" {
		t.Errorf("static: %s, Cache-Control %q, X-Frame-Options %q, Server %q", describe(resp),
			resp.Header.Get("Cache-Control"), resp.Header.Get("X-Frame-Options"), resp.Header.Get("Server"))
	}
	// Set headers go on successes and redirects only (nginx's add_header):
	// a missing bundle's 404 must not be cached for a year.
	resp, _ = get(t, s, "/css/missing.css")
	if resp.StatusCode != 404 || resp.Header.Get("Cache-Control") != "" || resp.Header.Get("Server") != "" {
		t.Errorf("a 404 under the rule: %s, Cache-Control %q, Server %q", describe(resp), resp.Header.Get("Cache-Control"), resp.Header.Get("Server"))
	}
	// A configured no-transform is obeyed by compression.
	resp, _ = get(t, s, "/raw.html", "Accept-Encoding: gzip, zstd")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "" || resp.Header.Get("Cache-Control") != "public, no-transform" {
		t.Errorf("no-transform from a rule: %s, Content-Encoding %q, Cache-Control %q", describe(resp), resp.Header.Get("Content-Encoding"), resp.Header.Get("Cache-Control"))
	}
	resp, _ = get(t, s, "/cachecontrol.php")
	if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("X-Frame-Options") != "" {
		t.Errorf("PHP rule: Cache-Control %q, X-Frame-Options %q", resp.Header.Get("Cache-Control"), resp.Header.Get("X-Frame-Options"))
	}
	resp, _ = get(t, s, "/info.php")
	if resp.Header.Get("X-Frame-Options") != "SAMEORIGIN" || resp.Header.Get("Server") != "" {
		t.Errorf("default route: X-Frame-Options %q, Server %q", resp.Header.Get("X-Frame-Options"), resp.Header.Get("Server"))
	}
	resp, _ = rawGet(t, s.Addr, "/a%00b")
	if resp.StatusCode != 400 || resp.Header.Get("Server") != "" {
		t.Errorf("an answer before routing: %s, Server %q (removals apply to every response)", describe(resp), resp.Header.Get("Server"))
	}
}

// h2spec, HTTP/2's conformance suite, against the HTTPS listener.
func TestH2Spec(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "h2spec")
	build := exec.Command("go", "build", "-o", bin, "github.com/summerwind/h2spec/cmd/h2spec")
	build.Dir = repoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building h2spec (a tool of go.mod): %v\n%s", err, out)
	}
	s, _, _ := startTLS(t, "", "", "")
	host, port, _ := net.SplitHostPort(s.TLSAddr)
	out, _ := exec.Command(bin, "-t", "-k", "-h", host, "-p", port, "-o", "2").CombinedOutput()
	m := regexp.MustCompile(`(\d+) tests, (\d+) passed, (\d+) skipped, (\d+) failed`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("h2spec's summary not found:\n%s", out)
	}
	t.Logf("h2spec: %s", m[0])
	report := string(out)
	if i := strings.Index(report, "Failures:"); i >= 0 {
		report = report[i:]
	} else {
		report = ""
	}
	for _, line := range strings.Split(report, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "×") {
			continue
		}
		if why, ok := h2specKnown[strings.TrimSpace(strings.TrimPrefix(line, "×"))]; ok {
			t.Logf("h2spec, known: %s (%s)", line, why)
			continue
		}
		t.Errorf("h2spec: %s\n%s", line, report)
	}
}

// h2specKnown are the h2spec cases Go's HTTP/2 server answers otherwise
// than h2spec expects, each refused all the same (docs/configuration.md).
var h2specKnown = map[string]string{
	`1: Sends multiple values of SETTINGS_INITIAL_WINDOW_SIZE`: "Go takes a SETTINGS frame naming a setting twice for a protocol error " +
		"and closes the connection (a defence against settings floods); clients do not send such frames",
	`1: Sends a HEADERS frame that contains the connection-specific header field`:                     "Go answers 400 Bad Request instead of resetting the stream",
	`2: Sends a HEADERS frame that contains the TE header field with any value other than "trailers"`: "Go answers 400 Bad Request instead of resetting the stream",
}

// hostGet sends GET target to addr over plain HTTP with Host: host.
func hostGet(t *testing.T, addr, host, target string) (*http.Response, []byte) {
	t.Helper()
	c := &http.Client{Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return fetchURL(t, c, "http://"+addr+target, "Host", host)
}
