package forwarded

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

// testTrust is the proxies of the tests: 10/8 and fd00::/8.
var testTrust = MustParseTrust("10.0.0.0/8", "fd00::/8")

// newReq is a request from remote for host with headers, given as
// name, value pairs (a name given twice makes two header lines).
func newReq(remote, host string, hdr ...string) *http.Request {
	r := &http.Request{Method: "GET", RemoteAddr: remote, Host: host, Header: http.Header{}}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	return r
}

// want is what a test checks of an Origin; empty fields are not checked
// except Addr, which is always.
type want struct {
	addr       string // Addr, "" for invalid
	port       uint16
	scheme     string
	host       string
	serverPort string
	proxied    bool
	conflict   bool
	remote     string // RemoteAddr()
}

func check(t *testing.T, name string, o Origin, w want) {
	t.Helper()
	addr := ""
	if o.Addr.IsValid() {
		addr = o.Addr.String()
	}
	var bad []string
	if addr != w.addr {
		bad = append(bad, fmt.Sprintf("Addr %q, want %q", addr, w.addr))
	}
	if o.Port != w.port {
		bad = append(bad, fmt.Sprintf("Port %d, want %d", o.Port, w.port))
	}
	if w.scheme != "" && o.Scheme != w.scheme {
		bad = append(bad, fmt.Sprintf("Scheme %q, want %q", o.Scheme, w.scheme))
	}
	if w.host != "" && o.Host != w.host {
		bad = append(bad, fmt.Sprintf("Host %q, want %q", o.Host, w.host))
	}
	if w.serverPort != "" && o.ServerPort != w.serverPort {
		bad = append(bad, fmt.Sprintf("ServerPort %q, want %q", o.ServerPort, w.serverPort))
	}
	if o.Proxied != w.proxied {
		bad = append(bad, fmt.Sprintf("Proxied %v, want %v", o.Proxied, w.proxied))
	}
	if o.Conflict != w.conflict {
		bad = append(bad, fmt.Sprintf("Conflict %v, want %v", o.Conflict, w.conflict))
	}
	if w.remote != "" && o.RemoteAddr() != w.remote {
		bad = append(bad, fmt.Sprintf("RemoteAddr() %q, want %q", o.RemoteAddr(), w.remote))
	}
	if len(bad) > 0 {
		t.Errorf("%s: %s", name, strings.Join(bad, "; "))
	}
}

// allHeaders is every forwarding header, each naming someone else.
var allHeaders = []string{
	"Forwarded", "for=192.0.2.66;proto=https;host=evil.example",
	"X-Forwarded-For", "192.0.2.66",
	"X-Forwarded-Proto", "https",
	"X-Forwarded-Host", "evil.example",
	"X-Forwarded-Port", "8443",
	"X-Real-IP", "192.0.2.66",
	"X-Forwarded-Ssl", "on",
	"Front-End-Https", "on",
}

// Rule: headers are believed only from a trusted peer; from anyone else
// they change nothing.
func TestResolve_untrusted(t *testing.T) {
	for _, c := range []struct {
		name string
		opts *Options
	}{
		{"nil options", nil},
		{"nil trust", &Options{UseHost: true}},
		{"empty trust", &Options{Trust: MustParseTrust(), UseHost: true}},
		{"peer not in trust", &Options{Trust: testTrust, UseHost: true}},
		{"peer not in trust, forwarded", &Options{Trust: testTrust, UseHost: true, Headers: HeadersForwarded}},
		{"peer not in trust, x-forwarded", &Options{Trust: testTrust, UseHost: true, Headers: HeadersXForwarded}},
	} {
		r := newReq("203.0.113.5:40000", "example.com", allHeaders...)
		o := Resolve(r, c.opts, false, "8080")
		check(t, c.name, o, want{addr: "203.0.113.5", port: 40000, scheme: "http", host: "example.com",
			serverPort: "8080", remote: "203.0.113.5:40000"})
		if o.Peer != netip.MustParseAddrPort("203.0.113.5:40000") {
			t.Errorf("%s: Peer %v", c.name, o.Peer)
		}
		if len(r.Header) != len(allHeaders)/2 {
			t.Errorf("%s: the headers were changed", c.name)
		}
		o = Resolve(r, c.opts, true, "8443")
		check(t, c.name+", tls", o, want{addr: "203.0.113.5", port: 40000, scheme: "https", serverPort: "8443"})
	}
}

