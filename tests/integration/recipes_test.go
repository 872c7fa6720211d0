//go:build fephp_bridge

package integration

// The specification's recipes end to end (SaaS, e-commerce, SPA): each test
// starts the real fe-php on a copy of the example in examples/<name>, with
// the example's own fe-php.toml (only the listen address, the PHP-FPM socket
// and, for the shop, the session directory rewritten), a real php-fpm8.2
// where the recipe routes to fastcgi, and checks what a user sees.
//
// Which backend answered is told three ways: PHP reports its SAPI
// (PHP_SAPI is "fe-php" in embedded PHP, "fpm-fcgi" under PHP-FPM), static
// responses carry no PHP header (X-Powered-By), and the access log names
// the backend of each request.
//
// The routing block of each example must be the specification's as written:
// TestRecipeSpecBlocks compares it, line by line and parsed, with the
// specification's.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fe-php/fe-php/internal/config"
	"github.com/fe-php/fe-php/internal/testutil/fpmtest"
)

// recipeSpec is one recipe of the specification ("ユースケース別の推奨設定").
type recipeSpec struct {
	example string // the directory under examples/
	// block is the specification's TOML for the recipe without its
	// comments (they are in Japanese there, in English in the examples).
	block string
	// defaultBackend and rules are what block parses to.
	defaultBackend string
	rules          []config.Rule
}

func recipeRule(typ, value, backend string, priority int) config.Rule {
	return config.Rule{Pattern: config.Pattern{Type: typ, Value: value}, Backend: backend, Priority: priority}
}

var recipeSaaS = recipeSpec{
	example: "saas",
	block: `[backend]
enable_hybrid = true
default_backend = "embedded"
[[backend.routing_rules]]
pattern = { type = "prefix", value = "/assets/" }
backend = "static"
priority = 100
[[backend.routing_rules]]
pattern = { type = "prefix", value = "/api/" }
backend = "embedded"
priority = 90
[[backend.routing_rules]]
pattern = { type = "prefix", value = "/admin/" }
backend = "fastcgi"
priority = 80`,
	defaultBackend: "embedded",
	rules: []config.Rule{
		recipeRule("prefix", "/assets/", "static", 100),
		recipeRule("prefix", "/api/", "embedded", 90),
		recipeRule("prefix", "/admin/", "fastcgi", 80),
	},
}

var recipeWordPress = recipeSpec{
	example: "wordpress",
	block: `[backend]
enable_hybrid = true
default_backend = "embedded"
[[backend.routing_rules]]
pattern = { type = "prefix", value = "/wp-content/uploads/" }
backend = "static"
priority = 100
[[backend.routing_rules]]
pattern = { type = "prefix", value = "/wp-content/themes/" }
backend = "static"
priority = 95
[[backend.routing_rules]]
pattern = { type = "prefix", value = "/wp-includes/" }
backend = "static"
priority = 95
[[backend.routing_rules]]
pattern = { type = "prefix", value = "/wp-admin/" }
backend = "fastcgi"
priority = 90
[[backend.routing_rules]]
pattern = { type = "exact", value = "/wp-login.php" }
backend = "fastcgi"
priority = 85`,
	defaultBackend: "embedded",
	rules: []config.Rule{
		recipeRule("prefix", "/wp-content/uploads/", "static", 100),
		recipeRule("prefix", "/wp-content/themes/", "static", 95),
		recipeRule("prefix", "/wp-includes/", "static", 95),
		recipeRule("prefix", "/wp-admin/", "fastcgi", 90),
		recipeRule("exact", "/wp-login.php", "fastcgi", 85),
	},
}

var recipeECommerce = recipeSpec{
	example: "ecommerce",
	block: `[backend]
enable_hybrid = true
default_backend = "embedded"
[[backend.routing_rules]]
pattern = { type = "prefix", value = "/images/products/" }
backend = "static"
priority = 100
[[backend.routing_rules]]
pattern = { type = "prefix", value = "/static/" }
backend = "static"
priority = 95
[[backend.routing_rules]]
pattern = { type = "prefix", value = "/api/products/" }
backend = "embedded"
priority = 90
[[backend.routing_rules]]
pattern = { type = "prefix", value = "/api/cart/" }
backend = "embedded"
priority = 90
[[backend.routing_rules]]
pattern = { type = "prefix", value = "/checkout/" }
backend = "fastcgi"
priority = 85
[[backend.routing_rules]]
pattern = { type = "prefix", value = "/admin/reports/" }
backend = "fastcgi"
priority = 80`,
	defaultBackend: "embedded",
	rules: []config.Rule{
		recipeRule("prefix", "/images/products/", "static", 100),
		recipeRule("prefix", "/static/", "static", 95),
		recipeRule("prefix", "/api/products/", "embedded", 90),
		recipeRule("prefix", "/api/cart/", "embedded", 90),
		recipeRule("prefix", "/checkout/", "fastcgi", 85),
		recipeRule("prefix", "/admin/reports/", "fastcgi", 80),
	},
}

