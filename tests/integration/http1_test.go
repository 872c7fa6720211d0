//go:build fephp_bridge

package integration

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestHTTP1FastPathMatchesNetHTTP runs the same site twice, with
// server.http1_fast_path on and off, and sends both the same raw
// requests, well-formed and not, on keep-alive connections: every
// answer (status, headers but Date and X-Request-Id, body, and whether
// the connection stays open) must be the same. PHP through the embedded
// backend, static files, compression, a 304, a range, and requests the
// fast path hands to net/http; over plain HTTP and over TLS.
func TestHTTP1FastPathMatchesNetHTTP(t *testing.T) {
	embRequireBridge(t)
	certFile, keyFile, pool := selfSigned(t, t.TempDir(), "site.test")
	files := map[string]string{
		"root/index.php": `<?php echo "front ", $_SERVER['REQUEST_URI'], "\n";`,
		"root/env.php": `<?php
foreach (['REQUEST_METHOD','REQUEST_URI','QUERY_STRING','SERVER_PROTOCOL','HTTPS','REQUEST_SCHEME','SSL_PROTOCOL','HTTP_HOST','HTTP_ACCEPT','HTTP_X_DUP','HTTP_COOKIE','CONTENT_LENGTH','SERVER_ADDR','REMOTE_ADDR','HTTP_CONNECTION'] as $k) {
	echo $k, '=', $_SERVER[$k] ?? '(unset)', "\n";
}
echo 'body=', file_get_contents('php://input'), "\n";`,
		"root/headers.php": `<?php
header('X-From-PHP: yes');
header('Cache-Control: no-store');
http_response_code((int)($_GET['code'] ?? 200));
echo str_repeat('p', (int)($_GET['n'] ?? 10));`,
		"root/flush.php": `<?php echo "one"; flush(); echo "two";`,
		"root/empty.php": `<?php`,
		"root/style.css": strings.Repeat("body { color: red; }\n", 200),
		"root/small.txt": "small file\n",
	}
	cfg := func(fast bool, root string) string {
		return fmt.Sprintf(`[server]
http1_fast_path = %v
https_redirect = false
[server.compression]
enable = true
[server.tls]
listen = "127.0.0.1:0"
cert_file = %q
key_file = %q
[admin]
listen = "127.0.0.1:0"
[php]
document_root = %q
[backend]
default_backend = "embedded"
[[backend.routing_rules]]
pattern = { type = "suffix", value = ".css" }
backend = "static"
priority = 10
[[backend.routing_rules]]
pattern = { type = "suffix", value = ".txt" }
backend = "static"
priority = 10
`, fast, certFile, keyFile, root)
	}
	fast := startServer(t, cfg(true, "{{root}}"), files)
	std := startServer(t, cfg(false, fast.Root), nil) // the same files: the same ETags

	get := func(target string, headers ...string) string {
		return "GET " + target + " HTTP/1.1\r\nHost: site.test\r\n" + strings.Join(append(headers, ""), "\r\n") + "\r\n"
	}
	cases := []struct {
		name string
		raw  string
		n    int // responses expected
	}{
		{"php", get("/env.php?a=1&b=%20", "Accept: text/html", "X-Dup: 1", "x-dup: 2", "Cookie: a=b"), 1},
		{"php headers", get("/headers.php?n=5"), 1},
		{"php long", get("/headers.php?n=100000"), 1},
		{"php 204", get("/headers.php?code=204"), 1},
		{"php 304", get("/headers.php?code=304"), 1},
		{"php 404", get("/headers.php?code=404"), 1},
		{"php flush", get("/flush.php"), 1},
		{"php empty", get("/empty.php"), 1},
		{"front controller", get("/some/route?x=1"), 1},
		{"php gzip", get("/headers.php?n=5000", "Accept-Encoding: gzip"), 1},
		{"static", get("/style.css"), 1},
		{"static gzip", get("/style.css", "Accept-Encoding: gzip"), 1},
		{"static small", get("/small.txt"), 1},
		{"static range", get("/style.css", "Range: bytes=10-19"), 1},
		{"static 304", get("/small.txt", "If-Modified-Since: Mon, 01 Jan 2035 00:00:00 GMT"), 1},
		{"static missing", get("/nope.txt"), 1},
		{"head php", "HEAD /headers.php?n=50 HTTP/1.1\r\nHost: site.test\r\n\r\n", 1},
		{"head static", "HEAD /style.css HTTP/1.1\r\nHost: site.test\r\n\r\n", 1},
		{"keep-alive sequence", get("/env.php") + get("/style.css") + get("/headers.php?n=3000") + get("/small.txt"), 4},
		{"client close", get("/env.php", "Connection: close"), 1},
		{"dot segments", get("/a/../env.php"), 1},
		{"encoded slash", get("/%2e%2e/env.php"), 1},
		// The fast path hands these to net/http.
		{"post", "POST /env.php HTTP/1.1\r\nHost: site.test\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello", 1},
		{"post then get", "POST /env.php HTTP/1.1\r\nHost: site.test\r\nContent-Length: 2\r\n\r\nhi" + get("/env.php"), 2},
		{"get then post", get("/env.php") + "POST /env.php HTTP/1.1\r\nHost: site.test\r\nContent-Length: 2\r\n\r\nhi", 2},
		{"http/1.0", "GET /env.php HTTP/1.0\r\nHost: site.test\r\n\r\n", 1},
		{"no host", "GET /env.php HTTP/1.1\r\n\r\n", 1},
		{"two hosts", "GET /env.php HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 1},
		{"nul in header", "GET /env.php HTTP/1.1\r\nHost: site.test\r\nX-A: a\x00b\r\n\r\n", 1},
		{"bare lf", "GET /env.php HTTP/1.1\nHost: site.test\n\n", 1},
		{"obs-fold", "GET /env.php HTTP/1.1\r\nHost: site.test\r\nX-A: a\r\n b\r\n\r\n", 1},
		{"big header", get("/env.php", "X-Big: "+strings.Repeat("b", 8000)), 1},
		{"absolute form", "GET http://other.test/env.php HTTP/1.1\r\nHost: site.test\r\n\r\n", 1},
		{"chunked get", "GET /env.php HTTP/1.1\r\nHost: site.test\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", 1},
		{"smuggle", "GET /env.php HTTP/1.1\r\nHost: site.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 1},
	}
	tlsDial := func(addr string) (net.Conn, error) {
		d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second},
			Config: &tls.Config{RootCAs: pool, ServerName: "site.test", NextProtos: []string{"http/1.1"}}}
		return d.Dial("tcp", addr)
	}
	plainDial := func(addr string) (net.Conn, error) { return net.DialTimeout("tcp", addr, 5*time.Second) }
	for _, over := range []struct {
		name              string
		dial              func(string) (net.Conn, error)
		fastAddr, stdAddr string
	}{
		{"http", plainDial, fast.Addr, std.Addr},
		{"https", tlsDial, fast.TLSAddr, std.TLSAddr},
	} {
		for _, tc := range cases {
			t.Run(over.name+"/"+tc.name, func(t *testing.T) {
				method := "GET"
				if strings.HasPrefix(tc.raw, "HEAD") {
					method = "HEAD"
				}
				want := keepAliveExchange(t, over.dial, over.stdAddr, tc.raw, tc.n, method)
				got := keepAliveExchange(t, over.dial, over.fastAddr, tc.raw, tc.n, method)
				if got != want {
					t.Errorf("with the fast path:\n%s\nwith net/http:\n%s", got, want)
				}
			})
		}
	}

	// The comparison compared something: the fast path served most of
	// these, and handed the others to net/http.
	m := scrape(t, fast)
	if n := metric(t, m, "fe_php_http1_fast_requests_total"); n < 80 {
		t.Errorf("the fast path served %v requests", n)
	}
	if n := metric(t, m, "fe_php_http1_handoffs_total"); n < 20 {
		t.Errorf("the fast path handed %v connections over", n)
	}
	if strings.Contains(scrape(t, std), "fe_php_http1_") {
		t.Error("http1_fast_path = false still has the fast path's metrics")
	}
}

