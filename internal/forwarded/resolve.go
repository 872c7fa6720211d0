package forwarded

import (
	"errors"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// Origin is the client as fe-php believes it: what PHP (REMOTE_ADDR,
// REMOTE_PORT, HTTPS, REQUEST_SCHEME, SERVER_PORT, HTTP_HOST), the access
// log and redirects must use.
type Origin struct {
	Addr       netip.Addr // the client's address; invalid if r.RemoteAddr is not an IP (a Unix socket)
	Port       uint16     // the client's port (0 if unknown: a forwarded address without one)
	Scheme     string     // "http" or "https": what the client spoke
	Host       string     // the host the client asked for: the Host header, or the forwarded one if Options.UseHost
	ServerPort string     // the port the client connected to ("443"), for SERVER_PORT
	Proxied    bool       // the peer is trusted and its forwarding headers were used

	// Peer is the immediate peer: r.RemoteAddr, which is the PROXY
	// protocol's source when Listener believed one. When Proxied, it is
	// the proxy (for a log's "via").
	Peer netip.AddrPort
	// Conflict is set when a trusted peer sent forwarding headers that
	// contradict, or may contradict, each other, and so none was
	// believed: Forwarded beside X-Forwarded-* under HeadersAuto, or an
	// X-Real-IP that is not X-Forwarded-For's rightmost address. A server
	// may log it: a proxy passes a client's headers of a kind it does not
	// set (then pick Options.Headers), or a client is trying it on.
	Conflict bool

	remote string // r.RemoteAddr, when Addr and Port are the peer's
}

// RemoteAddr is the client address as http.Request.RemoteAddr writes it:
// "192.0.2.1:4711", "[2001:db8::1]:4711", or the bare address when the
// port is unknown, so that a net.SplitHostPort of it fails and REMOTE_PORT
// is left out rather than "0". When the address is the peer's, it is
// r.RemoteAddr itself (no allocation).
func (o Origin) RemoteAddr() string {
	if o.remote != "" || !o.Addr.IsValid() {
		return o.remote
	}
	if o.Port == 0 {
		return o.Addr.String()
	}
	return netip.AddrPortFrom(o.Addr, o.Port).String()
}

// Headers selects which forwarding headers the trusted proxies set, and
// so which ones Resolve reads. A proxy that sets one kind usually passes
// the client's headers of the other kind through untouched: believing
// those would let any client name any address. So pick the kind your
// proxies set, or leave HeadersAuto.
type Headers uint8

const (
	// HeadersAuto reads RFC 7239's Forwarded when a trusted peer sent
	// it, else the X-Forwarded-* family. When a trusted peer sent both a
	// Forwarded header and any X-Forwarded-For, X-Forwarded-Proto,
	// X-Forwarded-Port, X-Real-IP (or X-Forwarded-Host with UseHost),
	// there is no telling which of them the proxy wrote and which the
	// client did: none is believed, and Origin.Conflict is set.
	HeadersAuto Headers = iota
	// HeadersForwarded reads only Forwarded (Forwarded always wins;
	// X-Forwarded-* and X-Real-IP are never read).
	HeadersForwarded
	// HeadersXForwarded reads only X-Forwarded-For, -Proto, -Host,
	// -Port and X-Real-IP (Forwarded is never read).
	HeadersXForwarded
)

// ParseHeaders parses a configuration value: "auto" (or ""),
// "forwarded" or "x-forwarded", in any case.
func ParseHeaders(s string) (Headers, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return HeadersAuto, nil
	case "forwarded":
		return HeadersForwarded, nil
	case "x-forwarded":
		return HeadersXForwarded, nil
	}
	return 0, errors.New(`want "auto", "forwarded" or "x-forwarded", not ` + strconv.Quote(s))
}

// String is the configuration value of h.
func (h Headers) String() string {
	switch h {
	case HeadersAuto:
		return "auto"
	case HeadersForwarded:
		return "forwarded"
	case HeadersXForwarded:
		return "x-forwarded"
	}
	return "Headers(" + strconv.Itoa(int(h)) + ")"
}