// Rule: with nothing forwarded, ServerPort is the listener's port, else
// the Host header's, else the scheme's.
func TestResolve_directServerPort(t *testing.T) {
	for _, c := range []struct {
		host, local string
		tls         bool
		want        string
	}{
		{"example.com", "8080", false, "8080"},
		{"example.com:9000", "8080", false, "8080"},
		{"example.com:9000", "", false, "9000"},
		{"[2001:db8::1]:9000", "", false, "9000"},
		{"example.com", "", false, "80"},
		{"example.com", "", true, "443"},
		{"example.com:x", "", true, "443"},
	} {
		o := Resolve(newReq("203.0.113.5:1", c.host), nil, c.tls, c.local)
		if o.ServerPort != c.want {
			t.Errorf("Host %q, local %q: ServerPort %q, want %q", c.host, c.local, o.ServerPort, c.want)
		}
	}
}

func TestResolve_peerForms(t *testing.T) {
	opts := &Options{Trust: MustParseTrust("private")}
	for _, c := range []struct {
		remote string
		want   want
	}{
		{"[::1]:5000", want{addr: "::1", port: 5000, remote: "[::1]:5000"}},
		{"[::ffff:203.0.113.5]:5000", want{addr: "203.0.113.5", port: 5000}},
		{"203.0.113.5", want{addr: "203.0.113.5", remote: "203.0.113.5"}},
		{"@", want{remote: "@"}},                       // a Unix socket
		{"/run/fe.sock", want{remote: "/run/fe.sock"}}, //
		{"", want{}},
		{"garbage:1:2", want{remote: "garbage:1:2"}},
	} {
		o := Resolve(newReq(c.remote, "h"), opts, false, "80")
		check(t, c.remote, o, c.want)
	}
	// A trusted Unix-socket peer is not a thing: headers stay ignored.
	o := Resolve(newReq("@", "h", "X-Forwarded-For", "192.0.2.1"), opts, false, "80")
	check(t, "unix peer", o, want{remote: "@"})
}