// recipeSPA's block has root = "dist" where the specification writes
// "/var/www/html/dist": the one change the example makes, so that it runs
// where it is checked out.
var recipeSPA = recipeSpec{
	example: "spa",
	block: `[backend]
enable_hybrid = true
default_backend = "static"
[backend.static_files]
enable = true
root = "dist"
index_files = ["index.html"]
[[backend.routing_rules]]
pattern = { type = "prefix", value = "/assets/" }
backend = "static"
priority = 100
[[backend.routing_rules]]
pattern = { type = "prefix", value = "/api/" }
backend = "embedded"
priority = 90`,
	defaultBackend: "static",
	rules: []config.Rule{
		recipeRule("prefix", "/assets/", "static", 100),
		recipeRule("prefix", "/api/", "embedded", 90),
	},
}

// recipeExampleDir is examples/<name> in the repository.
func recipeExampleDir(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(repoRoot(t), "examples", name)
	if _, err := os.Stat(filepath.Join(dir, "fe-php.toml")); err != nil {
		t.Fatalf("example %s: %v", name, err)
	}
	return dir
}

// recipeTOMLLines is a TOML text's lines without comments, blank lines and
// surrounding spaces. (No value in the recipes holds a "#".)
func recipeTOMLLines(s string) []string {
	var lines []string
	for _, line := range strings.Split(s, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		if line = strings.TrimSpace(line); line != "" {
			lines = append(lines, line)
		}
	}
	return lines
}

