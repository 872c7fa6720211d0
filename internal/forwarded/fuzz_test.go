package forwarded

import (
	"net/http"
	"net/netip"
	"testing"
)

// The fuzz targets check, for any header value a client can send:
// no panic; a sane Origin; and that what a trusted proxy appends after
// the client's value decides the address, whatever the value (a client
// can hide behind garbage, never name an address).

var (
	fuzzTrust = MustParseTrust("10.0.0.0/8", "fd00::/8")
	fuzzPeer  = netip.MustParseAddr("10.0.0.1")
	fuzzReal  = netip.MustParseAddr("192.0.2.7") // the client the proxy saw
)

func fuzzSeeds(f *testing.F, seeds ...string) {
	for _, s := range seeds {
		f.Add(s)
	}
}

// checkOrigin checks what holds of every Origin.
func checkOrigin(t *testing.T, o Origin, r *http.Request) {
	t.Helper()
	if o.Scheme != "http" && o.Scheme != "https" {
		t.Fatalf("Scheme %q", o.Scheme)
	}
	if p, ok := portString(o.ServerPort); !ok || p != o.ServerPort {
		t.Fatalf("ServerPort %q", o.ServerPort)
	}
	if o.Host != r.Host {
		if _, ok := hostPort(o.Host); !ok {
			t.Fatalf("Host %q", o.Host)
		}
	}
	if !o.Addr.IsValid() || o.Addr.Zone() != "" || o.Addr.Is4In6() {
		t.Fatalf("Addr %v", o.Addr)
	}
	if s := o.RemoteAddr(); s == "" {
		t.Fatal("empty RemoteAddr()")
	}
}

func FuzzForwarded(f *testing.F) {
	fuzzSeeds(f,
		`for=192.0.2.60;proto=http;by=203.0.113.43`,
		`For="[2001:db8:cafe::17]:4711"`,
		`for=192.0.2.43, for=198.51.100.17;proto=https;host="example.com:8443"`,
		`for=_hidden, for=unknown, for="_x:_y"`,
		`for="\"quoted\\"`, `for="`, `;;,,`, `for=10.0.0.2;for=10.0.0.3`,
		`host="[::1]:80";proto=HTTPS`, `for="[fe80::1%25eth0]:1"`, "for=\x00",
	)
	opts := &Options{Trust: fuzzTrust, UseHost: true}
	f.Fuzz(func(t *testing.T, v string) {
		// Alone, from a trusted peer.
		r := newReq("10.0.0.1:50000", "example.com")
		r.Header["Forwarded"] = []string{v}
		o := Resolve(r, opts, false, "8080")
		checkOrigin(t, o, r)
		// From an untrusted peer: nothing changes.
		r.RemoteAddr = "203.0.113.5:1"
		if o := Resolve(r, opts, true, "8443"); o.Addr != netip.MustParseAddr("203.0.113.5") ||
			o.Scheme != "https" || o.Host != "example.com" || o.ServerPort != "8443" || o.Proxied {
			t.Fatalf("untrusted peer: %+v", o)
		}
		// The proxy appends its element to the client's line: the client
		// it saw, or (after garbage that swallows the line) the peer.
		r = newReq("10.0.0.1:50000", "example.com")
		r.Header["Forwarded"] = []string{v + ", for=192.0.2.7"}
		o = Resolve(r, opts, false, "8080")
		checkOrigin(t, o, r)
		if o.Addr != fuzzReal && o.Addr != fuzzPeer {
			t.Fatalf("same line: client %v", o.Addr)
		}
		// The proxy adds its own line: exactly the client it saw.
		r.Header["Forwarded"] = []string{v, "for=192.0.2.7"}
		o = Resolve(r, opts, false, "8080")
		checkOrigin(t, o, r)
		if o.Addr != fuzzReal || o.Scheme != "http" || o.Host != "example.com" {
			t.Fatalf("own line: %+v", o)
		}
	})
}

func FuzzXForwardedFor(f *testing.F) {
	fuzzSeeds(f,
		"192.0.2.1", "192.0.2.1, 10.0.0.3, 10.0.0.2", "[2001:db8::1]:4711, unknown",
		"_hidden", ",,, ,", "::ffff:10.0.0.1", "1.2.3.4:", "[::1", "fe80::1%eth0", "10.0.0.1:99999",
	)
	opts := &Options{Trust: fuzzTrust, UseHost: true}
	f.Fuzz(func(t *testing.T, v string) {
		r := newReq("10.0.0.1:50000", "example.com")
		r.Header["X-Forwarded-For"] = []string{v}
		r.Header["X-Forwarded-Proto"] = []string{v}
		r.Header["X-Forwarded-Host"] = []string{v}
		r.Header["X-Forwarded-Port"] = []string{v}
		o := Resolve(r, opts, false, "8080")
		checkOrigin(t, o, r)
		if !o.Proxied {
			t.Fatal("not proxied")
		}
		// Whatever the client sent, the address the proxy appended decides.
		r = newReq("10.0.0.1:50000", "example.com")
		r.Header["X-Forwarded-For"] = []string{v + ", 192.0.2.7"}
		o = Resolve(r, opts, false, "8080")
		checkOrigin(t, o, r)
		if o.Addr != fuzzReal {
			t.Fatalf("same line: client %v", o.Addr)
		}
		r.Header["X-Forwarded-For"] = []string{v, "192.0.2.7"}
		if o = Resolve(r, opts, false, "8080"); o.Addr != fuzzReal {
			t.Fatalf("own line: client %v", o.Addr)
		}
		// And X-Real-IP from the client cannot override it.
		r.Header["X-Real-Ip"] = []string{v}
		if o = Resolve(r, opts, false, "8080"); o.Addr != fuzzReal && !(o.Conflict && o.Addr == fuzzPeer) {
			t.Fatalf("with X-Real-IP: %+v", o)
		}
	})
}