// Rule: Forwarded (RFC 7239) syntax, from a trusted peer.
func TestResolve_forwarded(t *testing.T) {
	opts := &Options{Trust: testTrust}
	peer := "10.0.0.1:50000"
	for _, c := range []struct {
		name string
		vals []string // Forwarded header lines
		want want
	}{
		{"simple", []string{"for=192.0.2.60;proto=https;by=203.0.113.43"},
			want{addr: "192.0.2.60", scheme: "https", serverPort: "443", proxied: true, remote: "192.0.2.60"}},
		{"RFC example, quoted IPv6 with port", []string{`For="[2001:db8:cafe::17]:4711"`},
			want{addr: "2001:db8:cafe::17", port: 4711, scheme: "http", serverPort: "80", proxied: true, remote: "[2001:db8:cafe::17]:4711"}},
		{"quoted IPv4 with port", []string{`for="192.0.2.43:47011"`},
			want{addr: "192.0.2.43", port: 47011, proxied: true, remote: "192.0.2.43:47011"}},
		{"quoted bracketed IPv6, no port", []string{`for="[2001:db8::1]"`},
			want{addr: "2001:db8::1", proxied: true, remote: "2001:db8::1"}},
		{"bare IPv6 (nginx for=$remote_addr)", []string{`for=2001:db8::1`},
			want{addr: "2001:db8::1", proxied: true}},
		{"bare IPv4:port", []string{`for=192.0.2.43:80`},
			want{addr: "192.0.2.43", port: 80, proxied: true}},
		{"obfuscated port", []string{`for="[2001:db8::1]:_p1"`},
			want{addr: "2001:db8::1", proxied: true}},
		{"case-insensitive names and proto", []string{`FOR=192.0.2.1;PROTO=HTTPS`},
			want{addr: "192.0.2.1", scheme: "https", proxied: true}},
		{"spaces around ; and =", []string{`for = 192.0.2.1 ; proto = https , for=10.0.0.7`},
			want{addr: "192.0.2.1", scheme: "https", proxied: true}},
		{"obfuscated identifier: the peer stands", []string{`for=_hidden;proto=https`},
			want{addr: "10.0.0.1", port: 50000, scheme: "https", proxied: true, remote: peer}},
		{"unknown: the peer stands", []string{`for=unknown`},
			want{addr: "10.0.0.1", port: 50000, proxied: true, remote: peer}},
		{"UNKNOWN quoted", []string{`for="UNKNOWN"`},
			want{addr: "10.0.0.1", port: 50000, proxied: true}},
		{"no for=: the peer stands, proto used", []string{`proto=https;by=10.0.0.1`},
			want{addr: "10.0.0.1", port: 50000, scheme: "https", serverPort: "443", proxied: true}},
		{"several elements", []string{`for=192.0.2.43, for=198.51.100.17`},
			want{addr: "198.51.100.17", proxied: true}},
		{"several elements, trusted hop skipped", []string{`for=192.0.2.43;proto=https, for=10.0.0.17;proto=http`},
			want{addr: "192.0.2.43", scheme: "https", proxied: true}},
		{"several header lines are one list", []string{`for=192.0.2.43;proto=https`, `for=10.0.0.17;proto=http`},
			want{addr: "192.0.2.43", scheme: "https", proxied: true}},
		{"empty elements", []string{`,for=192.0.2.43,, ;, `},
			want{addr: "192.0.2.43", proxied: true}},
		{"parameter twice: junk", []string{`for=192.0.2.43;for=192.0.2.44`},
			want{addr: "10.0.0.1", port: 50000, proxied: true}},
		{"quoted-pair in for: junk", []string{`for="\1\9\2.0.2.43"`},
			want{addr: "10.0.0.1", port: 50000, proxied: true}},
		{"junk stops the walk at the last trusted hop", []string{`for=192.0.2.43, for=_hidden;proto=https, for=10.0.0.9:1234`},
			want{addr: "10.0.0.9", port: 1234, scheme: "https", proxied: true}},
		{"unterminated quote: the line is junk", []string{`for="192.0.2.66, for=192.0.2.43`},
			want{addr: "10.0.0.1", port: 50000, proxied: true}},
		{"a client line's junk does not reach the proxy's line", []string{`for="192.0.2.66`, `for=192.0.2.43`},
			want{addr: "192.0.2.43", proxied: true}},
		{"junk after a value", []string{`for=192.0.2.43 x, for=192.0.2.44`},
			want{addr: "10.0.0.1", port: 50000, proxied: true}},
		{"zone: junk", []string{`for="[fe80::1%25eth0]"`},
			want{addr: "10.0.0.1", port: 50000, proxied: true}},
		{"IPv4 in brackets: junk", []string{`for="[192.0.2.1]"`},
			want{addr: "10.0.0.1", port: 50000, proxied: true}},
		{"bad port: junk", []string{`for="192.0.2.1:65536"`},
			want{addr: "10.0.0.1", port: 50000, proxied: true}},
		{"proto other than http(s) ignored", []string{`for=192.0.2.1;proto=ftp`},
			want{addr: "192.0.2.1", scheme: "http", proxied: true}},
		{"IPv4-mapped", []string{`for="[::ffff:192.0.2.1]"`},
			want{addr: "192.0.2.1", proxied: true}},
		{"all trusted: the leftmost", []string{`for=10.0.0.5, for="[fd00::2]"`},
			want{addr: "10.0.0.5", proxied: true}},
		{"empty header", []string{``},
			want{addr: "10.0.0.1", port: 50000, proxied: true}},
	} {
		r := newReq(peer, "example.com")
		r.Header["Forwarded"] = c.vals
		check(t, c.name, Resolve(r, opts, false, "8080"), c.want)
	}
}

// Rule: Forwarded host= only with UseHost, validated, and its port is
// SERVER_PORT's.
func TestResolve_forwardedHost(t *testing.T) {
	for _, c := range []struct {
		name    string
		val     string
		useHost bool
		want    want
	}{
		{"off", `for=192.0.2.1;host=evil.example`, false,
			want{addr: "192.0.2.1", host: "example.com:8000", serverPort: "8000", proxied: true}},
		{"on", `for=192.0.2.1;host=www.example.com;proto=https`, true,
			want{addr: "192.0.2.1", host: "www.example.com", serverPort: "443", scheme: "https", proxied: true}},
		{"on, with port", `for=192.0.2.1;host="www.example.com:8443";proto=https`, true,
			want{addr: "192.0.2.1", host: "www.example.com:8443", serverPort: "8443", proxied: true}},
		{"on, IPv6", `for=192.0.2.1;host="[2001:db8::1]:8443"`, true,
			want{addr: "192.0.2.1", host: "[2001:db8::1]:8443", serverPort: "8443", proxied: true}},
		{"on, invalid: slash", `for=192.0.2.1;host="evil.example/x"`, true,
			want{addr: "192.0.2.1", host: "example.com:8000", serverPort: "8000", proxied: true}},
		{"on, invalid: space", `for=192.0.2.1;host="evil example"`, true,
			want{addr: "192.0.2.1", host: "example.com:8000", proxied: true}},
		{"on, invalid: userinfo", `for=192.0.2.1;host="a@evil.example"`, true,
			want{addr: "192.0.2.1", host: "example.com:8000", proxied: true}},
		{"on, the client's hop", `for=192.0.2.1;host=www.example.com, for=10.0.0.2;host=backend.internal`, true,
			want{addr: "192.0.2.1", host: "www.example.com", proxied: true}},
	} {
		r := newReq("10.0.0.1:50000", "example.com:8000", "Forwarded", c.val)
		check(t, c.name, Resolve(r, &Options{Trust: testTrust, UseHost: c.useHost}, false, "8080"), c.want)
	}
}

