package integration

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// phpBackend is one way fe-php runs PHP. runPHPSuite runs the same
// request-level cases against each: what a user sees over HTTP must not
// depend on the backend a path is routed to.
type phpBackend struct {
	// name is the backend's name in the configuration ("fastcgi",
	// "embedded"); fe-php is started with it as default_backend.
	name string
	// setup readies the backend for a site whose document root is root
	// (e.g. starts PHP-FPM there) and returns the keys it adds to the
	// [php] table and the tables of its own, appended after [backend].
	setup func(t *testing.T, root string) (phpKeys, tables string)
	// getallheaders: the backend's PHP has getallheaders() (FPM has it).
	getallheaders bool
}

// phpSite is fe-php serving a copy of testdata/php through a PHP backend.
type phpSite struct {
	*Server
	Root    string // the document root, a copy of testdata/php
	State   string // the directory beside Root where scripts leave files (state() in lib/dump.inc)
	backend phpBackend
}

// suiteServerKeys are the [server] keys of the suite's fe-php.
const suiteServerKeys = `max_body_size = "4M"`

// suiteMaxBody is max_body_size above, in bytes.
const suiteMaxBody = 4 << 20

// newPHPSiteDir copies testdata/php to a new temp dir's "root" and makes
// its "state" directory; it returns both paths.
func newPHPSiteDir(t *testing.T) (root, state string) {
	t.Helper()
	dir := t.TempDir()
	root, state = filepath.Join(dir, "root"), filepath.Join(dir, "state")
	if err := os.CopyFS(root, os.DirFS(filepath.Join("testdata", "php"))); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(state, 0o755); err != nil {
		t.Fatal(err)
	}
	// FPM's children run as the test's user: they can write to state.
	return root, state
}

// startPHP copies the test site, sets the backend up on it and starts
// fe-php with the backend as default_backend, /index.php as the front
// controller and serverKeys in [server].
func startPHP(t *testing.T, b phpBackend, serverKeys string) *phpSite {
	t.Helper()
	root, state := newPHPSiteDir(t)
	phpKeys, tables := b.setup(t, root)
	cfg := fmt.Sprintf(`[server]
%s

[php]
document_root = %q
front_controller = "/index.php"
%s

[backend]
default_backend = %q

%s
`, serverKeys, root, phpKeys, b.name, tables)
	s := startServer(t, cfg, nil)
	return &phpSite{Server: s, Root: root, State: state, backend: b}
}

// phpCase is one request-level case of the suite.
type phpCase struct {
	name string
	run  func(t *testing.T, s *phpSite)
}

// phpCases is the suite: each case asserts what a user sees over real HTTP.
var phpCases = []phpCase{
	{"GetQuery", testPHPGetQuery},
	{"PostForm", testPHPPostForm},
	{"MultipartUpload", testPHPMultipartUpload},
	{"Cookies", testPHPCookies},
	{"RequestHeaders", testPHPRequestHeaders},
	{"ResponseHeaders", testPHPResponseHeaders},
	{"Redirects", testPHPRedirects},
	{"StatusCodes", testPHPStatusCodes},
	{"JSONInput", testPHPJSONInput},
	{"ChunkedBody", testPHPChunkedBody},
	{"BigResponse", testPHPBigResponse},
	{"FlushStreaming", testPHPFlushStreaming},
	{"ServerVars", testPHPServerVars},
	{"PathInfo", testPHPPathInfo},
	{"FrontController", testPHPFrontController},
	{"BasicAuth", testPHPBasicAuth},
	{"Httpoxy", testPHPHttpoxy},
	{"Directory", testPHPDirectory},
	{"StaticFile", testPHPStaticFile},
	{"NoPathInfoExecution", testPHPNoPathInfoExecution},
	{"HiddenAndSource", testPHPHiddenAndSource},
	{"MaxBodySize", testPHPMaxBodySize},
}

// runPHPSuite starts fe-php on the test site with backend b and runs every
// case of phpCases against it, in parallel.
func runPHPSuite(t *testing.T, b phpBackend) {
	s := startPHP(t, b, suiteServerKeys)
	for _, c := range phpCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, s)
		})
	}
}

