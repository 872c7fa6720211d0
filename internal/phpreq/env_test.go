package phpreq

import (
	"context"
	"crypto/tls"
	"errors"
	"maps"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// envMap builds the environment of r and returns it as a map, checking
// that no variable appears twice and that All, Get and Len agree.
func envMap(t *testing.T, rs *Resolver, r *http.Request, cl int64) map[string]string {
	t.Helper()
	tg := rs.Resolve(r)
	e := mustEnv(t, rs, r, &tg, cl)
	defer e.Release()
	m := map[string]string{}
	for k, v := range e.All() {
		if _, dup := m[k]; dup {
			t.Errorf("%s appears twice", k)
		}
		if e.Get(k) != v {
			t.Errorf("Get(%s) = %q, All gives %q", k, e.Get(k), v)
		}
		m[k] = v
	}
	if e.Len() != len(m) {
		t.Errorf("Len %d, %d variables", e.Len(), len(m))
	}
	return m
}

func withLocalAddr(r *http.Request, a net.Addr) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, a))
}

func checkVars(t *testing.T, got, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if g, ok := got[k]; !ok {
			t.Errorf("%s not set, want %q", k, v)
		} else if g != v {
			t.Errorf("%s = %q, want %q", k, g, v)
		}
	}
}

func checkUnset(t *testing.T, got map[string]string, names ...string) {
	t.Helper()
	for _, k := range names {
		if v, ok := got[k]; ok {
			t.Errorf("%s set to %q", k, v)
		}
	}
}

func TestEnvScriptWithPathInfo(t *testing.T) {
	root := site(t, wpSite...)
	rs := newResolver(t, root, "/index.php")
	r := request(http.MethodPost, "/a.php/b/c?x=1&y=%20")
	r.RemoteAddr = "192.0.2.7:51234"
	r.Host = "example.com:8080"
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Content-Length", "5")
	r = withLocalAddr(r, &net.TCPAddr{IP: net.ParseIP("198.51.100.1"), Port: 80})
	got := envMap(t, rs, r, 5)
	checkVars(t, got, map[string]string{
		"GATEWAY_INTERFACE": "CGI/1.1",
		"SERVER_SOFTWARE":   "fe-php/test",
		"SERVER_PROTOCOL":   "HTTP/1.1",
		"REQUEST_METHOD":    "POST",
		"REQUEST_SCHEME":    "http",
		"REDIRECT_STATUS":   "200",
		"DOCUMENT_ROOT":     root,
		"SCRIPT_FILENAME":   root + "/a.php",
		"SCRIPT_NAME":       "/a.php",
		"PATH_INFO":         "/b/c",
		"PATH_TRANSLATED":   root + "/b/c",
		"PHP_SELF":          "/a.php/b/c",
		"DOCUMENT_URI":      "/a.php/b/c",
		"REQUEST_URI":       "/a.php/b/c?x=1&y=%20",
		"QUERY_STRING":      "x=1&y=%20",
		"CONTENT_TYPE":      "application/x-www-form-urlencoded",
		"CONTENT_LENGTH":    "5",
		"SERVER_NAME":       "example.com",
		"SERVER_ADDR":       "198.51.100.1",
		"SERVER_PORT":       "80", // the local port, not the Host's
		"REMOTE_ADDR":       "192.0.2.7",
		"REMOTE_PORT":       "51234",
		"HTTP_HOST":         "example.com:8080",
	})
	checkUnset(t, got, "HTTPS", "HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH", "AUTH_TYPE", "PHP_AUTH_USER")
}

func TestEnvScriptWithoutPathInfo(t *testing.T) {
	root := site(t, wpSite...)
	rs := newResolver(t, root, "/index.php")
	got := envMap(t, rs, request("GET", "/a.php"), -1)
	checkVars(t, got, map[string]string{
		"SCRIPT_NAME": "/a.php", "PHP_SELF": "/a.php", "DOCUMENT_URI": "/a.php",
		"REQUEST_URI": "/a.php", "QUERY_STRING": "", "CONTENT_TYPE": "",
		"SERVER_NAME": "example.com", "SERVER_PORT": "80", // httptest's Host, the scheme's port
	})
	checkUnset(t, got, "PATH_INFO", "PATH_TRANSLATED", "CONTENT_LENGTH", "SERVER_ADDR")
}

func TestEnvFrontController(t *testing.T) {
	root := site(t, wpSite...)
	rs := newResolver(t, root, "/index.php")
	got := envMap(t, rs, request("GET", "/2024/01/hello%20world/?p=1&q=a%26b"), -1)
	checkVars(t, got, map[string]string{
		"SCRIPT_FILENAME": root + "/index.php",
		"SCRIPT_NAME":     "/index.php",
		"PHP_SELF":        "/index.php",
		"REQUEST_URI":     "/2024/01/hello%20world/?p=1&q=a%26b",
		"QUERY_STRING":    "p=1&q=a%26b",
	})
	checkUnset(t, got, "PATH_INFO")
}