// Rule: the X-Forwarded-For walk, right to left, skipping trusted hops.
func TestResolve_xForwardedFor(t *testing.T) {
	opts := &Options{Trust: testTrust}
	peer := "10.0.0.1:50000"
	for _, c := range []struct {
		name string
		vals []string
		want want
	}{
		{"one hop", []string{"192.0.2.1"}, want{addr: "192.0.2.1", proxied: true, remote: "192.0.2.1"}},
		{"three hops", []string{"192.0.2.1, 10.0.0.2, 10.0.0.3"}, want{addr: "192.0.2.1", proxied: true}},
		{"a client's own prefix is skipped", []string{"6.6.6.6, 192.0.2.1, 10.0.0.3"}, want{addr: "192.0.2.1", proxied: true}},
		{"all trusted: the leftmost", []string{"10.0.0.7, fd00::2"}, want{addr: "10.0.0.7", proxied: true}},
		{"junk stops the walk at the last trusted hop", []string{"192.0.2.1, unknown, 10.0.0.3"}, want{addr: "10.0.0.3", proxied: true}},
		{"junk rightmost: the peer", []string{"192.0.2.1, not-an-ip"}, want{addr: "10.0.0.1", port: 50000, proxied: true, remote: peer}},
		{"obfuscated: the peer", []string{"_hidden"}, want{addr: "10.0.0.1", port: 50000, proxied: true}},
		{"empty elements", []string{" ,192.0.2.1,, 10.0.0.3 , "}, want{addr: "192.0.2.1", proxied: true}},
		{"header lines are one list", []string{"6.6.6.6", "192.0.2.1", "10.0.0.3"}, want{addr: "192.0.2.1", proxied: true}},
		{"with a port", []string{"192.0.2.1:4711"}, want{addr: "192.0.2.1", port: 4711, proxied: true, remote: "192.0.2.1:4711"}},
		{"bracketed IPv6 with a port", []string{"[2001:db8::1]:4711"}, want{addr: "2001:db8::1", port: 4711, proxied: true, remote: "[2001:db8::1]:4711"}},
		{"bare IPv6", []string{"2001:db8::1"}, want{addr: "2001:db8::1", proxied: true, remote: "2001:db8::1"}},
		{"IPv4-mapped", []string{"::ffff:192.0.2.1"}, want{addr: "192.0.2.1", proxied: true}},
		{"zone: junk", []string{"192.0.2.1, fe80::1%eth0"}, want{addr: "10.0.0.1", port: 50000, proxied: true}},
		{"quoted: junk", []string{`"192.0.2.1"`}, want{addr: "10.0.0.1", port: 50000, proxied: true}},
		{"leading zeros: junk", []string{"192.0.2.01"}, want{addr: "10.0.0.1", port: 50000, proxied: true}},
		{"unspecified: junk", []string{"192.0.2.1, 0.0.0.0"}, want{addr: "10.0.0.1", port: 50000, proxied: true}},
		{"unspecified IPv6: junk", []string{"[::]:80"}, want{addr: "10.0.0.1", port: 50000, proxied: true}},
		{"empty", []string{""}, want{addr: "10.0.0.1", port: 50000, proxied: true}},
	} {
		r := newReq(peer, "example.com")
		r.Header["X-Forwarded-For"] = c.vals
		check(t, c.name, Resolve(r, opts, false, "8080"), c.want)
	}
}