// phpDump is what lib/dump.inc answers.
type phpDump struct {
	Script           string            `json:"script"`
	Server           map[string]any    `json:"server"`
	Get              map[string]any    `json:"get"`
	Post             map[string]any    `json:"post"`
	Cookie           map[string]any    `json:"cookie"`
	HasGetAllHeaders bool              `json:"has_getallheaders"`
	Headers          map[string]string `json:"headers"`
	GetenvHTTPProxy  any               `json:"getenv_http_proxy"` // false when unset
}

// sv returns $_SERVER[name] as a string and whether it is set.
func (d *phpDump) sv(name string) (string, bool) {
	v, ok := d.Server[name]
	if !ok {
		return "", false
	}
	if s, ok := v.(string); ok {
		return s, true
	}
	return fmt.Sprint(v), true
}

// wantSV fails unless $_SERVER[name] is set to want.
func (d *phpDump) wantSV(t *testing.T, name, want string) {
	t.Helper()
	if got, ok := d.sv(name); !ok || got != want {
		t.Errorf("$_SERVER[%q] = %q (set: %v), want %q", name, got, ok, want)
	}
}

// wantNoSV fails if $_SERVER[name] is set.
func (d *phpDump) wantNoSV(t *testing.T, name string) {
	t.Helper()
	if got, ok := d.sv(name); ok {
		t.Errorf("$_SERVER[%q] = %q, want it unset", name, got)
	}
}

// send sends req with the suite's client and returns the response with its
// body read.
func send(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.RequestURI(), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", req.Method, req.URL.RequestURI(), err)
	}
	return resp, body
}

// decodeJSON decodes a 200 response's JSON body into v.
func decodeJSON(t *testing.T, resp *http.Response, body []byte, v any) {
	t.Helper()
	wantStatus(t, resp, body, http.StatusOK)
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("%s: body is not the script's JSON: %v\n%s", describe(resp), err, trunc(body))
	}
}

// dumpOf sends a request to a script using lib/dump.inc and decodes its answer.
func dumpOf(t *testing.T, s *phpSite, method, path string, body io.Reader, headers ...string) (*http.Response, *phpDump) {
	t.Helper()
	resp, b := send(t, newRequest(t, s.Server, method, path, body, headers...))
	var d phpDump
	decodeJSON(t, resp, b, &d)
	return resp, &d
}

func md5hex(b []byte) string {
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

var uniqueSeq atomic.Int64

// unique returns a name no other call in this process returns.
func unique(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), uniqueSeq.Add(1))
}

func testPHPGetQuery(t *testing.T, s *phpSite) {
	const q = "a=1&b%5B%5D=x&b%5B%5D=y&s=hello%20world&u=%C3%A9"
	_, d := dumpOf(t, s, "GET", "/info.php?"+q, nil)
	want := map[string]any{"a": "1", "b": []any{"x", "y"}, "s": "hello world", "u": "é"}
	if !reflect.DeepEqual(d.Get, want) {
		t.Errorf("$_GET = %#v, want %#v", d.Get, want)
	}
	d.wantSV(t, "QUERY_STRING", q)
	d.wantSV(t, "REQUEST_URI", "/info.php?"+q)
	d.wantSV(t, "REQUEST_METHOD", "GET")
}

func testPHPPostForm(t *testing.T, s *phpSite) {
	const form = "a=1&b=two+words&c%5Bk%5D=v&d%5B%5D=x&d%5B%5D=y"
	_, d := dumpOf(t, s, "POST", "/post.php?q=1", strings.NewReader(form),
		"Content-Type: application/x-www-form-urlencoded")
	want := map[string]any{"a": "1", "b": "two words", "c": map[string]any{"k": "v"}, "d": []any{"x", "y"}}
	if !reflect.DeepEqual(d.Post, want) {
		t.Errorf("$_POST = %#v, want %#v", d.Post, want)
	}
	if !reflect.DeepEqual(d.Get, map[string]any{"q": "1"}) {
		t.Errorf("$_GET = %#v, want q=1", d.Get)
	}
	d.wantSV(t, "REQUEST_METHOD", "POST")
	d.wantSV(t, "CONTENT_TYPE", "application/x-www-form-urlencoded")
	d.wantSV(t, "CONTENT_LENGTH", fmt.Sprint(len(form)))
}