// TestRecipeSpecBlocks: each example's fe-php.toml ends with the
// specification's block for its recipe, key for key and in order (only the
// comments translated), parses to the specification's rules, and passes
// "fe-php check" as committed.
func TestRecipeSpecBlocks(t *testing.T) {
	t.Parallel()
	for _, r := range []recipeSpec{recipeSaaS, recipeWordPress, recipeECommerce, recipeSPA} {
		t.Run(r.example, func(t *testing.T) {
			t.Parallel()
			dir := recipeExampleDir(t, r.example)
			file := filepath.Join(dir, "fe-php.toml")
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			lines := recipeTOMLLines(string(data))
			start := -1
			for i, line := range lines {
				if line == "[backend]" {
					start = i
				}
			}
			if start < 0 {
				t.Fatalf("%s has no [backend] table", file)
			}
			if got, want := lines[start:], recipeTOMLLines(r.block); !reflect.DeepEqual(got, want) {
				t.Errorf("%s: the recipe block (from [backend] to the end, comments left out) is\n%s\nwant the specification's\n%s",
					file, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if r.example == "wordpress" {
				// Its paths are a Debian server's (/srv/wordpress-static):
				// TestWordPress loads and runs it with only those changed.
				return
			}

			cfg, err := config.Load(file)
			if err != nil {
				t.Fatalf("%s does not load: %v", file, err)
			}
			b := cfg.Backend
			if !b.EnableHybrid || b.DefaultBackend != r.defaultBackend {
				t.Errorf("enable_hybrid = %v, default_backend = %q; want true, %q", b.EnableHybrid, b.DefaultBackend, r.defaultBackend)
			}
			if !reflect.DeepEqual(b.RoutingRules, r.rules) {
				t.Errorf("routing rules\n%+v\nwant the specification's\n%+v", b.RoutingRules, r.rules)
			}
			if r.example == "spa" {
				sf := b.StaticFiles
				if !sf.Enable || sf.Root != filepath.Join(dir, "dist") || !reflect.DeepEqual(sf.IndexFiles, []string{"index.html"}) {
					t.Errorf("static_files: enable %v, root %q, index_files %q; want true, %q, [index.html]",
						sf.Enable, sf.Root, sf.IndexFiles, filepath.Join(dir, "dist"))
				}
			}

			out, errOut, code := runCLI(t, dir, "check", "-c", file)
			if code != 0 {
				t.Errorf("fe-php check -c %s: exit %d\n%s%s", file, code, out, errOut)
			}
		})
	}
}

// recipeSite is fe-php serving a copy of an example with the example's
// configuration.
type recipeSite struct {
	*Server
	dir string // the copy of examples/<name>
}

// recipeCopy copies examples/<name> to a new temp dir, leaving out what
// run.sh and the apps make at run time (run/, var/).
func recipeCopy(t *testing.T, name string) string {
	t.Helper()
	src := recipeExampleDir(t, name)
	dst := filepath.Join(t.TempDir(), name)
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() && (rel == "run" || rel == "var") {
			return filepath.SkipDir
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatalf("copying %s: %v", src, err)
	}
	return dst
}

// recipeSetLine replaces the one line of cfg matching the regular
// expression re (a whole line) with line; it fails the test unless exactly
// one line matches.
func recipeSetLine(t *testing.T, cfg, re, line string) string {
	t.Helper()
	rx := regexp.MustCompile(`(?m)^` + re + `$`)
	if n := len(rx.FindAllStringIndex(cfg, -1)); n != 1 {
		t.Fatalf("config: %d lines match %q, want 1", n, re)
	}
	return rx.ReplaceAllLiteralString(cfg, line)
}

// recipeStart starts fe-php on dir (a recipeCopy) with its fe-php.toml,
// rewritten by edit, and listening on a free port.
func recipeStart(t *testing.T, dir string, edit func(cfg string) string) *recipeSite {
	t.Helper()
	file := filepath.Join(dir, "fe-php.toml")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(data)
	// startServerCmd sets the listen address; it adds the line to [server].
	cfg = recipeSetLine(t, cfg, `listen = .*`, "")
	if edit != nil {
		cfg = edit(cfg)
	}
	s := startServerCmd(t, cfg, nil, func(config string) *exec.Cmd {
		// Run the config startServerCmd wrote from the example's own place,
		// so that its relative paths (document_root = "public", ...) hold.
		final, err := os.ReadFile(config)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, final, 0o644); err != nil {
			t.Fatal(err)
		}
		return exec.Command(binary, "run", "-c", file)
	})
	return &recipeSite{Server: s, dir: dir}
}

// recipeFPM starts a php-fpm8.2 on docroot and returns it with the
// edit that points fpm_socket at it.
func recipeFPM(t *testing.T, docroot string, ini map[string]string) (*fpmtest.FPM, func(string) string) {
	t.Helper()
	f := fpmtest.Start(t, fpmtest.Options{Children: 2, DocRoot: docroot, ExtraINI: ini})
	return f, func(cfg string) string {
		return recipeSetLine(t, cfg, `fpm_socket = .*`, fmt.Sprintf("fpm_socket = %q", f.Address))
	}
}

// recipeDo sends a request through c (nil: the shared client) and reads
// the response; body is sent as is.
func recipeDo(t *testing.T, c *http.Client, s *Server, method, path, body string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	if c == nil {
		c = client
	}
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	resp, err := c.Do(newRequest(t, s, method, path, r, headers...))
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp, b
}

// recipeJSON wants status and a JSON body, decoded into v.
func recipeJSON(t *testing.T, resp *http.Response, body []byte, status int, v any) {
	t.Helper()
	wantStatus(t, resp, body, status)
	if mt := recipeMediaType(resp); mt != "application/json" {
		t.Fatalf("%s: Content-Type %q, want application/json", describe(resp), resp.Header.Get("Content-Type"))
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("%s: body is not JSON: %v\n%s", describe(resp), err, trunc(body))
	}
}

func recipeMediaType(resp *http.Response) string {
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return mt
}

// recipeWantPHP wants resp to come from PHP: the SAPI the page or JSON
// reports. (Not X-Powered-By: the production php.ini has expose_php off,
// as Debian's.)
func recipeWantPHP(t *testing.T, resp *http.Response, gotSAPI, wantSAPI string) {
	t.Helper()
	if gotSAPI != wantSAPI {
		t.Errorf("%s: PHP_SAPI %q, want %q (%s)", describe(resp), gotSAPI, wantSAPI, recipeBackendOfSAPI(wantSAPI))
	}
}

func recipeBackendOfSAPI(sapi string) string {
	if sapi == "fpm-fcgi" {
		return "PHP-FPM, the fastcgi backend"
	}
	return "embedded PHP, the embedded backend"
}

// recipeWantStaticFile wants resp to be file (relative to dir) sent by the
// static backend: 200, the file's bytes, the media type, no PHP header, no
// cookie.
func recipeWantStaticFile(t *testing.T, s *recipeSite, path, file, mediaType string) {
	t.Helper()
	resp, body := get(t, s.Server, path)
	wantStatus(t, resp, body, http.StatusOK)
	want, err := os.ReadFile(filepath.Join(s.dir, filepath.FromSlash(file)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body, want) {
		t.Errorf("GET %s: body (%d bytes) is not %s (%d bytes)", path, len(body), file, len(want))
	}
	if mt := recipeMediaType(resp); mt != mediaType {
		t.Errorf("GET %s: Content-Type %q, want %s", path, resp.Header.Get("Content-Type"), mediaType)
	}
	recipeWantNoPHP(t, resp)
	if resp.Header.Get("ETag") == "" {
		t.Errorf("GET %s: no ETag: not the static backend", path)
	}
}

// recipeWantNoPHP wants a response PHP did not make.
func recipeWantNoPHP(t *testing.T, resp *http.Response) {
	t.Helper()
	for _, h := range []string{"X-Powered-By", "Set-Cookie"} {
		if v := resp.Header.Get(h); v != "" {
			t.Errorf("%s: %s: %s, want none (a static response)", describe(resp), h, v)
		}
	}
}

// recipeSAPIInHTML is the SAPI a page shows in <code id="sapi">...</code>
// or, for the SaaS pages, the first <code>...</code> after php_sapi_name().
var recipeSAPIInHTML = regexp.MustCompile(`<code(?: id="sapi")?>(fe-php|fpm-fcgi)</code>`)

func recipeHTMLSAPI(t *testing.T, resp *http.Response, body []byte) string {
	t.Helper()
	if mt := recipeMediaType(resp); mt != "text/html" {
		t.Errorf("%s: Content-Type %q, want text/html", describe(resp), resp.Header.Get("Content-Type"))
	}
	for _, m := range recipeSAPIInHTML.FindAllSubmatch(body, -1) {
		if s := string(m[1]); s == "fe-php" || s == "fpm-fcgi" {
			return s
		}
	}
	t.Fatalf("%s: the page names no PHP SAPI:\n%s", describe(resp), trunc(body))
	return ""
}

// recipeWantAccessLog waits until the access log (flushed every second)
// has a line for each "METHOD URI" key with the backend given.
func recipeWantAccessLog(t *testing.T, s *Server, want map[string]string) {
	t.Helper()
	line := func(req string) string {
		method, uri, _ := strings.Cut(req, " ")
		if l := logLineWith(s.Stdout(), "method="+method+" ", "uri="+uri+" "); l != "" {
			return l
		}
		return logLineWith(s.Stdout(), "method="+method+" ", fmt.Sprintf("uri=%q ", uri)) // logfmt quotes "?"
	}
	waitFor(t, 10*time.Second, "the access log lines", func() bool {
		for req := range want {
			if line(req) == "" {
				return false
			}
		}
		return true
	})
	for req, backend := range want {
		if line := line(req); !strings.Contains(line, " backend="+backend+" ") {
			t.Errorf("access log for %s: %q, want backend=%s", req, line, backend)
		}
	}
}

// TestRecipeSaaS: the SaaS recipe (examples/saas, make demo): /assets/ is
// static, /api/ is embedded PHP, /admin/ is PHP-FPM, every other path is
// embedded PHP through the front controller.
func TestRecipeSaaS(t *testing.T) {
	t.Parallel()
	dir := recipeCopy(t, "saas")
	_, fpmSocket := recipeFPM(t, filepath.Join(dir, "public"), nil)
	s := recipeStart(t, dir, fpmSocket)

	recipeWantStaticFile(t, s, "/assets/app.css", "public/assets/app.css", "text/css")
	recipeWantStaticFile(t, s, "/assets/app.js", "public/assets/app.js", "text/javascript")
	resp, body := get(t, s.Server, "/assets/missing.css")
	wantStatus(t, resp, body, http.StatusNotFound)
	recipeWantNoPHP(t, resp)

	var runtime struct {
		SAPI string `json:"sapi"`
		ZTS  bool   `json:"zts"`
	}
	resp, body = get(t, s.Server, "/api/runtime")
	recipeJSON(t, resp, body, http.StatusOK, &runtime)
	recipeWantPHP(t, resp, runtime.SAPI, "fe-php")
	if !runtime.ZTS {
		t.Errorf("GET /api/runtime: zts false: embedded PHP is the ZTS build")
	}
	var hello struct {
		Hello string `json:"hello"`
	}
	resp, body = get(t, s.Server, "/api/hello?name=recipes")
	recipeJSON(t, resp, body, http.StatusOK, &hello)
	if hello.Hello != "recipes" {
		t.Errorf("GET /api/hello?name=recipes: hello %q", hello.Hello)
	}
	resp, body = get(t, s.Server, "/api/missing")
	wantStatus(t, resp, body, http.StatusNotFound)
	recipeWantPHP(t, resp, "fe-php", "fe-php")

	resp, body = get(t, s.Server, "/admin/")
	wantStatus(t, resp, body, http.StatusOK)
	recipeWantPHP(t, resp, recipeHTMLSAPI(t, resp, body), "fpm-fcgi")
	if !bytes.Contains(body, []byte("<h1>Admin</h1>")) {
		t.Errorf("GET /admin/: not the admin page:\n%s", trunc(body))
	}

	for _, path := range []string{"/", "/some/deep/link?x=1"} {
		resp, body = get(t, s.Server, path)
		wantStatus(t, resp, body, http.StatusOK)
		recipeWantPHP(t, resp, recipeHTMLSAPI(t, resp, body), "fe-php")
		if want := "<code>" + strings.ReplaceAll(path, "&", "&amp;") + "</code>"; !bytes.Contains(body, []byte(want)) {
			t.Errorf("GET %s: the front controller does not show the REQUEST_URI (%s):\n%s", path, want, trunc(body))
		}
	}

	recipeWantAccessLog(t, s.Server, map[string]string{
		"GET /assets/app.css":         "static",
		"GET /assets/missing.css":     "static",
		"GET /api/runtime":            "embedded",
		"GET /admin/":                 "fastcgi",
		"GET /":                       "embedded",
		"GET /some/deep/link?x=1":     "embedded",
		"GET /api/hello?name=recipes": "embedded",
	})
}

// recipeCart is the cart as the e-commerce API returns it.
type recipeCart struct {
	Cart struct {
		Items []struct {
			ProductID int    `json:"product_id"`
			Name      string `json:"name"`
			Qty       int    `json:"qty"`
		} `json:"items"`
		Count     int    `json:"count"`
		Total     int    `json:"total"`
		TotalText string `json:"total_text"`
	} `json:"cart"`
	SAPI string `json:"sapi"`
}

// TestRecipeECommerce: the e-commerce recipe (examples/ecommerce). Product
// images and /static/ are static files; the products and cart APIs are
// embedded PHP; the checkout is PHP-FPM and sees the cart embedded PHP
// wrote into the session (one session.save_path for both), and the cart
// API sees that the checkout emptied it; the sales report is PHP-FPM.
func TestRecipeECommerce(t *testing.T) {
	t.Parallel()
	dir := recipeCopy(t, "ecommerce")
	// Sessions in a directory of the test's own, not the example's
	// /var/lib/php/sessions: the same one for FPM and embedded PHP.
	sessions := t.TempDir()
	_, fpmSocket := recipeFPM(t, filepath.Join(dir, "public"), map[string]string{"session.save_path": sessions})
	s := recipeStart(t, dir, func(cfg string) string {
		cfg = fpmSocket(cfg)
		return recipeSetLine(t, cfg, `"session\.save_path" = .*`, fmt.Sprintf("%q = %q", "session.save_path", sessions))
	})
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	shopper := &http.Client{Transport: client.Transport, CheckRedirect: client.CheckRedirect, Jar: jar, Timeout: client.Timeout}

	// Static: product images and assets.
	for _, sku := range []string{"mug", "tee", "stickers", "plush"} {
		recipeWantStaticFile(t, s, "/images/products/"+sku+".png", "public/images/products/"+sku+".png", "image/png")
	}
	recipeWantStaticFile(t, s, "/static/shop.css", "public/static/shop.css", "text/css")
	recipeWantStaticFile(t, s, "/static/shop.js", "public/static/shop.js", "text/javascript")
	resp, body := get(t, s.Server, "/images/products/missing.png")
	wantStatus(t, resp, body, http.StatusNotFound)
	recipeWantNoPHP(t, resp)

	// The products API (embedded).
	var products struct {
		Products []struct {
			ID    int    `json:"id"`
			Name  string `json:"name"`
			Price int    `json:"price"`
			Image string `json:"image"`
		} `json:"products"`
		SAPI string `json:"sapi"`
	}
	resp, body = get(t, s.Server, "/api/products/")
	recipeJSON(t, resp, body, http.StatusOK, &products)
	recipeWantPHP(t, resp, products.SAPI, "fe-php")
	if len(products.Products) != 4 || products.Products[0].Image != "/images/products/mug.png" {
		t.Fatalf("GET /api/products/: %+v, want the 4 products of lib/shop.php", products.Products)
	}
	var one struct {
		Product struct {
			Name      string `json:"name"`
			PriceText string `json:"price_text"`
		} `json:"product"`
		SAPI string `json:"sapi"`
	}
	resp, body = get(t, s.Server, "/api/products/2")
	recipeJSON(t, resp, body, http.StatusOK, &one)
	recipeWantPHP(t, resp, one.SAPI, "fe-php")
	if one.Product.Name != "fe-php T-shirt" || one.Product.PriceText != "25.00 EUR" {
		t.Errorf("GET /api/products/2: %+v", one.Product)
	}
	var notFound struct {
		Error string `json:"error"`
		SAPI  string `json:"sapi"`
	}
	resp, body = get(t, s.Server, "/api/products/99")
	recipeJSON(t, resp, body, http.StatusNotFound, &notFound)
	recipeWantPHP(t, resp, notFound.SAPI, "fe-php")

	// The cart API (embedded): add two lines, read the cart back with the
	// session cookie.
	var cart recipeCart
	resp, body = recipeDo(t, shopper, s.Server, "POST", "/api/cart/", `{"product_id": 1, "qty": 2}`, "Content-Type: application/json")
	recipeJSON(t, resp, body, http.StatusCreated, &cart)
	recipeWantPHP(t, resp, cart.SAPI, "fe-php")
	var sid string
	for _, c := range resp.Cookies() {
		if c.Name == "PHPSESSID" {
			sid = c.Value
		}
	}
	if sid == "" {
		t.Fatalf("POST /api/cart/: no PHPSESSID cookie; Set-Cookie %q", resp.Header.Values("Set-Cookie"))
	}
	resp, body = recipeDo(t, shopper, s.Server, "POST", "/api/cart/", `{"product_id": 3}`, "Content-Type: application/json")
	recipeJSON(t, resp, body, http.StatusCreated, &cart)
	cart = recipeCart{}
	resp, body = recipeDo(t, shopper, s.Server, "GET", "/api/cart/", "")
	recipeJSON(t, resp, body, http.StatusOK, &cart)
	recipeWantPHP(t, resp, cart.SAPI, "fe-php")
	if cart.Cart.Count != 3 || cart.Cart.Total != 2850 || len(cart.Cart.Items) != 2 {
		t.Fatalf("GET /api/cart/: %+v, want 2 mugs and 1 sticker pack, 28.50 EUR", cart.Cart)
	}
	if _, err := os.Stat(filepath.Join(sessions, "sess_"+sid)); err != nil {
		t.Errorf("embedded PHP did not keep the session in the configured session.save_path: %v", err)
	}
	resp, body = recipeDo(t, shopper, s.Server, "PATCH", "/api/cart/", "")
	wantStatus(t, resp, body, http.StatusMethodNotAllowed)

	// The checkout (PHP-FPM) shows the cart embedded PHP wrote.
	resp, body = recipeDo(t, shopper, s.Server, "GET", "/checkout/", "")
	wantStatus(t, resp, body, http.StatusOK)
	recipeWantPHP(t, resp, recipeHTMLSAPI(t, resp, body), "fpm-fcgi")
	for _, want := range []string{"<td>Elephant mug</td><td>2</td>", "<td>Sticker pack</td><td>1</td>", `<th id="total">28.50 EUR</th>`} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("GET /checkout/: the cart from the session is not there (%s):\n%s", want, body)
		}
	}
	m := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("GET /checkout/: no CSRF token in the form:\n%s", body)
	}
	token := string(m[1])

	form := func(v url.Values) string { return v.Encode() }
	resp, body = recipeDo(t, shopper, s.Server, "POST", "/checkout/",
		form(url.Values{"csrf": {"forged"}, "name": {"Ann"}, "email": {"ann@example.org"}}),
		"Content-Type: application/x-www-form-urlencoded")
	wantStatus(t, resp, body, http.StatusUnprocessableEntity)
	resp, body = recipeDo(t, shopper, s.Server, "POST", "/checkout/",
		form(url.Values{"csrf": {token}, "name": {"Ann"}, "email": {"ann@example.org"}}),
		"Content-Type: application/x-www-form-urlencoded")
	wantStatus(t, resp, body, http.StatusSeeOther)
	recipeWantPHP(t, resp, "fpm-fcgi", "fpm-fcgi")
	location := resp.Header.Get("Location")
	if location != "/checkout/?order=A00001" {
		t.Fatalf("POST /checkout/: Location %q, want /checkout/?order=A00001", location)
	}
	resp, body = recipeDo(t, shopper, s.Server, "GET", location, "")
	wantStatus(t, resp, body, http.StatusOK)
	recipeWantPHP(t, resp, recipeHTMLSAPI(t, resp, body), "fpm-fcgi")
	if !bytes.Contains(body, []byte(`<strong id="order-id">A00001</strong>`)) || !bytes.Contains(body, []byte(`id="empty"`)) {
		t.Errorf("GET %s: no confirmation of order A00001 with an empty cart:\n%s", location, body)
	}

	// The cart API (embedded) sees that the checkout (FPM) emptied the cart,
	// under the session id the checkout regenerated.
	cart = recipeCart{}
	resp, body = recipeDo(t, shopper, s.Server, "GET", "/api/cart/", "")
	recipeJSON(t, resp, body, http.StatusOK, &cart)
	recipeWantPHP(t, resp, cart.SAPI, "fe-php")
	if cart.Cart.Count != 0 || len(cart.Cart.Items) != 0 {
		t.Errorf("GET /api/cart/ after the checkout: %+v, want an empty cart", cart.Cart)
	}

	// The report (PHP-FPM) counts the order FPM wrote.
	resp, body = get(t, s.Server, "/admin/reports/")
	wantStatus(t, resp, body, http.StatusOK)
	recipeWantPHP(t, resp, recipeHTMLSAPI(t, resp, body), "fpm-fcgi")
	for _, want := range []string{`<strong id="orders">1</strong>`, `<strong id="revenue">28.50 EUR</strong>`} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("GET /admin/reports/: %s is not there:\n%s", want, body)
		}
	}
	resp, body = get(t, s.Server, "/admin/reports/?format=csv")
	wantStatus(t, resp, body, http.StatusOK)
	recipeWantPHP(t, resp, "fpm-fcgi", "fpm-fcgi")
	if mt := recipeMediaType(resp); mt != "text/csv" || !bytes.Contains(body, []byte(`A00001,`)) || bytes.Count(body, []byte("\n")) != 3 {
		t.Errorf("GET /admin/reports/?format=csv: %s\n%s", resp.Header.Get("Content-Type"), body)
	}

	// The storefront (default backend: embedded).
	resp, body = get(t, s.Server, "/")
	wantStatus(t, resp, body, http.StatusOK)
	recipeWantPHP(t, resp, recipeHTMLSAPI(t, resp, body), "fe-php")
	if !bytes.Contains(body, []byte(`<img src="/images/products/plush.png"`)) || !bytes.Contains(body, []byte(`data-add="4"`)) {
		t.Errorf("GET /: not the storefront:\n%s", trunc(body))
	}
	if resp.Header.Get("Set-Cookie") != "" {
		t.Errorf("GET /: a visitor without a cart got a session: %q", resp.Header.Get("Set-Cookie"))
	}

	recipeWantAccessLog(t, s.Server, map[string]string{
		"GET /images/products/mug.png":     "static",
		"GET /images/products/missing.png": "static",
		"GET /static/shop.css":             "static",
		"GET /api/products/":               "embedded",
		"GET /api/products/2":              "embedded",
		"POST /api/cart/":                  "embedded",
		"GET /api/cart/":                   "embedded",
		"GET /checkout/":                   "fastcgi",
		"POST /checkout/":                  "fastcgi",
		"GET /checkout/?order=A00001":      "fastcgi",
		"GET /admin/reports/":              "fastcgi",
		"GET /":                            "embedded",
	})
}