// Rule: never more than maxHops elements, counted from the right; what
// a client puts further left is never reached.
func TestResolve_maxHops(t *testing.T) {
	hops := []string{"192.0.2.1"}
	for i := range 40 {
		hops = append(hops, fmt.Sprintf("10.0.%d.1", i))
	}
	xff := strings.Join(hops, ", ")
	want32 := hops[len(hops)-maxHops] // the leftmost one examined
	o := Resolve(newReq("10.0.0.1:1", "h", "X-Forwarded-For", xff), &Options{Trust: testTrust}, false, "")
	if o.Addr.String() != want32 {
		t.Errorf("X-Forwarded-For: %v, want %s", o.Addr, want32)
	}
	var fwd []string
	for _, h := range hops {
		fwd = append(fwd, "for="+h)
	}
	o = Resolve(newReq("10.0.0.1:1", "h", "Forwarded", strings.Join(fwd, ", ")), &Options{Trust: testTrust}, false, "")
	if o.Addr.String() != want32 {
		t.Errorf("Forwarded: %v, want %s", o.Addr, want32)
	}
	// 31 trusted hops: the client is within reach.
	xff = "192.0.2.1, " + strings.Join(hops[len(hops)-31:], ", ")
	o = Resolve(newReq("10.0.0.1:1", "h", "X-Forwarded-For", xff), &Options{Trust: testTrust}, false, "")
	if o.Addr.String() != "192.0.2.1" {
		t.Errorf("31 hops: %v", o.Addr)
	}
}

// Rule: scheme from X-Forwarded-Proto (the rightmost value), only http
// or https.
func TestResolve_scheme(t *testing.T) {
	for _, c := range []struct {
		name  string
		tls   bool
		proto []string
		want  want
	}{
		{"https", false, []string{"https"}, want{scheme: "https", serverPort: "443"}},
		{"HTTPS", false, []string{"HTTPS"}, want{scheme: "https", serverPort: "443"}},
		{"http over tls", true, []string{"http"}, want{scheme: "http", serverPort: "80"}},
		{"garbage ignored", false, []string{"ftp"}, want{scheme: "http", serverPort: "80"}},
		{"garbage ignored over tls", true, []string{"wss"}, want{scheme: "https", serverPort: "443"}},
		{"rightmost of a list", false, []string{"http, https"}, want{scheme: "https"}},
		{"rightmost of lines", false, []string{"https", "http"}, want{scheme: "http"}},
		{"spaces", false, []string{" https "}, want{scheme: "https"}},
		{"none", false, nil, want{scheme: "http", serverPort: "80"}},
		{"none over tls", true, nil, want{scheme: "https", serverPort: "443"}},
	} {
		r := newReq("10.0.0.1:50000", "example.com", "X-Forwarded-For", "192.0.2.1")
		r.Header["X-Forwarded-Proto"] = c.proto
		c.want.addr, c.want.proxied = "192.0.2.1", true
		check(t, c.name, Resolve(r, &Options{Trust: testTrust}, c.tls, "8080"), c.want)
	}
	// Only X-Forwarded-Proto: the peer's address, the forwarded scheme.
	r := newReq("10.0.0.1:50000", "example.com", "X-Forwarded-Proto", "https")
	check(t, "proto alone", Resolve(r, &Options{Trust: testTrust}, false, "8080"),
		want{addr: "10.0.0.1", port: 50000, scheme: "https", serverPort: "443", proxied: true})
	// X-Forwarded-Ssl and Front-End-Https are not read.
	r = newReq("10.0.0.1:50000", "example.com", "X-Forwarded-For", "192.0.2.1", "X-Forwarded-Ssl", "on", "Front-End-Https", "on")
	check(t, "X-Forwarded-Ssl", Resolve(r, &Options{Trust: testTrust}, false, "8080"),
		want{addr: "192.0.2.1", scheme: "http", proxied: true})
}