func testPHPMultipartUpload(t *testing.T, s *phpSite) {
	file1 := randomBytes(200<<10+17, 11)
	file2 := []byte("hello upload\n")
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("title", "two files")
	for _, f := range []struct {
		field, name string
		data        []byte
	}{{"doc1", "a.bin", file1}, {"doc2", "notes.txt", file2}} {
		w, err := mw.CreateFormFile(f.field, f.name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(f.data)
	}
	mw.Close()
	resp, body := send(t, newRequest(t, s.Server, "POST", "/upload.php", &buf, "Content-Type: "+mw.FormDataContentType()))
	type upload struct {
		Name           string `json:"name"`
		Size           int    `json:"size"`
		Error          int    `json:"error"`
		MD5            string `json:"md5"`
		IsUploadedFile bool   `json:"is_uploaded_file"`
	}
	var got struct {
		Files map[string]upload `json:"files"`
		Post  map[string]any    `json:"post"`
	}
	decodeJSON(t, resp, body, &got)
	want := map[string]upload{
		"doc1": {Name: "a.bin", Size: len(file1), MD5: md5hex(file1), IsUploadedFile: true},
		"doc2": {Name: "notes.txt", Size: len(file2), MD5: md5hex(file2), IsUploadedFile: true},
	}
	if !reflect.DeepEqual(got.Files, want) {
		t.Errorf("$_FILES:\n got %+v\nwant %+v", got.Files, want)
	}
	if got.Post["title"] != "two files" {
		t.Errorf("$_POST = %#v, want title=two files", got.Post)
	}
}

func testPHPCookies(t *testing.T, s *phpSite) {
	resp, d := dumpOf(t, s, "GET", "/cookies.php", nil, "Cookie: a=1; b=hello%20there")
	if want := map[string]any{"a": "1", "b": "hello there"}; !reflect.DeepEqual(d.Cookie, want) {
		t.Errorf("$_COOKIE = %#v, want %#v", d.Cookie, want)
	}
	sc := resp.Header.Values("Set-Cookie")
	if len(sc) != 2 {
		t.Fatalf("Set-Cookie headers %q: want 2 (setcookie twice)", sc)
	}
	if sc[0] != "first=one" {
		t.Errorf("first Set-Cookie %q, want %q", sc[0], "first=one")
	}
	if !strings.HasPrefix(sc[1], "second=two%20words;") || !strings.Contains(sc[1], "HttpOnly") ||
		!strings.Contains(sc[1], "path=/") || !strings.Contains(sc[1], "SameSite=Lax") {
		t.Errorf("second Set-Cookie %q, want second=two%%20words; path=/; HttpOnly; SameSite=Lax", sc[1])
	}
	if c := resp.Cookies(); len(c) != 2 || c[1].Value != "two%20words" && c[1].Value != "two words" {
		t.Errorf("parsed cookies %v", c)
	}
}

func testPHPRequestHeaders(t *testing.T, s *phpSite) {
	_, d := dumpOf(t, s, "GET", "/info.php", nil, "X-Custom: hello custom", "X-Multi: a", "X-Multi: b",
		"Accept-Language: fr")
	d.wantSV(t, "HTTP_X_CUSTOM", "hello custom")
	d.wantSV(t, "HTTP_X_MULTI", "a, b")
	d.wantSV(t, "HTTP_ACCEPT_LANGUAGE", "fr")
	if d.HasGetAllHeaders != s.backend.getallheaders {
		t.Errorf("function_exists('getallheaders') = %v, want %v for the %s backend", d.HasGetAllHeaders, s.backend.getallheaders, s.backend.name)
	}
	if d.HasGetAllHeaders {
		if got := d.Headers["X-Custom"]; got != "hello custom" {
			t.Errorf("getallheaders()['X-Custom'] = %q, want %q (all: %v)", got, "hello custom", d.Headers)
		}
		if got := d.Headers["Host"]; got != s.Addr {
			t.Errorf("getallheaders()['Host'] = %q, want %q", got, s.Addr)
		}
	}
}

func testPHPResponseHeaders(t *testing.T, s *phpSite) {
	resp, body := get(t, s.Server, "/headers.php")
	wantStatus(t, resp, body, http.StatusOK)
	if got := resp.Header.Get("X-Foo"); got != "bar" {
		t.Errorf("X-Foo = %q, want bar", got)
	}
	if got := resp.Header.Values("X-Multi"); !reflect.DeepEqual(got, []string{"one", "two"}) {
		t.Errorf("X-Multi = %q, want [one two]", got)
	}
	for _, gone := range []string{"X-Gone", "X-Powered-By"} {
		if v, ok := resp.Header[gone]; ok {
			t.Errorf("%s: %q sent, but the script header_remove()d it", gone, v)
		}
	}
	if string(body) != "headers" {
		t.Errorf("body %q", body)
	}
}

func testPHPRedirects(t *testing.T, s *phpSite) {
	for _, c := range []struct {
		path   string
		status int
	}{{"/redirect.php", http.StatusFound}, {"/redirect.php?code=301", http.StatusMovedPermanently}} {
		resp, body := get(t, s.Server, c.path)
		wantStatus(t, resp, body, c.status)
		if loc := resp.Header.Get("Location"); loc != "/x" {
			t.Errorf("%s: Location %q, want /x", c.path, loc)
		}
	}
}

func testPHPStatusCodes(t *testing.T, s *phpSite) {
	resp, body := get(t, s.Server, "/status.php?code=404")
	wantStatus(t, resp, body, http.StatusNotFound)
	if string(body) != "code 404" {
		t.Errorf("http_response_code(404): body %q, want the script's %q", body, "code 404")
	}
	resp, body = get(t, s.Server, "/status.php?teapot=1")
	wantStatus(t, resp, body, http.StatusTeapot)
	if string(body) != "teapot" {
		t.Errorf("Status: 418: body %q, want the script's", body)
	}
	if v, ok := resp.Header["Status"]; ok {
		t.Errorf("the CGI Status header reached the client: %q", v)
	}
	resp, body = get(t, s.Server, "/fatal.php")
	wantStatus(t, resp, body, http.StatusInternalServerError)
	if bytes.Contains(body, []byte("undefined_function")) {
		t.Errorf("fatal error: body shows the error (display_errors is off): %q", trunc(body))
	}
}

func testPHPJSONInput(t *testing.T, s *phpSite) {
	const doc = `{"name":"fe-php","list":[1,2,3],"nested":{"ok":true}}`
	resp, body := send(t, newRequest(t, s.Server, "POST", "/input.php", strings.NewReader(doc), "Content-Type: application/json"))
	var got struct {
		Len           int            `json:"len"`
		MD5           string         `json:"md5"`
		ContentLength string         `json:"content_length"`
		ContentType   string         `json:"content_type"`
		JSON          map[string]any `json:"json"`
	}
	decodeJSON(t, resp, body, &got)
	if got.Len != len(doc) || got.MD5 != md5hex([]byte(doc)) || got.ContentLength != fmt.Sprint(len(doc)) ||
		got.ContentType != "application/json" {
		t.Errorf("php://input: %+v, want %d bytes, md5 %s, CONTENT_LENGTH %d, CONTENT_TYPE application/json",
			got, len(doc), md5hex([]byte(doc)), len(doc))
	}
	want := map[string]any{"name": "fe-php", "list": []any{1.0, 2.0, 3.0}, "nested": map[string]any{"ok": true}}
	if !reflect.DeepEqual(got.JSON, want) {
		t.Errorf("json_decode(php://input) = %#v, want %#v", got.JSON, want)
	}
}

// chunkedRequest is a raw HTTP/1.1 request with body sent chunked, in
// chunks of varying sizes.
func chunkedRequest(method, target string, body []byte, headers ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n", method, target)
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	sizes := []int{1, 7, 1000, 4096, 65536, 100000}
	for i := 0; len(body) > 0; i++ {
		n := min(sizes[i%len(sizes)], len(body))
		fmt.Fprintf(&b, "%x\r\n", n)
		b.Write(body[:n])
		b.WriteString("\r\n")
		body = body[n:]
	}
	b.WriteString("0\r\n\r\n")
	return b.String()
}

func testPHPChunkedBody(t *testing.T, s *phpSite) {
	// Small (held in memory by fe-php) and over 1 MiB (spooled to disk).
	for _, size := range []int{5000, 1<<20 + 12345} {
		data := randomBytes(size, uint64(size))
		out := rawExchange(t, s.Addr, chunkedRequest("POST", "/input.php", data, "Content-Type: application/octet-stream"))
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(out)), nil)
		if err != nil {
			t.Fatalf("chunked POST of %d bytes: unparsable response %q: %v", size, trunc(out), err)
		}
		body, _ := io.ReadAll(resp.Body)
		var got struct {
			Len           int    `json:"len"`
			MD5           string `json:"md5"`
			ContentLength string `json:"content_length"`
		}
		decodeJSON(t, resp, body, &got)
		if got.Len != size || got.MD5 != md5hex(data) || got.ContentLength != fmt.Sprint(size) {
			t.Errorf("chunked POST of %d bytes: script saw %+v, want len %d, md5 %s, CONTENT_LENGTH %d",
				size, got, size, md5hex(data), size)
		}
	}
}

