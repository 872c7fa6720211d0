package phpreq

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"iter"
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Env is the CGI/1.1 environment of one request, as an ordered list of
// name/value pairs: the fixed variables first, then HTTP_* sorted by name.
// Get it from Resolver.Env and give it back with Release; its strings may
// be kept after Release, the Env itself may not be used.
type Env struct {
	kv []envVar
}

type envVar struct{ name, value string }

// maxPooledVars bounds the Envs kept in the pool: one built for a request
// with hundreds of headers is left to the garbage collector.
const maxPooledVars = 256

var envPool = sync.Pool{New: func() any { return &Env{kv: make([]envVar, 0, 64)} }}

// All yields the variables in order.
func (e *Env) All() iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		for _, v := range e.kv {
			if !yield(v.name, v.value) {
				return
			}
		}
	}
}

// Get returns the value of name, "" if it is not set.
func (e *Env) Get(name string) string {
	v, _ := e.Lookup(name)
	return v
}

// Lookup returns the value of name and whether it is set.
func (e *Env) Lookup(name string) (string, bool) {
	for _, v := range e.kv {
		if v.name == name {
			return v.value, true
		}
	}
	return "", false
}

// Set sets name to value, replacing it if it is set (for a backend's own
// variables, e.g. configured extras), else adding it at the end.
func (e *Env) Set(name, value string) {
	for i := range e.kv {
		if e.kv[i].name == name {
			e.kv[i].value = value
			return
		}
	}
	e.kv = append(e.kv, envVar{name, value})
}

// Len is the number of variables.
func (e *Env) Len() int { return len(e.kv) }

// Release returns e to a pool; e must not be used after.
func (e *Env) Release() {
	if cap(e.kv) > maxPooledVars {
		return
	}
	clear(e.kv) // drop the request's strings
	e.kv = e.kv[:0]
	envPool.Put(e)
}

func (e *Env) add(name, value string) { e.kv = append(e.kv, envVar{name, value}) }

// Env builds the environment for target t (a Script; for another Kind the
// SCRIPT_* variables are what t holds). contentLength is the body length
// the backend will send (for a chunked request, the length after
// de-chunking; see PrepareBody), or -1 for no body: CONTENT_LENGTH is set
// when it is > 0, and to "0" when it is 0 and the request declared a body
// (a Content-Length header, or chunked).
//
// Request headers become HTTP_* variables (values joined with ", ", Cookie
// with "; "), except: Proxy (httpoxy, CVE-2016-5385), Host (HTTP_HOST is
// r.Host), Content-Type and Content-Length (they are CONTENT_*), and any
// name with a byte other than a letter, digit or "-": with nginx's
// underscores_in_headers off, "X_User" would otherwise arrive as
// HTTP_X_USER, indistinguishable from "X-User", a spoofing vector past a
// proxy that filters the dash form.
//
// A value with a NUL, CR or LF byte (net/http refuses them in headers,
// but a Basic credential is decoded from base64) is refused with
// ErrUnsafeValue: the client gets a 400, and PHP never sees it.
func (rs *Resolver) Env(r *http.Request, t *Target, contentLength int64) (*Env, error) {
	if t == nil {
		t = &Target{}
	}
	e := envPool.Get().(*Env)

	fwd := ForwardedOf(r)
	scheme := "http"
	switch {
	case fwd != nil && fwd.Scheme != "":
		scheme = fwd.Scheme
	case r.TLS != nil:
		scheme = "https"
	}
	e.add("GATEWAY_INTERFACE", "CGI/1.1")
	e.add("SERVER_SOFTWARE", rs.opts.ServerSoftware)
	e.add("SERVER_PROTOCOL", r.Proto)
	e.add("REQUEST_METHOD", r.Method)
	e.add("REQUEST_SCHEME", scheme)
	if scheme == "https" {
		e.add("HTTPS", "on")
	}
	if r.TLS != nil {
		// As nginx's fastcgi_params ($ssl_protocol, $ssl_cipher).
		e.add("SSL_PROTOCOL", tlsVersionName(r.TLS.Version))
		e.add("SSL_CIPHER", tls.CipherSuiteName(r.TLS.CipherSuite))
	}
	e.add("REDIRECT_STATUS", "200")

	root := t.Root
	if root == "" {
		root = rs.current().dir.Path
	}
	e.add("DOCUMENT_ROOT", root)
	e.add("SCRIPT_FILENAME", t.ScriptFilename)
	e.add("SCRIPT_NAME", t.ScriptName)
	self := t.ScriptName
	if t.PathInfo != "" {
		self += t.PathInfo
		e.add("PATH_INFO", t.PathInfo)
		e.add("PATH_TRANSLATED", strings.TrimSuffix(root, "/")+t.PathInfo)
	}
	e.add("PHP_SELF", self)
	e.add("DOCUMENT_URI", self)
	e.add("REQUEST_URI", requestURI(r))
	e.add("QUERY_STRING", r.URL.RawQuery)

	e.add("CONTENT_TYPE", headerValue(r.Header, "Content-Type"))
	if contentLength > 0 || contentLength == 0 && (len(r.Header["Content-Length"]) > 0 || chunked(r)) {
		e.add("CONTENT_LENGTH", strconv.FormatInt(contentLength, 10))
	}

	hostName, hostPort := splitHost(r.Host)
	addr, port, ok := rs.localAddr(r)
	if ok {
		e.add("SERVER_ADDR", addr)
	}
	switch {
	case fwd != nil && fwd.ServerPort != "":
		port = fwd.ServerPort
	case port == "":
		port = hostPort
	}
	if port == "" {
		port = "80"
		if scheme == "https" {
			port = "443"
		}
	}
	if rs.opts.ServerName != "" {
		hostName = rs.opts.ServerName
	} else if hostName == "" {
		hostName = addr
	}
	e.add("SERVER_NAME", hostName)
	e.add("SERVER_PORT", port)
	if ip, rport, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		e.add("REMOTE_ADDR", ip)
		e.add("REMOTE_PORT", rport)
	} else if r.RemoteAddr != "" {
		e.add("REMOTE_ADDR", r.RemoteAddr)
	}

	if user, pw, ok := basicAuth(r.Header); ok {
		e.add("AUTH_TYPE", "Basic")
		e.add("PHP_AUTH_USER", user)
		e.add("PHP_AUTH_PW", pw)
	}

	e.add("HTTP_HOST", r.Host)
	start := len(e.kv)
	for name, vals := range r.Header {
		if len(vals) == 0 {
			continue
		}
		env := httpName(name)
		if env == "" {
			continue
		}
		v := vals[0]
		if len(vals) > 1 {
			sep := ", "
			if env == "HTTP_COOKIE" {
				sep = "; "
			}
			v = strings.Join(vals, sep)
		}
		e.add(env, v)
	}
	hdrs := e.kv[start:]
	slices.SortFunc(hdrs, func(a, b envVar) int { return strings.Compare(a.name, b.name) })
	// Two keys naming the same variable ("X-A" and a raw "x-a" put in
	// the map by a handler) are merged.
	for i := 1; i < len(hdrs); i++ {
		if hdrs[i].name == hdrs[i-1].name {
			hdrs[i-1].value += ", " + hdrs[i].value
			hdrs = slices.Delete(hdrs, i, i+1)
			i--
		}
	}
	e.kv = e.kv[:start+len(hdrs)]
	for _, v := range e.kv {
		if !safeValue(v.value) {
			e.Release()
			return nil, fmt.Errorf("%w: %s", ErrUnsafeValue, v.name)
		}
	}
	return e, nil
}