// keepAliveExchange writes raw on a new connection, reads n responses,
// and describes them (status, headers but Date and X-Request-Id, body),
// then whether the connection still answers a request.
func keepAliveExchange(t *testing.T, dial func(string) (net.Conn, error), addr, raw string, n int, method string) string {
	t.Helper()
	c, err := dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var out strings.Builder
	for i := range n {
		res, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			fmt.Fprintf(&out, "response %d: none\n", i)
			return out.String()
		}
		body, err := io.ReadAll(res.Body)
		_, date := res.Header["Date"]
		res.Header.Del("Date")
		res.Header.Del("X-Request-Id")
		keys := make([]string, 0, len(res.Header))
		for k := range res.Header {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		fmt.Fprintf(&out, "%s te=%v cl=%d close=%v date=%v\n", res.Status, res.TransferEncoding, res.ContentLength, res.Close, date)
		for _, k := range keys {
			fmt.Fprintf(&out, "  %s: %q\n", k, res.Header[k])
		}
		fmt.Fprintf(&out, "  body %d bytes %q err=%v\n", len(body), trunc(body), err)
	}
	io.WriteString(c, "GET /small.txt HTTP/1.1\r\nHost: site.test\r\n\r\n")
	if res, err := http.ReadResponse(br, nil); err == nil && res.StatusCode == http.StatusOK {
		out.WriteString("open\n")
	} else {
		out.WriteString("closed\n")
	}
	return out.String()
}