// Rule: ServerPort from X-Forwarded-Port, else the Host's port, else
// the scheme's, when proxied.
func TestResolve_serverPort(t *testing.T) {
	for _, c := range []struct {
		name    string
		host    string
		useHost bool
		hdr     []string
		want    string
	}{
		{"X-Forwarded-Port", "example.com", false, []string{"X-Forwarded-Port", "8443"}, "8443"},
		{"X-Forwarded-Port over Host's", "example.com:9000", false, []string{"X-Forwarded-Port", "8443"}, "8443"},
		{"leading zero", "example.com", false, []string{"X-Forwarded-Port", "0443"}, "443"},
		{"rightmost", "example.com", false, []string{"X-Forwarded-Port", "1111, 2222"}, "2222"},
		{"not digits", "example.com", false, []string{"X-Forwarded-Port", "44a"}, "443"},
		{"sign", "example.com", false, []string{"X-Forwarded-Port", "+443"}, "443"},
		{"zero", "example.com", false, []string{"X-Forwarded-Port", "0"}, "443"},
		{"too big", "example.com", false, []string{"X-Forwarded-Port", "65536"}, "443"},
		{"too long", "example.com", false, []string{"X-Forwarded-Port", "000443"}, "443"},
		{"Host's port", "example.com:9000", false, nil, "9000"},
		{"forwarded host's port", "example.com:9000", true, []string{"X-Forwarded-Host", "www.example.com:7000"}, "7000"},
		{"forwarded host without port", "example.com:9000", true, []string{"X-Forwarded-Host", "www.example.com"}, "443"},
		{"forwarded host ignored without UseHost", "example.com:9000", false, []string{"X-Forwarded-Host", "www.example.com:7000"}, "9000"},
		{"scheme default", "example.com", false, nil, "443"},
	} {
		r := newReq("10.0.0.1:50000", c.host, append([]string{"X-Forwarded-For", "192.0.2.1", "X-Forwarded-Proto", "https"}, c.hdr...)...)
		o := Resolve(r, &Options{Trust: testTrust, UseHost: c.useHost}, false, "8080")
		if o.ServerPort != c.want || !o.Proxied {
			t.Errorf("%s: ServerPort %q, want %q", c.name, o.ServerPort, c.want)
		}
	}
}

// Rule: X-Forwarded-Host only with UseHost, validated like a Host.
func TestResolve_xForwardedHost(t *testing.T) {
	for _, c := range []struct {
		name    string
		val     string
		useHost bool
		want    string
	}{
		{"off", "www.example.com", false, "example.com"},
		{"on", "www.example.com", true, "www.example.com"},
		{"on, port", "www.example.com:8443", true, "www.example.com:8443"},
		{"on, IPv4", "192.0.2.1", true, "192.0.2.1"},
		{"on, IPv6", "[2001:db8::1]", true, "[2001:db8::1]"},
		{"on, rightmost", "evil.example, www.example.com", true, "www.example.com"},
		{"slash", "evil.example/x", true, "example.com"},
		{"backslash", `evil.example\x`, true, "example.com"},
		{"space", "evil .example", true, "example.com"},
		{"control", "evil\x01.example", true, "example.com"},
		{"userinfo", "a@evil.example", true, "example.com"},
		{"percent", "evil%2eexample", true, "example.com"},
		{"empty port", "www.example.com:", true, "example.com"},
		{"bad port", "www.example.com:99999", true, "example.com"},
		{"two ports", "www.example.com:1:2", true, "example.com"},
		{"zone", "[fe80::1%eth0]", true, "example.com"},
		{"IPv4 in brackets", "[192.0.2.1]", true, "example.com"},
		{"no name", ":80", true, "example.com"},
		{"too long", strings.Repeat("a", 300), true, "example.com"},
	} {
		r := newReq("10.0.0.1:50000", "example.com", "X-Forwarded-For", "192.0.2.1", "X-Forwarded-Host", c.val)
		o := Resolve(r, &Options{Trust: testTrust, UseHost: c.useHost}, false, "8080")
		if o.Host != c.want {
			t.Errorf("%s: Host %q, want %q", c.name, o.Host, c.want)
		}
	}
	// X-Forwarded-Host alone: used (and proxied) only with UseHost.
	r := newReq("10.0.0.1:50000", "example.com", "X-Forwarded-Host", "www.example.com")
	check(t, "host alone, off", Resolve(r, &Options{Trust: testTrust}, false, "8080"),
		want{addr: "10.0.0.1", port: 50000, host: "example.com", serverPort: "8080"})
	check(t, "host alone, on", Resolve(r, &Options{Trust: testTrust, UseHost: true}, false, "8080"),
		want{addr: "10.0.0.1", port: 50000, host: "www.example.com", serverPort: "80", proxied: true})
}