// Forwarded is what a trusted proxy said of the connection the client
// made to it (server.trusted_proxies): it overrides the scheme and port
// of fe-php's own connection. The server rewrites the client address
// and host in the request itself.
type Forwarded struct {
	Scheme     string // "http" or "https"
	ServerPort string // the port the client connected to
}

type forwardedKey struct{}

// WithForwarded returns r carrying f for Env.
func WithForwarded(r *http.Request, f *Forwarded) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), forwardedKey{}, f))
}

// ForwardedOf returns what WithForwarded put in r (nil if nothing).
func ForwardedOf(r *http.Request) *Forwarded {
	f, _ := r.Context().Value(forwardedKey{}).(*Forwarded)
	return f
}

// tlsVersionName names a TLS version as nginx's $ssl_protocol does.
func tlsVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS13:
		return "TLSv1.3"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS10:
		return "TLSv1"
	}
	return tls.VersionName(v)
}

// ErrUnsafeValue is Env's error for a value with a NUL, CR or LF byte.
var ErrUnsafeValue = errors.New("phpreq: NUL, CR or LF in a request value")

// safeValue reports whether s has no NUL, CR or LF byte.
func safeValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == 0 || c == '\r' || c == '\n' {
			return false
		}
	}
	return true
}

// basicAuth decodes an "Authorization: Basic" header, as r.BasicAuth
// does but without canonicalizing the header name on every request.
func basicAuth(h http.Header) (user, pw string, ok bool) {
	v := headerValue(h, "Authorization")
	const prefix = "Basic "
	if len(v) < len(prefix) || !strings.EqualFold(v[:len(prefix)], prefix) {
		return "", "", false
	}
	c, err := base64.StdEncoding.DecodeString(strings.TrimLeft(v[len(prefix):], " "))
	if err != nil {
		return "", "", false
	}
	user, pw, ok = strings.Cut(string(c), ":")
	return user, pw, ok
}

