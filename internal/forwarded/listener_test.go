package forwarded

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
)

// serveProxy listens on 127.0.0.1 with Listener and accepts in the
// background; accepted connections come out of the channel.
func serveProxy(t *testing.T, trust *Trust, timeout time.Duration) (net.Listener, string, <-chan net.Conn) {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Listener(raw, trust, timeout)
	conns := make(chan net.Conn, 16)
	go func() {
		defer close(conns)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns <- c
		}
	}()
	t.Cleanup(func() {
		l.Close()
		for c := range conns { // those the test did not take
			c.Close()
		}
	})
	return l, raw.Addr().String(), conns
}

// dial connects to addr from the local address from ("" for any).
func dial(t *testing.T, addr, from string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func tcpAddr(s string) *net.TCPAddr {
	a, err := net.ResolveTCPAddr("tcp", s)
	if err != nil {
		panic(err)
	}
	return a
}

// sendHeader writes a PROXY header of version from src to dst on c,
// then data, in one write as a balancer does.
func sendHeader(t *testing.T, c net.Conn, version byte, src, dst, data string) {
	t.Helper()
	h := proxyproto.HeaderProxyFromAddrs(version, tcpAddr(src), tcpAddr(dst))
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(append(b, data...)); err != nil {
		t.Fatal(err)
	}
}

func next(t *testing.T, conns <-chan net.Conn, wait time.Duration) net.Conn {
	t.Helper()
	select {
	case c, ok := <-conns:
		if !ok {
			t.Fatal("Accept failed")
		}
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(wait):
		t.Fatal("nothing accepted")
	}
	return nil
}

func noneAccepted(t *testing.T, conns <-chan net.Conn, wait time.Duration) {
	t.Helper()
	select {
	case c, ok := <-conns:
		if ok {
			t.Fatalf("accepted a connection from %v", c.RemoteAddr())
		}
	case <-time.After(wait):
	}
}

func readN(t *testing.T, c net.Conn, n int) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// closedByServer waits for the server to close c, and reports how long.
func closedByServer(t *testing.T, c net.Conn, wait time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	c.SetReadDeadline(start.Add(wait))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("not closed within %v", wait)
	}
	if err == nil {
		t.Fatal("the server sent data")
	}
	return time.Since(start)
}

// Rule: PROXY v1 and v2 from a trusted peer set RemoteAddr (and
// LocalAddr) to the header's.
func TestListener_trusted(t *testing.T) {
	for _, c := range []struct {
		version  byte
		src, dst string
	}{
		{1, "192.0.2.1:4711", "203.0.113.10:443"},
		{1, "[2001:db8::1]:4711", "[2001:db8::443]:443"},
		{2, "192.0.2.1:4711", "203.0.113.10:443"},
		{2, "[2001:db8::1]:4711", "[2001:db8::443]:443"},
	} {
		t.Run(fmt.Sprintf("v%d %s", c.version, c.src), func(t *testing.T) {
			_, addr, conns := serveProxy(t, MustParseTrust("127.0.0.1"), time.Second)
			cl := dial(t, addr, "127.0.0.1")
			sendHeader(t, cl, c.version, c.src, c.dst, "hello")
			sc := next(t, conns, 5*time.Second)
			if got := sc.RemoteAddr().String(); got != c.src {
				t.Errorf("RemoteAddr %s, want %s", got, c.src)
			}
			if got := sc.LocalAddr().String(); got != c.dst {
				t.Errorf("LocalAddr %s, want %s", got, c.dst)
			}
			if got := readN(t, sc, 5); got != "hello" {
				t.Errorf("read %q", got)
			}
			if _, err := sc.Write([]byte("bye")); err != nil {
				t.Fatal(err)
			}
			if got := readN(t, cl, 3); got != "bye" {
				t.Errorf("client read %q", got)
			}
		})
	}
}

// Rule: from an untrusted peer a PROXY header is not believed: the
// connection comes as it is, its bytes untouched.
func TestListener_untrusted(t *testing.T) {
	for _, version := range []byte{1, 2} {
		_, addr, conns := serveProxy(t, MustParseTrust("10.0.0.0/8"), time.Second)
		cl := dial(t, addr, "127.0.0.1")
		h := proxyproto.HeaderProxyFromAddrs(version, tcpAddr("192.0.2.1:4711"), tcpAddr("203.0.113.10:443"))
		raw, _ := h.Format()
		sendHeader(t, cl, version, "192.0.2.1:4711", "203.0.113.10:443", "hello")
		sc := next(t, conns, 5*time.Second)
		if got, want := sc.RemoteAddr().String(), cl.LocalAddr().String(); got != want {
			t.Errorf("v%d: RemoteAddr %s, want the TCP peer %s", version, got, want)
		}
		if got := readN(t, sc, len(raw)+5); got != string(raw)+"hello" {
			t.Errorf("v%d: read %q", version, got)
		}
	}
}