// Rule: X-Real-IP, alone or agreeing with X-Forwarded-For.
func TestResolve_xRealIP(t *testing.T) {
	opts := &Options{Trust: testTrust}
	for _, c := range []struct {
		name string
		hdr  []string
		want want
	}{
		{"alone", []string{"X-Real-IP", "192.0.2.9"}, want{addr: "192.0.2.9", proxied: true}},
		{"alone, with port", []string{"X-Real-IP", "192.0.2.9:80"}, want{addr: "192.0.2.9", port: 80, proxied: true}},
		{"alone, junk", []string{"X-Real-IP", "nope"}, want{addr: "10.0.0.1", port: 50000, proxied: true}},
		{"agrees with X-Forwarded-For", []string{"X-Real-IP", "192.0.2.9", "X-Forwarded-For", "6.6.6.6, 192.0.2.9"},
			want{addr: "192.0.2.9", proxied: true}},
		{"agrees, multi-hop", []string{"X-Real-IP", "10.0.0.8", "X-Forwarded-For", "192.0.2.9, 10.0.0.8"},
			want{addr: "192.0.2.9", proxied: true}},
		// A proxy setting only X-Real-IP passed the client's X-Forwarded-For.
		{"contradicts X-Forwarded-For", []string{"X-Real-IP", "192.0.2.9", "X-Forwarded-For", "6.6.6.6", "X-Forwarded-Proto", "https"},
			want{addr: "10.0.0.1", port: 50000, scheme: "http", serverPort: "8080", conflict: true}},
		// A proxy setting only X-Forwarded-For passed the client's X-Real-IP.
		{"client's X-Real-IP", []string{"X-Real-IP", "6.6.6.6", "X-Forwarded-For", "192.0.2.9"},
			want{addr: "10.0.0.1", port: 50000, conflict: true}},
		{"junk X-Real-IP beside X-Forwarded-For", []string{"X-Real-IP", "x", "X-Forwarded-For", "192.0.2.9"},
			want{addr: "10.0.0.1", port: 50000, conflict: true}},
	} {
		r := newReq("10.0.0.1:50000", "example.com", c.hdr...)
		check(t, c.name, Resolve(r, opts, false, "8080"), c.want)
	}
}

// Rule: Forwarded wins over X-Forwarded-* (HeadersForwarded); with
// HeadersAuto, both from one peer believe neither.
func TestResolve_headers(t *testing.T) {
	both := []string{
		"Forwarded", "for=192.0.2.1;proto=https",
		"X-Forwarded-For", "198.51.100.2",
		"X-Forwarded-Proto", "http",
		"X-Forwarded-Port", "8000",
	}
	for _, c := range []struct {
		name    string
		headers Headers
		hdr     []string
		want    want
	}{
		{"auto, Forwarded alone", HeadersAuto, both[:2],
			want{addr: "192.0.2.1", scheme: "https", serverPort: "443", proxied: true}},
		{"auto, X-Forwarded-* alone", HeadersAuto, both[2:],
			want{addr: "198.51.100.2", scheme: "http", serverPort: "8000", proxied: true}},
		{"auto, both: neither", HeadersAuto, both,
			want{addr: "10.0.0.1", port: 50000, scheme: "http", serverPort: "8080", conflict: true}},
		{"auto, Forwarded and X-Forwarded-Host without UseHost", HeadersAuto, append(both[:2:2], "X-Forwarded-Host", "x.example"),
			want{addr: "192.0.2.1", scheme: "https", proxied: true}},
		{"auto, Forwarded and X-Real-IP", HeadersAuto, append(both[:2:2], "X-Real-IP", "192.0.2.1"),
			want{addr: "10.0.0.1", port: 50000, conflict: true}},
		{"forwarded wins", HeadersForwarded, both,
			want{addr: "192.0.2.1", scheme: "https", serverPort: "443", proxied: true}},
		{"forwarded, X-Forwarded-* alone: ignored", HeadersForwarded, both[2:],
			want{addr: "10.0.0.1", port: 50000, scheme: "http", serverPort: "8080"}},
		{"x-forwarded wins", HeadersXForwarded, both,
			want{addr: "198.51.100.2", scheme: "http", serverPort: "8000", proxied: true}},
		{"x-forwarded, Forwarded alone: ignored", HeadersXForwarded, both[:2],
			want{addr: "10.0.0.1", port: 50000, scheme: "http", serverPort: "8080"}},
	} {
		r := newReq("10.0.0.1:50000", "example.com", c.hdr...)
		check(t, c.name, Resolve(r, &Options{Trust: testTrust, Headers: c.headers}, false, "8080"), c.want)
	}
}

func TestParseHeaders(t *testing.T) {
	for s, want := range map[string]Headers{"": HeadersAuto, "auto": HeadersAuto, "Forwarded": HeadersForwarded, " x-forwarded ": HeadersXForwarded} {
		if h, err := ParseHeaders(s); err != nil || h != want {
			t.Errorf("ParseHeaders(%q) = %v, %v", s, h, err)
		}
		if h, _ := ParseHeaders(want.String()); h != want {
			t.Errorf("%v does not round-trip", want)
		}
	}
	if _, err := ParseHeaders("xff"); err == nil || !strings.Contains(err.Error(), `"xff"`) {
		t.Errorf("ParseHeaders(xff): %v", err)
	}
}