// TestRecipeSPA: the SPA recipe (examples/spa): the static backend is the
// default, so every path that names no file gets dist/index.html; /assets/
// is static, and a missing asset there is a 404, not index.html; /api/ is
// embedded PHP.
func TestRecipeSPA(t *testing.T) {
	t.Parallel()
	dir := recipeCopy(t, "spa")
	s := recipeStart(t, dir, nil)
	index, err := os.ReadFile(filepath.Join(dir, "dist", "index.html"))
	if err != nil {
		t.Fatal(err)
	}

	// Deep links: the SPA's own routes, and any other path.
	for _, path := range []string{"/", "/settings/profile", "/settings/profile?tab=2", "/about", "/users/ann.smith", "/api"} {
		resp, body := get(t, s.Server, path)
		wantStatus(t, resp, body, http.StatusOK)
		if mt := recipeMediaType(resp); mt != "text/html" {
			t.Errorf("GET %s: Content-Type %q, want text/html", path, resp.Header.Get("Content-Type"))
		}
		if !bytes.Equal(body, index) {
			t.Errorf("GET %s: body is not dist/index.html:\n%s", path, trunc(body))
		}
		recipeWantNoPHP(t, resp)
	}

	recipeWantStaticFile(t, s, "/assets/app.js", "dist/assets/app.js", "text/javascript")
	recipeWantStaticFile(t, s, "/assets/app.css", "dist/assets/app.css", "text/css")
	recipeWantStaticFile(t, s, "/favicon.svg", "dist/favicon.svg", "image/svg+xml")
	for _, path := range []string{"/assets/missing.js", "/assets/app.js.map", "/assets/"} {
		resp, body := get(t, s.Server, path)
		if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusForbidden {
			t.Errorf("GET %s: status %d, want 404 (403 for the directory)", path, resp.StatusCode)
		}
		if bytes.Equal(body, index) {
			t.Errorf("GET %s: a missing asset answered with index.html", path)
		}
		recipeWantNoPHP(t, resp)
	}

	// Dotfiles and PHP file names are refused by the static backend: no
	// fallback to index.html for them, and no PHP outside /api/.
	for _, path := range []string{"/.env", "/wp-login.php", "/api.php"} {
		resp, body := get(t, s.Server, path)
		wantStatus(t, resp, body, http.StatusNotFound)
		recipeWantNoPHP(t, resp)
	}

	// The API (embedded PHP).
	var status struct {
		OK   bool   `json:"ok"`
		SAPI string `json:"sapi"`
		PHP  string `json:"php"`
	}
	resp, body := get(t, s.Server, "/api/status")
	recipeJSON(t, resp, body, http.StatusOK, &status)
	recipeWantPHP(t, resp, status.SAPI, "fe-php")
	if !status.OK || !strings.HasPrefix(status.PHP, "8.2.") {
		t.Errorf("GET /api/status: %+v", status)
	}
	var added struct {
		Note struct {
			ID   string `json:"id"`
			Text string `json:"text"`
		} `json:"note"`
		SAPI string `json:"sapi"`
	}
	resp, body = recipeDo(t, nil, s.Server, "POST", "/api/notes", `{"text": "buy milk"}`, "Content-Type: application/json")
	recipeJSON(t, resp, body, http.StatusCreated, &added)
	recipeWantPHP(t, resp, added.SAPI, "fe-php")
	var list struct {
		Notes []struct {
			ID   string `json:"id"`
			Text string `json:"text"`
		} `json:"notes"`
		SAPI string `json:"sapi"`
	}
	resp, body = get(t, s.Server, "/api/notes")
	recipeJSON(t, resp, body, http.StatusOK, &list)
	if len(list.Notes) != 1 || list.Notes[0].ID != added.Note.ID || list.Notes[0].Text != "buy milk" {
		t.Errorf("GET /api/notes: %+v, want the note just added (%+v)", list.Notes, added.Note)
	}
	resp, body = recipeDo(t, nil, s.Server, "DELETE", "/api/notes/"+added.Note.ID, "")
	wantStatus(t, resp, body, http.StatusNoContent)
	var missing struct {
		Error string `json:"error"`
	}
	resp, body = get(t, s.Server, "/api/no/such/endpoint")
	recipeJSON(t, resp, body, http.StatusNotFound, &missing)
	if missing.Error == "" {
		t.Errorf("GET /api/no/such/endpoint: %q, want the API's JSON 404", body)
	}
	// The static default answers only GET and HEAD.
	resp, body = recipeDo(t, nil, s.Server, "POST", "/settings/profile", "x=1", "Content-Type: application/x-www-form-urlencoded")
	wantStatus(t, resp, body, http.StatusMethodNotAllowed)

	recipeWantAccessLog(t, s.Server, map[string]string{
		"GET /settings/profile":     "static",
		"GET /assets/app.js":        "static",
		"GET /assets/missing.js":    "static",
		"GET /api/status":           "embedded",
		"POST /api/notes":           "embedded",
		"GET /api/no/such/endpoint": "embedded",
	})
}