func headerValue(h http.Header, canonical string) string {
	if v := h[canonical]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func chunked(r *http.Request) bool {
	return len(r.TransferEncoding) > 0 && r.TransferEncoding[0] == "chunked"
}

// requestURI is REQUEST_URI: the original request target, path and query.
// An absolute-form target ("GET http://host/p?q") is cut to "/p?q", the
// form PHP applications parse.
func requestURI(r *http.Request) string {
	u := r.RequestURI
	if u == "" {
		return r.URL.RequestURI()
	}
	if u[0] == '/' {
		return u
	}
	if i := strings.Index(u, "://"); i >= 0 {
		rest := u[i+3:]
		if j := strings.IndexAny(rest, "/?"); j >= 0 {
			if rest[j] == '?' {
				return "/" + rest[j:]
			}
			return rest[j:]
		}
		return "/"
	}
	return u // "*" of OPTIONS *
}

// splitHost splits a Host header into name and port; brackets of an IPv6
// literal are dropped. It does not allocate.
func splitHost(host string) (name, port string) {
	if strings.HasPrefix(host, "[") {
		end := strings.IndexByte(host, ']')
		if end < 0 {
			return host, ""
		}
		name, rest := host[1:end], host[end+1:]
		if len(rest) > 1 && rest[0] == ':' {
			port = rest[1:]
		}
		return name, port
	}
	i := strings.LastIndexByte(host, ':')
	if i < 0 || strings.IndexByte(host[:i], ':') >= 0 {
		return host, "" // no port, or an unbracketed IPv6 literal
	}
	return host[:i], host[i+1:]
}

// localAddr is a cached SERVER_ADDR / SERVER_PORT pair.
type localAddr struct {
	ap         netip.AddrPort
	addr, port string
}

const maxLocalAddrs = 32

// localAddr returns the strings of the address the request came in on;
// ok is false if it is unknown. A TCP address costs no allocation once
// seen: the few local addresses a server has are cached.
func (rs *Resolver) localAddr(r *http.Request) (addr, port string, ok bool) {
	switch a := r.Context().Value(http.LocalAddrContextKey).(type) {
	case *net.TCPAddr:
		ap := a.AddrPort()
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		cache := rs.local.Load()
		if cache != nil {
			for i := range *cache {
				if c := &(*cache)[i]; c.ap == ap {
					return c.addr, c.port, true
				}
			}
		}
		addr, port = ap.Addr().String(), strconv.Itoa(int(ap.Port()))
		if cache == nil || len(*cache) < maxLocalAddrs {
			var next []localAddr
			if cache != nil {
				next = append(next, *cache...)
			}
			next = append(next, localAddr{ap, addr, port})
			rs.local.CompareAndSwap(cache, &next) // lost race: cached next time
		}
		return addr, port, true
	case net.Addr:
		if h, p, err := net.SplitHostPort(a.String()); err == nil {
			return h, p, true
		}
	}
	return "", "", false
}

// commonHeaders are header names whose HTTP_* form is precomputed.
var commonHeaders = []string{
	"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language",
	"Access-Control-Request-Headers", "Access-Control-Request-Method",
	"Authorization", "Cache-Control", "Connection", "Content-Encoding", "Cookie",
	"Dnt", "Early-Data", "Expect", "Forwarded", "From",
	"If-Match", "If-Modified-Since", "If-None-Match", "If-Range", "If-Unmodified-Since",
	"Keep-Alive", "Max-Forwards", "Origin", "Pragma", "Priority", "Purpose", "Range", "Referer",
	"Sec-Ch-Ua", "Sec-Ch-Ua-Mobile", "Sec-Ch-Ua-Platform",
	"Sec-Fetch-Dest", "Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-User", "Sec-Gpc", "Sec-Purpose",
	"Sec-Websocket-Extensions", "Sec-Websocket-Key", "Sec-Websocket-Protocol", "Sec-Websocket-Version",
	"Te", "Upgrade", "Upgrade-Insecure-Requests", "User-Agent", "Via",
	"X-Csrf-Token", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Port", "X-Forwarded-Proto",
	"X-Http-Method-Override", "X-Real-Ip", "X-Request-Id", "X-Requested-With", "X-Xsrf-Token",
}

// skipped are variables never made from a header.
var skipped = map[string]bool{
	"HTTP_PROXY":          true, // httpoxy
	"HTTP_HOST":           true, // from r.Host
	"HTTP_CONTENT_TYPE":   true, // CONTENT_TYPE
	"HTTP_CONTENT_LENGTH": true, // CONTENT_LENGTH
}

var headerVars = func() map[string]string {
	m := make(map[string]string, len(commonHeaders))
	for _, h := range commonHeaders {
		m[textproto.CanonicalMIMEHeaderKey(h)] = convertName(h)
	}
	return m
}()

// httpName is the variable for header name, "" if it gets none.
func httpName(name string) string {
	if v, ok := headerVars[name]; ok {
		return v
	}
	v := convertName(name)
	if v == "" || skipped[v] {
		return ""
	}
	return v
}

// convertName is "HTTP_" + name upper-cased with "-" as "_", or "" if name
// has a byte other than an ASCII letter, digit or "-".
func convertName(name string) string {
	if name == "" {
		return ""
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return ""
		}
	}
	var b strings.Builder
	b.Grow(len("HTTP_") + len(name))
	b.WriteString("HTTP_")
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		case c == '-':
			c = '_'
		}
		b.WriteByte(c)
	}
	return b.String()
}