// Rule: a trusted peer reached through the PROXY protocol (r.RemoteAddr
// is its source) is judged on that source.
func TestResolve_proxySource(t *testing.T) {
	// An L4 balancer gave the real client: its headers are the client's.
	r := newReq("192.0.2.1:5000", "example.com", "X-Forwarded-For", "6.6.6.6")
	check(t, "client source", Resolve(r, &Options{Trust: testTrust}, false, "8080"),
		want{addr: "192.0.2.1", port: 5000, serverPort: "8080", remote: "192.0.2.1:5000"})
	// Behind it, a trusted L7 proxy's headers are believed.
	r = newReq("10.9.9.9:5000", "example.com", "X-Forwarded-For", "192.0.2.1")
	check(t, "proxy source", Resolve(r, &Options{Trust: testTrust}, false, "8080"),
		want{addr: "192.0.2.1", proxied: true})
}

// Rule: no allocation where the peer is untrusted, nor on a trusted
// peer's usual headers.
func TestResolve_allocs(t *testing.T) {
	for _, c := range []struct {
		name string
		r    *http.Request
		opts *Options
	}{
		{"nil trust", newReq("203.0.113.5:40000", "example.com", allHeaders...), &Options{}},
		{"untrusted", newReq("203.0.113.5:40000", "example.com", allHeaders...), &Options{Trust: testTrust, UseHost: true}},
		{"untrusted IPv6", newReq("[2001:db8::5]:40000", "example.com", allHeaders...), &Options{Trust: testTrust}},
		{"xff 3 hops", newReq("10.0.0.1:40000", "example.com", "X-Forwarded-For", "192.0.2.1, 10.0.0.3, 10.0.0.2",
			"X-Forwarded-Proto", "https", "X-Forwarded-Port", "443", "X-Real-IP", "10.0.0.2"), &Options{Trust: testTrust}},
		{"xff host", newReq("10.0.0.1:40000", "example.com", "X-Forwarded-For", "192.0.2.1:80",
			"X-Forwarded-Host", "www.example.com:8443"), &Options{Trust: testTrust, UseHost: true}},
		{"forwarded", newReq("10.0.0.1:40000", "example.com",
			"Forwarded", `for="[2001:db8::1]:4711";proto=https;host=www.example.com, for=10.0.0.2`), &Options{Trust: testTrust, UseHost: true}},
		{"junk", newReq("10.0.0.1:40000", "example.com", "X-Forwarded-For", "unknown, _x, [zz]"), &Options{Trust: testTrust}},
	} {
		var o Origin
		n := testing.AllocsPerRun(100, func() { o = Resolve(c.r, c.opts, false, "8080") })
		if n != 0 {
			t.Errorf("%s: %v allocations", c.name, n)
		}
		_ = o
	}
}

func BenchmarkResolve_untrusted(b *testing.B) {
	r := newReq("203.0.113.5:40000", "example.com",
		"User-Agent", "bench", "Accept", "*/*", "X-Forwarded-For", "192.0.2.66")
	opts := &Options{Trust: MustParseTrust("private")}
	b.ReportAllocs()
	for b.Loop() {
		Resolve(r, opts, false, "8080")
	}
}

func BenchmarkResolve_xff3hops(b *testing.B) {
	r := newReq("10.0.0.1:40000", "example.com",
		"User-Agent", "bench", "Accept", "*/*",
		"X-Forwarded-For", "192.0.2.1, 10.0.0.3, 10.0.0.2", "X-Forwarded-Proto", "https")
	opts := &Options{Trust: MustParseTrust("private")}
	b.ReportAllocs()
	for b.Loop() {
		Resolve(r, opts, false, "8080")
	}
}

func BenchmarkResolve_forwarded2hops(b *testing.B) {
	r := newReq("10.0.0.1:40000", "example.com",
		"Forwarded", `for="[2001:db8::1]:4711";proto=https;host=www.example.com, for=10.0.0.2;proto=http`)
	opts := &Options{Trust: MustParseTrust("private"), UseHost: true}
	b.ReportAllocs()
	for b.Loop() {
		Resolve(r, opts, false, "8080")
	}
}