// Options configure Resolve.
type Options struct {
	// Trust is the peers whose forwarding headers are believed; nil
	// trusts nobody.
	Trust *Trust
	// UseHost believes X-Forwarded-Host / Forwarded host= from trusted
	// proxies. Off by default: a proxy that passes the client's own Host
	// header through does not need it, and one that does not remove a
	// client's X-Forwarded-Host would let the client pick the host PHP
	// builds its links with.
	UseHost bool
	// Headers selects the header kind the proxies set (HeadersAuto).
	Headers Headers
}

// Resolve works out r's Origin. r.RemoteAddr is the immediate peer (the
// TCP peer, or the PROXY protocol source when Listener believed one); tls
// says whether the connection to fe-php itself is TLS; localPort is the
// port of fe-php's listener that accepted it ("" if unknown).
//
// Unless the peer is in opts.Trust, the forwarding headers change nothing:
// Addr and Port are the peer's, Scheme is the connection's, Host is
// r.Host, and ServerPort is localPort (else the port in r.Host, else the
// scheme's default). The headers still reach PHP as HTTP_* variables.
//
// From a trusted peer, the address is found by walking the for= nodes of
// Forwarded, or X-Forwarded-For, from right to left (all header lines,
// in order, as one list), skipping addresses that are themselves
// trusted: the first untrusted one is the client (nginx's realip with
// real_ip_recursive on). If all are trusted, the leftmost is. At most 32
// elements are examined, counting from the right; past that, the last
// trusted one stands. An element that is not an address ("unknown", an
// obfuscated "_id", garbage, a Forwarded element without for= or that
// cannot be parsed) stops the walk, and the client is then the last
// address the walk trusted: the proxy that could not name its own client,
// or the peer itself. So a client can hide behind its proxy with
// garbage, but cannot make itself any address it likes.
//
// Scheme, Host and ServerPort, from a trusted peer:
//
//   - Forwarded: proto= and host= of the element where the walk stopped
//     (the client's element, or the garbage one, written by the last
//     trusted proxy, describing the client's connection to it). So the
//     scheme and host belong to the same hop as the address.
//   - X-Forwarded-Proto, -Host and -Port: the rightmost value, the one
//     the peer wrote. These headers do not line up with X-Forwarded-For
//     hop by hop (most proxies set or pass them, few append), so an
//     index taken from the address walk could land on a value the client
//     sent; the rightmost is the only one a trusted proxy surely wrote.
//   - X-Real-IP: the client when X-Forwarded-For is absent. When both
//     are present, X-Real-IP must be the rightmost X-Forwarded-For
//     address (a proxy setting both writes it so), or neither is
//     believed (Conflict): one of them came from the client.
//
// A proto that is not "http" or "https" (any case) is ignored: Scheme is
// then the connection's. ServerPort is X-Forwarded-Port (1-65535, digits
// only), else the port of Host (the forwarded host with UseHost, else
// r.Host), else 443 or 80 by Scheme. A forwarded host is used only with
// opts.UseHost and only if it is a valid Host value: a name of letters,
// digits, "-", "." and "_", or a bracketed IPv6 address, and an optional
// port (no spaces, slashes, "@", "%" or control characters); otherwise
// Host is r.Host.
//
// Resolve does not allocate when the peer is not trusted, nor on a
// trusted peer's usual headers.
func Resolve(r *http.Request, opts *Options, tls bool, localPort string) Origin {
	o := Origin{Scheme: "http", Host: r.Host, remote: r.RemoteAddr}
	if tls {
		o.Scheme = "https"
	}
	o.Peer = parsePeer(r.RemoteAddr)
	o.Addr, o.Port = o.Peer.Addr(), o.Peer.Port()
	if opts == nil || !opts.Trust.Contains(o.Addr) || !fromProxy(r.Header, opts, &o) {
		o.ServerPort = localPort
		if o.ServerPort == "" {
			o.ServerPort = defaultPort(o.Host, o.Scheme)
		}
		return o
	}
	o.Proxied = true
	if o.ServerPort == "" {
		o.ServerPort = defaultPort(o.Host, o.Scheme)
	}
	return o
}