// Rule: the decision is per peer: on one listener, 127.0.0.2 is a
// trusted balancer, 127.0.0.1 a client.
func TestListener_perPeer(t *testing.T) {
	_, addr, conns := serveProxy(t, MustParseTrust("127.0.0.2"), time.Second)
	lb := dial(t, addr, "127.0.0.2")
	sendHeader(t, lb, 2, "192.0.2.1:4711", "203.0.113.10:443", "x")
	sc := next(t, conns, 5*time.Second)
	if got := sc.RemoteAddr().String(); got != "192.0.2.1:4711" {
		t.Errorf("balancer: RemoteAddr %s", got)
	}
	direct := dial(t, addr, "127.0.0.1")
	sendHeader(t, direct, 1, "192.0.2.1:4711", "203.0.113.10:443", "x")
	sc = next(t, conns, 5*time.Second)
	if got := sc.RemoteAddr().String(); got != direct.LocalAddr().String() {
		t.Errorf("client: RemoteAddr %s, want %s", got, direct.LocalAddr())
	}
}

// Rule: a trusted peer must send a valid header for TCP; otherwise its
// connection is closed and never accepted. A LOCAL header keeps the
// connection's addresses.
func TestListener_trustedBadHeader(t *testing.T) {
	_, addr, conns := serveProxy(t, MustParseTrust("127.0.0.1"), 2*time.Second)
	udp := proxyproto.HeaderProxyFromAddrs(2, &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1}, &net.UDPAddr{IP: net.IPv4(192, 0, 2, 2), Port: 2})
	udpHeader, err := udp.Format()
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{
		"no header":         "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"malformed v1":      "PROXY TCP4 192.0.2.1 nonsense 1 2\r\n",
		"v1 without CRLF":   "PROXY TCP4 192.0.2.1 192.0.2.2 1 2\n",
		"v2 bad version":    "\r\n\r\n\x00\r\nQUIT\n\x31\x11\x00\x0c" + strings.Repeat("\x00", 12),
		"UDP":               string(udpHeader),
		"TLS ClientHello":   "\x16\x03\x01\x00\x05hello",
		"closed after PROX": "PROX",
	} {
		t.Run(name, func(t *testing.T) {
			cl := dial(t, addr, "127.0.0.1")
			if _, err := cl.Write([]byte(data)); err != nil {
				t.Fatal(err)
			}
			if name == "closed after PROX" {
				cl.(*net.TCPConn).CloseWrite()
			}
			if d := closedByServer(t, cl, 5*time.Second); d > time.Second {
				t.Errorf("closed after %v: waited for the timeout", d)
			}
		})
	}
	noneAccepted(t, conns, 100*time.Millisecond)

	cl := dial(t, addr, "127.0.0.1")
	local := &proxyproto.Header{Version: 2, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}
	if _, err := local.WriteTo(cl); err != nil {
		t.Fatal(err)
	}
	sc := next(t, conns, 5*time.Second)
	if got := sc.RemoteAddr().String(); got != cl.LocalAddr().String() {
		t.Errorf("LOCAL: RemoteAddr %s, want %s", got, cl.LocalAddr())
	}
}

// Rule: a trusted peer that sends nothing is closed after the header
// timeout, and does not hold up Accept for the others meanwhile.
func TestListener_silentPeer(t *testing.T) {
	const timeout = time.Second
	_, addr, conns := serveProxy(t, MustParseTrust("127.0.0.1", "127.0.0.2"), timeout)
	silentStart := time.Now()
	silent := dial(t, addr, "127.0.0.1")
	silentClosed := make(chan time.Duration, 1)
	go func() {
		silent.SetReadDeadline(time.Now().Add(10 * time.Second))
		silent.Read(make([]byte, 1))
		silentClosed <- time.Since(silentStart)
	}()
	time.Sleep(50 * time.Millisecond) // the silent one is accepted first

	// A good connection, from a trusted and from an untrusted peer.
	start := time.Now()
	good := dial(t, addr, "127.0.0.2")
	sendHeader(t, good, 1, "192.0.2.1:4711", "203.0.113.10:443", "hi")
	sc := next(t, conns, 5*time.Second)
	if d := time.Since(start); d > timeout/2 {
		t.Errorf("the good connection waited %v", d)
	}
	if got := sc.RemoteAddr().String(); got != "192.0.2.1:4711" {
		t.Fatalf("accepted %s, want the good connection", got)
	}
	if got := readN(t, sc, 2); got != "hi" {
		t.Errorf("read %q", got)
	}
	select {
	case d := <-silentClosed:
		t.Fatalf("the silent connection was closed after %v, before the timeout", d)
	default:
	}

	d := <-silentClosed
	if d < timeout*9/10 || d > timeout+2*time.Second {
		t.Errorf("the silent connection was closed after %v, want about %v", d, timeout)
	}
	noneAccepted(t, conns, 100*time.Millisecond)
}