func TestEnvTLSAndIPv6(t *testing.T) {
	rs := newResolver(t, site(t, "index.php"), "")
	r := request("GET", "/")
	r.TLS = &tls.ConnectionState{}
	r.Host = "[2001:db8::1]:8443"
	r.RemoteAddr = "[2001:db8::2]:40000"
	got := envMap(t, rs, r, -1)
	checkVars(t, got, map[string]string{
		"HTTPS": "on", "REQUEST_SCHEME": "https",
		"SERVER_NAME": "2001:db8::1", "SERVER_PORT": "8443",
		"REMOTE_ADDR": "2001:db8::2", "REMOTE_PORT": "40000",
		"HTTP_HOST": "[2001:db8::1]:8443",
	})

	r.Host = "[2001:db8::1]"
	r = withLocalAddr(r, &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 443})
	checkVars(t, envMap(t, rs, r, -1), map[string]string{
		"SERVER_NAME": "2001:db8::1", "SERVER_PORT": "443", "SERVER_ADDR": "2001:db8::1",
	})
}

func TestEnvLocalAddr(t *testing.T) {
	rs := newResolver(t, site(t, "index.php"), "")
	// An IPv4 connection on a dual-stack listener, seen twice (cached).
	for range 2 {
		r := withLocalAddr(request("GET", "/"), &net.TCPAddr{IP: net.ParseIP("::ffff:10.0.0.1"), Port: 8080})
		checkVars(t, envMap(t, rs, r, -1), map[string]string{"SERVER_ADDR": "10.0.0.1", "SERVER_PORT": "8080"})
	}
	// More addresses than the cache holds still come out right.
	for i := range maxLocalAddrs + 5 {
		r := withLocalAddr(request("GET", "/"), &net.TCPAddr{IP: net.IPv4(10, 1, 0, byte(i)), Port: 9000 + i})
		checkVars(t, envMap(t, rs, r, -1), map[string]string{
			"SERVER_ADDR": net.IPv4(10, 1, 0, byte(i)).String(), "SERVER_PORT": strconv.Itoa(9000 + i),
		})
	}
	// No Host: SERVER_NAME is the local address.
	r := withLocalAddr(request("GET", "/"), &net.TCPAddr{IP: net.ParseIP("10.0.0.1"), Port: 80})
	r.Host = ""
	checkVars(t, envMap(t, rs, r, -1), map[string]string{"SERVER_NAME": "10.0.0.1", "HTTP_HOST": ""})
	// A Unix socket listener: no address.
	r = withLocalAddr(request("GET", "/"), &net.UnixAddr{Name: "/run/fe-php.sock", Net: "unix"})
	r.RemoteAddr = "@"
	got := envMap(t, rs, r, -1)
	checkUnset(t, got, "SERVER_ADDR", "REMOTE_PORT")
	checkVars(t, got, map[string]string{"REMOTE_ADDR": "@", "SERVER_PORT": "80"})
}

func TestEnvHeaders(t *testing.T) {
	rs := newResolver(t, site(t, "index.php"), "")
	r := request("GET", "/")
	r.Header.Set("User-Agent", "Mozilla/5.0")
	r.Header["Accept-Language"] = []string{"en", "ja;q=0.8"}
	r.Header["Cookie"] = []string{"a=1", "b=2"}
	r.Header.Set("X-Custom-Thing", "yes")
	r.Header.Set("Authorization", "Bearer abc.def")
	r.Header.Set("Proxy", "http://evil.example:8080")
	r.Header["proxy"] = []string{"http://evil.example:8081"} // not canonical, still dropped
	r.Header["X_Forwarded_For"] = []string{"6.6.6.6"}        // underscores: dropped
	r.Header.Set("X-Forwarded-For", "10.0.0.9")
	r.Header["X.Dot"] = []string{"dropped"}
	r.Header["x-custom-thing"] = []string{"also"} // same variable: merged
	r.Header["Host"] = []string{"spoof.example"}  // HTTP_HOST is r.Host
	r.Header["Dnt"] = []string{"1"}
	r.Header["Empty"] = nil
	got := envMap(t, rs, r, -1)
	checkVars(t, got, map[string]string{
		"HTTP_USER_AGENT":      "Mozilla/5.0",
		"HTTP_ACCEPT_LANGUAGE": "en, ja;q=0.8",
		"HTTP_COOKIE":          "a=1; b=2",
		"HTTP_AUTHORIZATION":   "Bearer abc.def",
		"HTTP_X_FORWARDED_FOR": "10.0.0.9",
		"HTTP_HOST":            "example.com",
		"HTTP_DNT":             "1",
	})
	// Map order: either way round.
	if v := got["HTTP_X_CUSTOM_THING"]; v != "yes, also" && v != "also, yes" {
		t.Errorf("HTTP_X_CUSTOM_THING = %q", v)
	}
	checkUnset(t, got, "HTTP_PROXY", "HTTP_X_DOT", "HTTP_EMPTY", "AUTH_TYPE", "PHP_AUTH_USER")
	for k, v := range got {
		if v == "6.6.6.6" {
			t.Errorf("underscore header passed as %s", k)
		}
	}
}

