//go:build fephp_bridge

package integration

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
)

// Behind trusted proxies PHP, the access log and the HTTPS redirect see
// the client's address, scheme and port; anyone else's X-Forwarded-*
// headers change nothing.
func TestTrustedProxies(t *testing.T) {
	t.Parallel()
	root, _ := newPHPSiteDir(t)
	s := startServer(t, fmt.Sprintf(`[server]
trusted_proxies = ["127.0.0.1"]

[php]
document_root = %q
worker_pool_size = 1
`, root), nil)
	fwd := []string{"X-Forwarded-For: 203.0.113.7, 198.51.100.2", "X-Forwarded-Proto: https", "X-Forwarded-Port: 443"}
	_, d := dumpOf(t, &phpSite{Server: s}, "GET", "/info.php", nil, fwd...)
	for k, want := range map[string]string{"REMOTE_ADDR": "198.51.100.2", "HTTPS": "on", "REQUEST_SCHEME": "https", "SERVER_PORT": "443"} {
		d.wantSV(t, k, want)
	}
	waitFor(t, 5*time.Second, "the access log line with the client's address", func() bool {
		return strings.Contains(s.Stdout(), "remote=198.51.100.2")
	})

	// The same headers from a peer that is not trusted (127.0.0.2 here).
	s2 := startServer(t, fmt.Sprintf(`[server]
trusted_proxies = ["10.0.0.0/8"]

[php]
document_root = %q
worker_pool_size = 1
`, root), nil)
	_, d = dumpOf(t, &phpSite{Server: s2}, "GET", "/info.php", nil, fwd...)
	d.wantSV(t, "REMOTE_ADDR", "127.0.0.1")
	d.wantSV(t, "REQUEST_SCHEME", "http")
	d.wantNoSV(t, "HTTPS")
	d.wantSV(t, "HTTP_X_FORWARDED_PROTO", "https") // still an ordinary header for PHP
}

// With proxy_protocol, a trusted peer's PROXY header gives the client's
// address.
func TestProxyProtocol(t *testing.T) {
	t.Parallel()
	root, _ := newPHPSiteDir(t)
	s := startServer(t, fmt.Sprintf(`[server]
trusted_proxies = ["127.0.0.1"]
proxy_protocol = true

[php]
document_root = %q
worker_pool_size = 1
`, root), nil)
	conn, err := net.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hdr := &proxyproto.Header{Version: 2, Command: proxyproto.PROXY, TransportProtocol: proxyproto.TCPv4,
		SourceAddr: &net.TCPAddr{IP: net.ParseIP("192.0.2.44"), Port: 51234}, DestinationAddr: &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 443}}
	if _, err := hdr.WriteTo(conn); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /info.php HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var sb strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := conn.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if !strings.Contains(sb.String(), `"REMOTE_ADDR":"192.0.2.44"`) || !strings.Contains(sb.String(), `"REMOTE_PORT":"51234"`) {
		t.Errorf("PHP did not see the PROXY header's client:\n%s", trunc([]byte(sb.String())))
	}
}