func testPHPBigResponse(t *testing.T, s *phpSite) {
	want := sha256.New()
	for i := range 160 {
		want.Write(bytes.Repeat(fmt.Appendf(nil, "%07d\n", i), 8192))
	}
	resp, err := client.Get(s.URL("/big.php"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got := sha256.New()
	n, err := io.Copy(got, resp.Body)
	if err != nil {
		t.Fatalf("reading the 10 MiB response: %v after %d bytes", err, n)
	}
	if resp.StatusCode != 200 || n != 10<<20 || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Errorf("big.php: status %d, %d bytes (want 200, %d bytes), hash match %v",
			resp.StatusCode, n, 10<<20, bytes.Equal(got.Sum(nil), want.Sum(nil)))
	}
}

// testPHPFlushStreaming: stream.php echoes "first", flush()es, then waits
// for a go file that the test creates only once "first" has arrived, and
// writes its marker file after that. If fe-php held the output back, the
// script would give up waiting after 10 s, write the marker, and only then
// would "first" arrive: the marker would exist. The assertion is pure
// ordering; no timing threshold.
func testPHPFlushStreaming(t *testing.T, s *phpSite) {
	goFile, mark := unique("go"), unique("mark")
	resp, err := client.Get(s.URL("/stream.php?go=" + goFile + "&mark=" + mark))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	first, err := br.ReadString('\n')
	if err != nil || first != "first\n" {
		t.Fatalf("first line %q, %v", first, err)
	}
	if _, err := os.Stat(filepath.Join(s.State, mark)); err == nil {
		t.Fatalf("\"first\" arrived only after the script finished: flush() did not stream")
	}
	if err := os.WriteFile(filepath.Join(s.State, goFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "second\n" {
		t.Errorf("rest %q, %v; want \"second\\n\"", rest, err)
	}
}

func testPHPServerVars(t *testing.T, s *phpSite) {
	_, d := dumpOf(t, s, "GET", "/info.php?a=1", nil)
	if d.Script != "info.php" {
		t.Errorf("ran %q, want info.php", d.Script)
	}
	d.wantSV(t, "SCRIPT_NAME", "/info.php")
	d.wantSV(t, "SCRIPT_FILENAME", filepath.Join(s.Root, "info.php"))
	d.wantSV(t, "DOCUMENT_ROOT", s.Root)
	d.wantSV(t, "PHP_SELF", "/info.php")
	d.wantNoSV(t, "PATH_INFO")
	d.wantSV(t, "REQUEST_URI", "/info.php?a=1")
	d.wantSV(t, "QUERY_STRING", "a=1")
	d.wantSV(t, "REQUEST_METHOD", "GET")
	d.wantSV(t, "SERVER_PROTOCOL", "HTTP/1.1")
	d.wantSV(t, "REMOTE_ADDR", "127.0.0.1")
	d.wantSV(t, "HTTP_HOST", s.Addr)
	d.wantSV(t, "GATEWAY_INTERFACE", "CGI/1.1")
	d.wantNoSV(t, "HTTPS")
	d.wantNoSV(t, "PHP_AUTH_USER")
	host, port, _ := net.SplitHostPort(s.Addr)
	d.wantSV(t, "SERVER_NAME", host)
	d.wantSV(t, "SERVER_PORT", port)
	if sw, _ := d.sv("SERVER_SOFTWARE"); !strings.HasPrefix(sw, "fe-php/") {
		t.Errorf("SERVER_SOFTWARE %q, want fe-php/...", sw)
	}
	// Another method through the same script reaches PHP as is.
	_, d = dumpOf(t, s, "PUT", "/info.php", strings.NewReader("x"))
	d.wantSV(t, "REQUEST_METHOD", "PUT")
}

func testPHPPathInfo(t *testing.T, s *phpSite) {
	_, d := dumpOf(t, s, "GET", "/info.php/a/b?z=9", nil)
	if d.Script != "info.php" {
		t.Errorf("ran %q, want info.php", d.Script)
	}
	d.wantSV(t, "SCRIPT_NAME", "/info.php")
	d.wantSV(t, "SCRIPT_FILENAME", filepath.Join(s.Root, "info.php"))
	d.wantSV(t, "PATH_INFO", "/a/b")
	d.wantSV(t, "PHP_SELF", "/info.php/a/b")
	d.wantSV(t, "REQUEST_URI", "/info.php/a/b?z=9")
	d.wantSV(t, "QUERY_STRING", "z=9")
}

func testPHPFrontController(t *testing.T, s *phpSite) {
	_, d := dumpOf(t, s, "GET", "/blog/2024/hello?x=1", nil)
	if d.Script != "index.php" {
		t.Errorf("ran %q, want the front controller index.php", d.Script)
	}
	d.wantSV(t, "REQUEST_URI", "/blog/2024/hello?x=1")
	d.wantSV(t, "QUERY_STRING", "x=1")
	d.wantSV(t, "SCRIPT_NAME", "/index.php")
	d.wantSV(t, "SCRIPT_FILENAME", filepath.Join(s.Root, "index.php"))
	d.wantNoSV(t, "PATH_INFO")
	if !reflect.DeepEqual(d.Get, map[string]any{"x": "1"}) {
		t.Errorf("$_GET = %#v, want x=1", d.Get)
	}
	// A missing .php script goes to the front controller too.
	_, d = dumpOf(t, s, "GET", "/no-such.php", nil)
	if d.Script != "index.php" {
		t.Errorf("/no-such.php ran %q, want the front controller", d.Script)
	}
	d.wantSV(t, "REQUEST_URI", "/no-such.php")
}

func testPHPBasicAuth(t *testing.T, s *phpSite) {
	cred := base64.StdEncoding.EncodeToString([]byte("alice:s3cret:with:colons"))
	_, d := dumpOf(t, s, "GET", "/info.php", nil, "Authorization: Basic "+cred)
	d.wantSV(t, "PHP_AUTH_USER", "alice")
	d.wantSV(t, "PHP_AUTH_PW", "s3cret:with:colons")
	d.wantSV(t, "HTTP_AUTHORIZATION", "Basic "+cred)
	// Bearer tokens reach the script as HTTP_AUTHORIZATION, with no PHP_AUTH_*.
	_, d = dumpOf(t, s, "GET", "/info.php", nil, "Authorization: Bearer tok.en")
	d.wantSV(t, "HTTP_AUTHORIZATION", "Bearer tok.en")
	d.wantNoSV(t, "PHP_AUTH_USER")
}

func testPHPHttpoxy(t *testing.T, s *phpSite) {
	const evil = "http://evil.example:3128"
	_, d := dumpOf(t, s, "GET", "/info.php", nil, "Proxy: "+evil)
	// HTTP_PROXY may come from the process environment; it must never be
	// the request's Proxy header (CVE-2016-5385).
	if v, _ := d.sv("HTTP_PROXY"); v == evil {
		t.Errorf("$_SERVER['HTTP_PROXY'] = %q: the Proxy request header reached it", v)
	}
	if d.GetenvHTTPProxy == evil {
		t.Errorf("getenv('HTTP_PROXY') = %q: the Proxy request header reached it", evil)
	}
	if d.Headers["Proxy"] == evil {
		t.Errorf("getallheaders() has Proxy %q", evil)
	}
}

func testPHPDirectory(t *testing.T, s *phpSite) {
	resp, body := get(t, s.Server, "/sub")
	wantStatus(t, resp, body, http.StatusMovedPermanently)
	if loc := resp.Header.Get("Location"); loc != "/sub/" {
		t.Errorf("/sub: Location %q, want /sub/", loc)
	}
	resp, body = get(t, s.Server, "/sub?q=1")
	wantStatus(t, resp, body, http.StatusMovedPermanently)
	if loc := resp.Header.Get("Location"); loc != "/sub/?q=1" {
		t.Errorf("/sub?q=1: Location %q, want /sub/?q=1", loc)
	}
	_, d := dumpOf(t, s, "GET", "/sub/", nil)
	if d.Script != "sub/index.php" {
		t.Errorf("/sub/ ran %q, want sub/index.php", d.Script)
	}
	d.wantSV(t, "SCRIPT_NAME", "/sub/index.php")
	d.wantSV(t, "REQUEST_URI", "/sub/")
}

func testPHPStaticFile(t *testing.T, s *phpSite) {
	want, err := os.ReadFile(filepath.Join(s.Root, "css", "site.css"))
	if err != nil {
		t.Fatal(err)
	}
	resp, body := get(t, s.Server, "/css/site.css")
	wantStatus(t, resp, body, http.StatusOK)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/css") {
		t.Errorf("Content-Type %q, want text/css", ct)
	}
	if !bytes.Equal(body, want) {
		t.Errorf("body %q, want the file as is %q (its <?php must not run)", body, want)
	}
}

// testPHPNoPathInfoExecution: an uploaded "image" holding PHP is never run
// (the cgi.fix_pathinfo hole, CVE-2019-11043).
func testPHPNoPathInfoExecution(t *testing.T, s *phpSite) {
	for _, target := range []string{
		"/uploads/x.jpg/y.php",
		"/uploads/x.jpg/index.php",
		"/uploads/x.jpg/.php",
		"/uploads/x.jpg%2fy.php",
		"/uploads/x.jpg%0a.php",
		"/uploads/x.jpg%00.php",
		"/uploads/x.jpg/y.php/z",
	} {
		resp, body := rawGet(t, s.Addr, target)
		if bytes.Contains(body, []byte("PWNED")) {
			t.Errorf("%s: status %d, body %q: x.jpg was executed", target, resp.StatusCode, trunc(body))
		}
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want the front controller (200), 404 or 400", target, resp.StatusCode)
		}
	}
}

// testPHPHiddenAndSource: dotfiles and PHP sources that are not .php
// scripts are 404s, never served nor run.
func testPHPHiddenAndSource(t *testing.T, s *phpSite) {
	for _, c := range []struct{ path, secret string }{
		{"/.env", "dotenv-secret-value"},
		{"/lib/dump.inc", "function dump"},
	} {
		resp, body := get(t, s.Server, c.path)
		wantStatus(t, resp, body, http.StatusNotFound)
		if bytes.Contains(body, []byte(c.secret)) {
			t.Errorf("%s: body %q leaks the file", c.path, trunc(body))
		}
	}
}

func testPHPMaxBodySize(t *testing.T, s *phpSite) {
	// Declared too large: refused before the body is read.
	out := rawExchange(t, s.Addr, fmt.Sprintf("POST /input.php HTTP/1.1\r\nHost: test\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\nxxxx", suiteMaxBody+1))
	if status := statusOf(t, out); status != http.StatusRequestEntityTooLarge {
		t.Errorf("Content-Length over max_body_size: status %d, want 413\n%s", status, trunc(out))
	}
	// Chunked, found too large while reading it.
	status, raw := chunkedOverLimit(t, s.Addr, "/input.php", suiteMaxBody+(64<<10))
	if status != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked body over max_body_size: status %d, want 413\n%s", status, trunc(raw))
	}
	// At the limit: accepted.
	data := bytes.Repeat([]byte("z"), suiteMaxBody)
	resp, body := send(t, newRequest(t, s.Server, "POST", "/input.php", bytes.NewReader(data), "Content-Type: application/octet-stream"))
	var got struct {
		Len int `json:"len"`
	}
	decodeJSON(t, resp, body, &got)
	if got.Len != suiteMaxBody {
		t.Errorf("body of exactly max_body_size: the script read %d bytes, want %d", got.Len, suiteMaxBody)
	}
}

// chunkedOverLimit sends a chunked body of size bytes on a raw connection,
// writing it while it reads the answer (the server may answer before the
// body is all sent), and returns the status and the raw answer.
func chunkedOverLimit(t *testing.T, addr, target string, size int) (int, []byte) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	req := chunkedRequest("POST", target, bytes.Repeat([]byte("y"), size), "Content-Type: application/octet-stream")
	go io.WriteString(conn, req) // fails once the server closes: fine
	out, _ := io.ReadAll(conn)   // a reset after the answer is fine too
	if len(out) == 0 {
		t.Fatalf("chunked POST of %d bytes: no answer", size)
	}
	return statusOf(t, out), out
}