func TestEnvOrder(t *testing.T) {
	rs := newResolver(t, site(t, "index.php"), "")
	r := request("GET", "/")
	for _, h := range []string{"Zeta", "Alpha", "Mid", "Accept", "User-Agent"} {
		r.Header.Set(h, "v")
	}
	tg := rs.Resolve(r)
	e := mustEnv(t, rs, r, &tg, -1)
	defer e.Release()
	var names []string
	for k := range e.All() {
		names = append(names, k)
	}
	if names[0] != "GATEWAY_INTERFACE" {
		t.Errorf("first %s", names[0])
	}
	i := 0
	for names[i] != "HTTP_HOST" {
		i++
	}
	want := []string{"HTTP_HOST", "HTTP_ACCEPT", "HTTP_ALPHA", "HTTP_MID", "HTTP_USER_AGENT", "HTTP_ZETA"}
	if got := names[i:]; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("headers in order %v, want %v", got, want)
	}
	// Early stop.
	n := 0
	for range e.All() {
		n++
		break
	}
	if n != 1 {
		t.Error(n)
	}
}

func TestEnvBasicAuth(t *testing.T) {
	rs := newResolver(t, site(t, "index.php"), "")
	r := request("GET", "/")
	r.SetBasicAuth("alice", "s3cr:t")
	got := envMap(t, rs, r, -1)
	checkVars(t, got, map[string]string{
		"AUTH_TYPE": "Basic", "PHP_AUTH_USER": "alice", "PHP_AUTH_PW": "s3cr:t",
		"HTTP_AUTHORIZATION": r.Header.Get("Authorization"),
	})
	r.Header.Set("Authorization", "basic Ym9iOg==") // scheme case-insensitive; empty password
	checkVars(t, envMap(t, rs, r, -1), map[string]string{"AUTH_TYPE": "Basic", "PHP_AUTH_USER": "bob", "PHP_AUTH_PW": ""})
	r.Header.Set("Authorization", "Basic Ym9i") // no colon
	checkUnset(t, envMap(t, rs, r, -1), "AUTH_TYPE", "PHP_AUTH_USER", "PHP_AUTH_PW")
	r.Header.Set("Authorization", "Basic !!!notbase64")
	checkUnset(t, envMap(t, rs, r, -1), "AUTH_TYPE", "PHP_AUTH_USER", "PHP_AUTH_PW")
}

func TestEnvContentLength(t *testing.T) {
	rs := newResolver(t, site(t, "index.php"), "")
	// Declared zero.
	r := request("POST", "/")
	r.Header.Set("Content-Length", "0")
	checkVars(t, envMap(t, rs, r, 0), map[string]string{"CONTENT_LENGTH": "0"})
	// Chunked, empty after de-chunking.
	r = request("POST", "/")
	r.TransferEncoding = []string{"chunked"}
	checkVars(t, envMap(t, rs, r, 0), map[string]string{"CONTENT_LENGTH": "0"})
	// Chunked, measured.
	checkVars(t, envMap(t, rs, r, 3<<20), map[string]string{"CONTENT_LENGTH": "3145728"})
	// No body.
	r = request("GET", "/")
	checkUnset(t, envMap(t, rs, r, 0), "CONTENT_LENGTH")
	checkUnset(t, envMap(t, rs, r, -1), "CONTENT_LENGTH")
}

func TestEnvRequestURI(t *testing.T) {
	rs := newResolver(t, site(t, "index.php"), "")
	for target, want := range map[string]string{
		"http://example.com/a/b?c=d": "/a/b?c=d",
		"http://example.com?c=d":     "/?c=d",
		"http://example.com":         "/",
		"/x%2Fy?z":                   "/x%2Fy?z",
	} {
		r := request("GET", "/")
		r.RequestURI = target
		if got := requestURI(r); got != want {
			t.Errorf("%s: %q, want %q", target, got, want)
		}
	}
	r := request("GET", "/p?q=1")
	r.RequestURI = ""
	checkVars(t, envMap(t, rs, r, -1), map[string]string{"REQUEST_URI": "/p?q=1"})
}