// defaultPort is the port in host, else the default port of scheme.
func defaultPort(host, scheme string) string {
	if p, ok := hostPort(host); ok && p != "" {
		return p
	}
	if scheme == "https" {
		return "443"
	}
	return "80"
}

// parsePeer parses r.RemoteAddr: "ip:port", or a bare address; the zero
// AddrPort if it is neither.
func parsePeer(s string) netip.AddrPort {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	if s == "" || s[0] == '@' || s[0] == '/' {
		return netip.AddrPort{} // a Unix socket, without a failed parse's allocation
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a.Unmap(), 0)
	}
	return netip.AddrPort{}
}

// fromProxy applies a trusted peer's headers to o; it reports whether it
// used any (false: none sent, or Conflict). It may set o.ServerPort.
func fromProxy(h http.Header, opts *Options, o *Origin) bool {
	fwd := h["Forwarded"]
	x := xHeaders{
		forv:  h["X-Forwarded-For"],
		proto: h["X-Forwarded-Proto"],
		port:  h["X-Forwarded-Port"],
		real:  h["X-Real-Ip"],
	}
	if opts.UseHost {
		x.host = h["X-Forwarded-Host"]
	}
	switch opts.Headers {
	case HeadersForwarded:
		x = xHeaders{}
	case HeadersXForwarded:
		fwd = nil
	default:
		if len(fwd) > 0 && x.present() {
			o.Conflict = true
			return false
		}
	}
	switch {
	case len(fwd) > 0:
		useForwarded(fwd, opts, o)
	case x.present():
		if !useX(&x, opts.Trust, o) {
			o.Conflict = true
			return false
		}
	default:
		return false
	}
	return true
}

// xHeaders are the X-Forwarded-* family's values.
type xHeaders struct {
	forv, proto, host, port, real []string
}

func (x *xHeaders) present() bool {
	return len(x.forv)+len(x.proto)+len(x.host)+len(x.port)+len(x.real) > 0
}

// useForwarded applies Forwarded header values to o.
func useForwarded(vals []string, opts *Options, o *Origin) {
	var l elements
	parseForwarded(vals, &l)
	stop := -1 // the element the walk stopped at
	for i := l.n - 1; i >= 0 && i >= l.n-maxHops; i-- {
		stop = i
		e := l.at(i)
		if e.bad || !e.hasFor {
			break
		}
		a, port, ok := parseNode(e.forv)
		if !ok {
			break
		}
		o.Addr, o.Port, o.remote = a, port, ""
		if !opts.Trust.Contains(a) {
			break
		}
	}
	if stop < 0 {
		return // no element: the peer stands
	}
	e := l.at(stop)
	if e.bad {
		return // its proto and host are not to be read
	}
	if s := parseScheme(e.proto); s != "" {
		o.Scheme = s
	}
	if opts.UseHost && e.host != "" {
		if _, ok := hostPort(e.host); ok {
			o.Host = e.host
		}
	}
}

// useX applies the X-Forwarded-* family to o; it reports false on a
// conflict between X-Forwarded-For and X-Real-IP.
func useX(x *xHeaders, trust *Trust, o *Origin) bool {
	if len(x.real) > 0 {
		a, port, ok := parseNode(last(x.real))
		if len(x.forv) > 0 {
			if b, _, okb := parseNode(last(x.forv)); !ok || !okb || a != b {
				return false
			}
		} else if ok {
			o.Addr, o.Port, o.remote = a, port, ""
		}
	}
	b := newBackward(x.forv)
	for range maxHops {
		el, ok := b.next()
		if !ok {
			break
		}
		a, port, ok := parseNode(el)
		if !ok {
			break
		}
		o.Addr, o.Port, o.remote = a, port, ""
		if !trust.Contains(a) {
			break
		}
	}
	if s := parseScheme(last(x.proto)); s != "" {
		o.Scheme = s
	}
	if h := last(x.host); h != "" {
		if _, ok := hostPort(h); ok {
			o.Host = h
		}
	}
	if p, ok := portString(last(x.port)); ok {
		o.ServerPort = p
	}
	return true
}