// Rule: Close closes the listener and the connections still waiting
// for their header, and Accept then fails with net.ErrClosed.
func TestListener_close(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Listener(raw, MustParseTrust("127.0.0.1"), time.Minute)
	errc := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		errc <- err
	}()
	silent := dial(t, raw.Addr().String(), "")
	time.Sleep(100 * time.Millisecond) // accepted, reading its header
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v", err)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Accept after Close: %v", err)
	}
	if d := closedByServer(t, silent, 5*time.Second); d > time.Second {
		t.Errorf("the pending connection was closed after %v", d)
	}
	if err := l.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
}

// Rule: the wrapped listener closed under Listener fails every Accept.
func TestListener_innerClosed(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Listener(raw, MustParseTrust("127.0.0.1"), time.Second)
	go func() {
		time.Sleep(50 * time.Millisecond)
		raw.Close()
	}()
	for range 2 {
		if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept: %v", err)
		}
	}
	l.Close()
}

func TestListener_noTrust(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if l := Listener(raw, nil, 0); l != raw {
		t.Error("a nil Trust wraps the listener")
	}
	if l := Listener(raw, MustParseTrust(), 0); l != raw {
		t.Error("an empty Trust wraps the listener")
	}
}

// The whole path: an http.Server on Listener, a handler using Resolve.
func TestListener_httpServer(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	trust := MustParseTrust("127.0.0.2", "10.0.0.0/8")
	opts := &Options{Trust: trust}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, localPort, _ := net.SplitHostPort(r.Context().Value(http.LocalAddrContextKey).(net.Addr).String())
			o := Resolve(r, opts, r.TLS != nil, localPort)
			fmt.Fprintf(w, "%s %s %s %v", o.RemoteAddr(), o.Scheme, o.ServerPort, o.Proxied)
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go srv.Serve(Listener(raw, trust, time.Second))
	t.Cleanup(func() { srv.Close() })
	addr := raw.Addr().String()
	_, port, _ := net.SplitHostPort(addr)

	get := func(from string, header *proxyproto.Header, xff string) string {
		t.Helper()
		c := dial(t, addr, from)
		if header != nil {
			if _, err := header.WriteTo(c); err != nil {
				t.Fatal(err)
			}
		}
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-For: %s\r\nX-Forwarded-Proto: https\r\nConnection: close\r\n\r\n", xff)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return fmt.Sprintf("%d %s", resp.StatusCode, b)
	}
	hdr := func(src string) *proxyproto.Header {
		return proxyproto.HeaderProxyFromAddrs(2, tcpAddr(src), tcpAddr("203.0.113.10:443"))
	}
	for _, c := range []struct {
		name, from string
		header     *proxyproto.Header
		xff, want  string
	}{
		// An L4 balancer passing a client: the client's own headers are ignored.
		{"client via balancer", "127.0.0.2", hdr("192.0.2.50:4444"), "6.6.6.6", "200 192.0.2.50:4444 http 443 false"},
		// An L4 balancer passing a trusted L7 proxy: its headers count.
		{"proxy via balancer", "127.0.0.2", hdr("10.1.1.1:1111"), "192.0.2.1", "200 192.0.2.1 https 443 true"},
		// A direct client: its PROXY-free request, its own address.
		{"direct client", "127.0.0.1", nil, "6.6.6.6", "200 127.0.0.1:* http " + port + " false"},
	} {
		got := get(c.from, c.header, c.xff)
		want := c.want
		if i := strings.Index(want, "*"); i >= 0 {
			if j := strings.IndexByte(got[i:], ' '); j >= 0 {
				got = got[:i] + "*" + got[i+j:]
			}
		}
		if got != want {
			t.Errorf("%s: %q, want %q", c.name, got, want)
		}
	}
	// A client sending a PROXY header directly gets a 400, not believed.
	if got := get("127.0.0.1", hdr("192.0.2.99:1"), "x"); !strings.HasPrefix(got, "400 ") {
		t.Errorf("direct PROXY header: %q", got)
	}
}