func TestEnvSetAndPool(t *testing.T) {
	rs := newResolver(t, site(t, "index.php"), "")
	r := request("GET", "/")
	r.Header.Set("X-Secret", "s")
	tg := rs.Resolve(r)
	e := mustEnv(t, rs, r, &tg, -1)
	n := e.Len()
	e.Set("REQUEST_TIME", "1700000000")
	e.Set("SERVER_SOFTWARE", "other")
	if e.Len() != n+1 || e.Get("REQUEST_TIME") != "1700000000" || e.Get("SERVER_SOFTWARE") != "other" {
		t.Errorf("Set: len %d→%d", n, e.Len())
	}
	if _, ok := e.Lookup("NOPE"); ok || e.Get("NOPE") != "" {
		t.Error("Lookup of unset")
	}
	e.Release()
	// A reused Env holds nothing of the previous request.
	r2 := request("GET", "/")
	e = mustEnv(t, rs, r2, &tg, -1)
	defer e.Release()
	m := maps.Collect(e.All())
	if _, ok := m["HTTP_X_SECRET"]; ok {
		t.Error("previous request's header leaked")
	}
	if _, ok := m["REQUEST_TIME"]; ok {
		t.Error("previous request's variable leaked")
	}
}

func TestSplitHost(t *testing.T) {
	for host, want := range map[string][2]string{
		"example.com":        {"example.com", ""},
		"example.com:8080":   {"example.com", "8080"},
		"[::1]":              {"::1", ""},
		"[::1]:80":           {"::1", "80"},
		"[::1]:":             {"::1", ""},
		"::1":                {"::1", ""},
		"[broken":            {"[broken", ""},
		"":                   {"", ""},
		"192.0.2.1:443":      {"192.0.2.1", "443"},
		"[fe80::1%25eth0]:1": {"fe80::1%25eth0", "1"},
	} {
		n, p := splitHost(host)
		if n != want[0] || p != want[1] {
			t.Errorf("%q: %q %q, want %q", host, n, p, want)
		}
	}
}

func TestConvertName(t *testing.T) {
	for name, want := range map[string]string{
		"User-Agent": "HTTP_USER_AGENT", "x-a1": "HTTP_X_A1", "X_A": "", "X.A": "", "": "", "Ü": "",
	} {
		if got := convertName(name); got != want {
			t.Errorf("%q: %q, want %q", name, got, want)
		}
	}
	for k, v := range headerVars {
		if convertName(k) != v {
			t.Errorf("table %s: %s", k, v)
		}
	}
}

func TestEnvConcurrent(t *testing.T) {
	rs := newResolver(t, site(t, "index.php"), "/index.php")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				port := 1000 + (g*200+i)%50 // more addresses than the cache holds
				r := withLocalAddr(request("GET", "/x"), &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: port})
				tg := rs.Resolve(r)
				e := mustEnv(t, rs, r, &tg, -1)
				if e.Get("SERVER_PORT") != strconv.Itoa(port) || e.Get("SCRIPT_NAME") != "/index.php" {
					t.Errorf("port %d: %s %s", port, e.Get("SERVER_PORT"), e.Get("SCRIPT_NAME"))
				}
				e.Release()
			}
		})
	}
	wg.Wait()
}

func TestEnvNilTarget(t *testing.T) {
	rs := newResolver(t, site(t, "index.php"), "")
	e := mustEnv(t, rs, request("GET", "/"), nil, -1)
	defer e.Release()
	if e.Get("REQUEST_URI") != "/" {
		t.Error(e.Get("REQUEST_URI"))
	}
}

// mustEnv is Resolver.Env for a request that must be accepted.
func mustEnv(t testing.TB, rs *Resolver, r *http.Request, tg *Target, cl int64) *Env {
	t.Helper()
	e, err := rs.Env(r, tg, cl)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// A Basic credential decodes to any bytes: a NUL, CR or LF in it would
// split the NUL-terminated strings PHP reads, so the request is refused.
func TestEnvRefusesUnsafeCredentials(t *testing.T) {
	rs := newResolver(t, site(t, "index.php"), "")
	for _, cred := range []string{"admin\x00REMOTE_ADDR\x00127.0.0.1:x", "a:b\r\nX-Evil: 1", "a:\nb", "\x00:x"} {
		r := request("GET", "/")
		r.SetBasicAuth(strings.SplitN(cred, ":", 2)[0], strings.SplitN(cred+":", ":", 2)[1])
		tg := rs.Resolve(r)
		if e, err := rs.Env(r, &tg, -1); !errors.Is(err, ErrUnsafeValue) {
			t.Errorf("%q: accepted (%v)", cred, e)
		}
	}
	r := request("GET", "/")
	r.SetBasicAuth("user", "p\tw d")
	tg := rs.Resolve(r)
	if e := mustEnv(t, rs, r, &tg, -1); e.Get("PHP_AUTH_PW") != "p\tw d" {
		t.Errorf("PHP_AUTH_PW %q", e.Get("PHP_AUTH_PW"))
	}
}
