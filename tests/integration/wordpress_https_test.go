//go:build fephp_bridge

package integration

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// TestWordPressHTTPS serves the spec's WordPress recipe
// (examples/wordpress/fe-php.toml) with fe-php terminating TLS itself: a
// [server.tls] section with a self-signed certificate for the site's
// host name, plain HTTP redirecting to HTTPS. WordPress is installed over
// HTTPS (it builds its URLs from HTTPS=on), and a headless Chromium loads
// the site and logs in, while the DevTools protocol's network events say
// how each response came: over HTTP/2, compressed or not.
func TestWordPressHTTPS(t *testing.T) {
	t.Parallel()
	w := startWordPress(t, wpOptions{TLS: true})

	t.Run("WordPress's own URLs are https", func(t *testing.T) {
		// The REST API's index names the site's home and siteurl. (Not at
		// /wp-json/: the installer's loopback request that would turn on
		// pretty permalinks does not trust the self-signed certificate.)
		resp, body := w.get(t, "/?rest_route=/")
		wantStatus(t, resp, body, 200)
		if resp.Proto != "HTTP/2.0" {
			t.Errorf("GET /?rest_route=/ over HTTPS: protocol %s, want HTTP/2.0", resp.Proto)
		}
		var index struct {
			URL  string `json:"url"`
			Home string `json:"home"`
		}
		if err := json.Unmarshal(body, &index); err != nil {
			t.Fatalf("/?rest_route=/ is not the REST index: %v: %s", err, trunc(body))
		}
		if index.URL != w.base || index.Home != w.base {
			t.Errorf("WordPress's siteurl %q and home %q, want both %q", index.URL, index.Home, w.base)
		}
		w.wantBackend(t, resp, "embedded")
	})

	t.Run("plain HTTP is a 308 to HTTPS", func(t *testing.T) {
		for _, target := range []string{"/", "/wp-login.php?redirect_to=%2Fwp-admin%2F", "/wp-admin/", "/wp-content/themes/twentytwentythree/style.css"} {
			resp, body := w.do(t, mustRequest(t, "GET", w.httpBase+target, nil), false)
			if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != w.base+target {
				t.Errorf("GET %s: %d, Location %q; want 308 to %s: %s", w.httpBase+target, resp.StatusCode, resp.Header.Get("Location"), w.base+target, trunc(body))
			}
		}
	})

	t.Run("browser", func(t *testing.T) {
		testWordPressHTTPSBrowser(t, w)
	})
}

// testWordPressHTTPSBrowser: Chromium trusts the site's certificate (by
// its key, --ignore-certificate-errors-spki-list: no other certificate
// error is ignored), opens the front page, follows plain HTTP's redirect
// and logs in through the form. Every response of the site must come over
// HTTP/2 ("h2") on an https:// URL, every link to the site must be
// https://, and the static assets must come compressed when their type is
// compressible (and not when it is not).
func testWordPressHTTPSBrowser(t *testing.T, w *wpSite) {
	spki := certSPKIHash(t, w.certFile)
	b := startWPBrowser(t, w, chromedp.Flag("ignore-certificate-errors-spki-list", spki))
	n := &netLog{byID: map[network.RequestID]*netExchange{}, docs: map[cdp.FrameID]cdp.LoaderID{}}
	if err := chromedp.Listen(b.ctx, n.listen); err != nil {
		t.Fatalf("listening to the tab's network events: %v", err)
	}
	site, _ := url.Parse(w.base)
	var all []*netExchange // what every phase saw

	// A visitor opens the front page.
	b.phase = "https front page"
	n.setPhase(b.phase)
	b.open("open the front page", "/")
	b.run("wait for the site title", chromedp.WaitVisible(chromedp.CSS(`.wp-block-site-title`)))
	if title := b.text(`.wp-block-site-title`); title != wpTitle {
		b.fatalf("site title in the browser: %q, want %q", title, wpTitle)
	}
	// The theme declares its fonts (theme.json's fontFace) but its default
	// style uses the system's: Chromium fetches a font only when text needs
	// it. Load one face through the page's font loader, as text would.
	font := browserValue(b, "load one of the theme's fonts", chromedp.Evaluate[string](`(async () => {
		const f = [...document.fonts].find(f => f.status === 'unloaded');
		if (!f) return '';
		await f.load();
		return f.family + ' ' + f.weight + ' ' + f.style;
	})()`, chromedp.EvalAwaitPromise))
	if font == "" {
		b.fatalf("the front page declares no font to load (document.fonts)")
	}
	t.Logf("browser: loaded the theme's font %s", font)
	front := b.settle(n)
	b.screenshot("wordpress-https-front-page.png")
	doc := wantDocument(b, front, w.base+"/")
	if got := w.accessLog(t, headerValue(doc.resp.Headers, "X-Request-Id")); got["proto"] != "HTTP/2.0" || got["backend"] != "embedded" {
		t.Errorf("the front page's access log line: proto=%s backend=%s, want HTTP/2.0 and embedded", got["proto"], got["backend"])
	}
	b.wantHTTPSLinks(site, 5)
	wantH2(b, site, front)
	all = append(all, front...)

	// Plain HTTP: fe-php answers 308 and Chromium follows it to HTTPS.
	b.phase = "https redirect"
	n.setPhase(b.phase)
	resp := browserValue(b, "open the front page over plain HTTP", chromedp.NavigateResponse(w.httpBase+"/"))
	if resp == nil || resp.URL != w.base+"/" || resp.Status != 200 || resp.Protocol != "h2" {
		b.fatalf("http:// front page: ended at %+v, want %s/ with 200 over h2", resp, w.base)
	}
	redirect := b.settle(n)
	i := slices.IndexFunc(redirect, func(x *netExchange) bool { return x.url == w.httpBase+"/" })
	switch {
	case i < 0:
		b.fatalf("Chromium logged no request for %s/", w.httpBase)
	case redirect[i].resp == nil || redirect[i].resp.Status != http.StatusPermanentRedirect ||
		headerValue(redirect[i].resp.Headers, "Location") != w.base+"/":
		b.fatalf("GET %s/ in Chromium: %s, want 308 to %s/", w.httpBase, redirect[i], w.base)
	default:
		// fe-php's answer, not one Chromium made up (HTTPS-Upgrades' 307).
		id := headerValue(redirect[i].resp.Headers, "X-Request-Id")
		if got := w.accessLog(t, id); got["status"] != "308" || got["proto"] != "HTTP/1.1" {
			t.Errorf("the redirect's access log line: status=%s proto=%s, want 308 and HTTP/1.1", got["status"], got["proto"])
		}
		t.Logf("browser: %s", redirect[i])
	}
	wantH2(b, site, slices.Delete(slices.Clone(redirect), i, i+1))
	all = append(all, redirect...)

	// The author logs in through the form (PHP-FPM) and reaches the
	// dashboard (PHP-FPM), both over HTTP/2.
	b.phase = "https log in"
	n.setPhase(b.phase)
	b.logIn(wpUser, wpPassword)
	login := b.settle(n)
	b.screenshot("wordpress-https-dashboard.png")
	post := slices.IndexFunc(login, func(x *netExchange) bool {
		return x.method == "POST" && x.url == w.base+"/wp-login.php"
	})
	if post < 0 || login[post].resp == nil || login[post].resp.Status != 302 {
		b.fatalf("no 302 answer to POST %s/wp-login.php among %v", w.base, login)
	}
	dashboard := wantDocument(b, login, w.base+"/wp-admin/")
	for _, x := range []*netExchange{login[post], dashboard} {
		got := w.accessLog(t, headerValue(x.resp.Headers, "X-Request-Id"))
		if got["proto"] != "HTTP/2.0" || got["backend"] != "fastcgi" {
			t.Errorf("%s %s: access log says proto=%s backend=%s, want HTTP/2.0 and fastcgi", x.method, x.url, got["proto"], got["backend"])
		} else {
			t.Logf("access log: %s %s: %s %s backend=%s", got["method"], got["uri"], got["proto"], got["status"], got["backend"])
		}
	}
	// wp-login.php (on PHP-FPM) saw HTTPS=on: the auth cookie is
	// WordPress's secure one (wordpress_sec_...), with the Secure flag.
	cookies := browserValue(b, "read the browser's cookies for the dashboard", func(ctx context.Context, _ *chromedp.Target) ([]*network.Cookie, error) {
		r, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{w.base + "/wp-admin/"}})
		return r.Cookies, err
	})
	if !slices.ContainsFunc(cookies, func(c *network.Cookie) bool { return strings.HasPrefix(c.Name, "wordpress_sec_") && c.Secure }) {
		var names []string
		for _, c := range cookies {
			names = append(names, fmt.Sprintf("%s (secure: %v)", c.Name, c.Secure))
		}
		t.Errorf("after the login over HTTPS, no secure wordpress_sec_ auth cookie; the browser has %v", names)
	}
	b.wantHTTPSLinks(site, 20)
	wantH2(b, site, login)
	all = append(all, login...)

	b.phase = "https compression"
	w.wantCompressed(b, site, all)
}

// wantDocument returns the exchange of the document at u, which must
// have answered 200 over h2, compressed (an HTML page is far over
// min_length).
func wantDocument(b *wpBrowser, xs []*netExchange, u string) *netExchange {
	b.t.Helper()
	i := slices.IndexFunc(xs, func(x *netExchange) bool {
		return x.typ == network.ResourceTypeDocument && x.url == u && x.resp != nil
	})
	if i < 0 {
		b.fatalf("Chromium logged no document response for %s", u)
	}
	x := xs[i]
	if x.resp.Status != 200 || x.resp.Protocol != "h2" {
		b.fatalf("the document %s: %s, want 200 over h2", u, x)
	}
	if enc := headerValue(x.resp.Headers, "Content-Encoding"); !slices.Contains([]string{"zstd", "br", "gzip"}, enc) {
		b.t.Errorf("the document %s came with Content-Encoding %q, want it compressed", u, enc)
	}
	if sd := x.resp.SecurityDetails; sd == nil || sd.SubjectName != b.hostname() {
		b.t.Errorf("the document %s: TLS details %+v, want the site's certificate", u, sd)
	} else {
		b.t.Logf("browser: %s over %s, %s, %s, certificate for %s, security state %s", u, x.resp.Protocol, sd.Protocol, sd.Cipher, sd.SubjectName, x.resp.SecurityState)
	}
	return x
}

// wantH2 checks every exchange with the site: an https:// URL, a response
// over HTTP/2, no failure (Chromium blocks mixed content with one).
// Requests elsewhere (WordPress's Gravatar images: this machine has no
// internet) must be https:// too.
func wantH2(b *wpBrowser, site *url.URL, xs []*netExchange) {
	b.t.Helper()
	var h2, n int
	for _, x := range xs {
		u, err := url.Parse(x.url)
		if err != nil || u.Scheme == "data" || u.Scheme == "blob" {
			continue
		}
		if u.Hostname() != site.Hostname() {
			if u.Scheme != "https" {
				b.t.Errorf("mixed content: %s", x)
			} else {
				b.t.Logf("browser: not the site's (not checked): %s", x)
			}
			continue
		}
		n++
		switch {
		case u.Scheme != "https" || u.Host != site.Host:
			b.t.Errorf("not on %s (mixed content?): %s", site, x)
		case x.failed != "":
			b.t.Errorf("failed: %s", x)
		case x.resp == nil:
			b.t.Logf("browser: no answer yet (not checked): %s", x)
		case x.resp.Protocol != "h2":
			b.t.Errorf("over %q, want h2: %s", x.resp.Protocol, x)
		default:
			h2++
		}
	}
	b.t.Logf("browser: %s: %d of the site's %d requests answered over h2", b.phase, h2, n)
	if h2 == 0 {
		b.t.Errorf("%s: no response over h2 at all", b.phase)
	}
}

// compressible are the media types fe-php compresses by default
// (docs/configuration.md, [server.compression]) that WordPress serves.
var compressible = []string{"text/css", "text/javascript", "application/javascript", "text/html",
	"image/svg+xml", "application/json", "font/ttf", "font/otf"}

// wantCompressed checks the files Chromium fetched: those of the static
// backend (/wp-content/, /wp-includes/: the static root) and those beside
// the scripts that the PHP backends serve as files (/wp-admin/css/...).
// Each must come compressed when its type is compressible and the file is
// at least min_length (1K), and as it is when its type is compressed
// already (fonts, images). Some of the static backend's CSS, compressed,
// and a font of the theme must be among them.
func (w *wpSite) wantCompressed(b *wpBrowser, site *url.URL, xs []*netExchange) {
	b.t.Helper()
	var css, fonts int
	checked := map[string]bool{}
	for _, x := range xs {
		u, err := url.Parse(x.url)
		if err != nil || u.Host != site.Host || x.resp == nil || x.resp.Status != 200 || checked[u.Path] {
			continue
		}
		checked[u.Path] = true
		static := strings.HasPrefix(u.Path, "/wp-content/") || strings.HasPrefix(u.Path, "/wp-includes/")
		file := filepath.Join("/usr/share/wordpress", filepath.FromSlash(u.Path)) // php.document_root
		if static {
			file = filepath.Join(w.dir, "webroot", filepath.FromSlash(u.Path))
		}
		fi, err := os.Stat(file)
		switch {
		case static && err != nil:
			b.t.Errorf("%s: no file under the static root: %v", x.url, err)
			continue
		case err != nil || !fi.Mode().IsRegular() || strings.HasSuffix(u.Path, ".php"):
			continue // made by PHP
		}
		ct, _, _ := mime.ParseMediaType(headerValue(x.resp.Headers, "Content-Type"))
		enc := headerValue(x.resp.Headers, "Content-Encoding")
		what := fmt.Sprintf("%s (%s, %d bytes on disk): Content-Encoding %q", u.Path, ct, fi.Size(), enc)
		b.t.Logf("browser: %s", what)
		switch {
		case slices.Contains(compressible, ct) && fi.Size() >= 1024:
			if !slices.Contains([]string{"zstd", "br", "gzip"}, enc) {
				b.t.Errorf("%s, want it compressed", what)
				continue
			}
			if !strings.Contains(headerValue(x.resp.Headers, "Vary"), "Accept-Encoding") {
				b.t.Errorf("%s, but Vary %q", what, headerValue(x.resp.Headers, "Vary"))
			}
			if ct != "text/css" || !static {
				continue
			}
			css++
		case slices.Contains(compressible, ct):
			continue // under min_length: either way
		case enc != "":
			b.t.Errorf("%s: compressed again, want it as it is", what)
			continue
		case strings.HasPrefix(ct, "font/") && static:
			fonts++
		default:
			continue
		}
		if (ct == "text/css" && css == 1) || (strings.HasPrefix(ct, "font/") && fonts == 1) {
			// The first CSS and the first font: the static backend
			// served them, over HTTP/2.
			if got := w.accessLog(b.t, headerValue(x.resp.Headers, "X-Request-Id")); got["backend"] != "static" || got["proto"] != "HTTP/2.0" {
				b.t.Errorf("%s: access log says backend=%s proto=%s, want static and HTTP/2.0", u.Path, got["backend"], got["proto"])
			}
		}
	}
	if css == 0 || fonts == 0 {
		b.t.Errorf("among the static assets Chromium fetched, %d compressed CSS files and %d fonts; want some of each", css, fonts)
	}
}

// wantHTTPSLinks checks that the links of the page (a, link, script, img,
// form) to the site are https:// URLs on its HTTPS port, at least atLeast of
// them, and that the page's HTML names no http:// URL of the site (not
// even JSON-escaped in a script).
func (b *wpBrowser) wantHTTPSLinks(site *url.URL, atLeast int) {
	b.t.Helper()
	host, _ := json.Marshal(site.Hostname())
	links := browserValue(b, "read the page's links to the site", chromedp.Evaluate[[]string](`(() => {
		const host = `+string(host)+`, out = [];
		const add = v => { if (v) try { const u = new URL(v, location.href); if (u.hostname === host) out.push(u.href); } catch (e) {} };
		document.querySelectorAll('a[href], link[href]').forEach(e => add(e.getAttribute('href')));
		document.querySelectorAll('script[src], img[src], iframe[src]').forEach(e => add(e.getAttribute('src')));
		document.querySelectorAll('form[action]').forEach(e => add(e.getAttribute('action')));
		return out;
	})()`))
	var bad []string
	for _, l := range links {
		if !strings.HasPrefix(l, "https://"+site.Host+"/") {
			bad = append(bad, l)
		}
	}
	if len(bad) > 0 {
		b.t.Errorf("%s: %d of the page's %d links to the site are not https://%s/...: %q", b.phase, len(bad), len(links), site.Host, bad)
	}
	if len(links) < atLeast {
		b.t.Errorf("%s: the page has %d links to the site, want at least %d: %q", b.phase, len(links), atLeast, links)
	}
	html := b.eval("read the page's HTML", `document.documentElement.outerHTML`)
	for _, insecure := range []string{"http://" + site.Hostname(), `http:\/\/` + site.Hostname()} {
		if i := strings.Index(html, insecure); i >= 0 {
			b.t.Errorf("%s: the page's HTML names %s: ...%s...", b.phase, insecure, html[max(0, i-80):min(len(html), i+120)])
		}
	}
	b.t.Logf("browser: %s: %d links to the site, all https://%s/", b.phase, len(links), site.Host)
}

// settle waits until the page has loaded, its fonts too, and Chromium has
// logged the end of every resource of the site the page's Resource Timing
// lists (and of the document) and of every request of the page to the
// site it saw start, then returns the exchanges of the current phase.
func (b *wpBrowser) settle(n *netLog) []*netExchange {
	b.t.Helper()
	b.run("wait for the page and its fonts to load",
		waitJS(`() => document.readyState === 'complete' && document.fonts.status === 'loaded'`))
	urls := browserValue(b, "read the page's resources on the site", chromedp.Evaluate[[]string](
		`[location.href, ...performance.getEntriesByType('resource').map(e => e.name)].filter(u => new URL(u).host === location.host)`))
	// The events come from the browser's network service, the page's
	// list from its renderer: poll, within a step's deadline.
	// A resource the renderer lists but the network service never
	// reported in this phase came from the memory cache, or was fetched
	// in an earlier phase (a script loaded after that page's load event):
	// it was checked where it was fetched.
	start, deadline := time.Now(), time.Now().Add(browserStepTimeout)
	for missing := n.unfinished(b.base+"/", urls); len(missing) > 0; missing = n.unfinished(b.base+"/", urls) {
		if time.Since(start) > notSeenGrace {
			if unseen := n.unseen(missing); len(unseen) > 0 {
				b.t.Logf("browser: %s: not fetched in this phase (cached or fetched before): %q", b.phase, unseen)
				urls = slices.DeleteFunc(urls, func(u string) bool { return slices.Contains(unseen, u) })
				continue
			}
		}
		if time.Now().After(deadline) {
			b.fatalf("after %v, Chromium's network events tell no finished response for these of the page's requests: %q\n"+
				"their exchanges in this phase:\n%s", browserStepTimeout, missing, strings.Join(n.exchanges(missing), "\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if left := n.abandonedExchanges(); len(left) > 0 {
		b.t.Logf("browser: %s: requests of a page left before they ended (not checked): %q", b.phase, left)
	}
	return n.take()
}

// notSeenGrace is how long a resource the renderer lists may go without
// any network event before it is taken for one this phase did not fetch.
const notSeenGrace = 5 * time.Second

// unseen returns those of urls with no exchange at all in this phase.
func (n *netLog) unseen(urls []string) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, u := range urls {
		if base, _, _ := strings.Cut(u, "#"); !slices.ContainsFunc(n.done, func(x *netExchange) bool { return x.url == base }) {
			out = append(out, u)
		}
	}
	return out
}

func (b *wpBrowser) hostname() string {
	u, _ := url.Parse(b.base)
	return u.Hostname()
}

// netLog keeps the tab's HTTP exchanges as the DevTools protocol's
// Network events tell them, by phase of the test.
type netLog struct {
	mu    sync.Mutex
	phase string
	byID  map[network.RequestID]*netExchange // the open ones
	done  []*netExchange                     // this phase's, in order
	docs  map[cdp.FrameID]cdp.LoaderID       // each frame's latest document
}

// netExchange is one request and its response: a redirect is an exchange
// of its own.
type netExchange struct {
	method, url string
	typ         network.ResourceType
	frame       cdp.FrameID
	loader      cdp.LoaderID // the document that made the request
	resp        *network.Response
	finished    bool
	failed      string // Chromium's error, and why it blocked the request
}

func (x *netExchange) String() string {
	s := fmt.Sprintf("%s %s (%s)", x.method, x.url, x.typ)
	if x.resp != nil {
		s += fmt.Sprintf(": %d over %q, Content-Type %q, Content-Encoding %q, Location %q", x.resp.Status, x.resp.Protocol,
			headerValue(x.resp.Headers, "Content-Type"), headerValue(x.resp.Headers, "Content-Encoding"), headerValue(x.resp.Headers, "Location"))
	}
	if x.failed != "" {
		s += ": failed: " + x.failed
	}
	return s
}

// listen is the tab's event func (chromedp.Listen): it runs in the tab's
// loop, in the order the events came.
func (n *netLog) listen(ev any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		if x, ok := n.byID[ev.RequestID]; ok && ev.RedirectResponse != nil {
			// The same request ID goes on after a redirect.
			x.resp, x.finished = ev.RedirectResponse, true
		}
		x := &netExchange{method: ev.Request.Method, url: ev.Request.URL, typ: ev.Type, frame: ev.FrameID, loader: ev.LoaderID}
		if ev.Type == network.ResourceTypeDocument {
			n.docs[ev.FrameID] = ev.LoaderID
		}
		n.byID[ev.RequestID] = x
		n.done = append(n.done, x)
	case *network.EventResponseReceived:
		if x, ok := n.byID[ev.RequestID]; ok {
			x.resp, x.typ = ev.Response, ev.Type
		}
	case *network.EventLoadingFinished:
		if x, ok := n.byID[ev.RequestID]; ok {
			x.finished = true
			delete(n.byID, ev.RequestID)
		}
	case *network.EventLoadingFailed:
		if x, ok := n.byID[ev.RequestID]; ok {
			if !ev.Canceled { // a navigation cancels what is still loading
				x.failed = strings.TrimSpace(ev.ErrorText + " " + string(ev.BlockedReason))
			}
			x.finished = true
			delete(n.byID, ev.RequestID)
		}
	}
}

// setPhase starts a new phase: take returns what came since.
func (n *netLog) setPhase(phase string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.phase, n.done = phase, nil
}

// take returns copies of the exchanges of this phase so far.
func (n *netLog) take() []*netExchange {
	n.mu.Lock()
	defer n.mu.Unlock()
	xs := make([]*netExchange, len(n.done))
	for i, x := range n.done {
		c := *x
		xs[i] = &c
	}
	return xs
}

// exchanges describes every exchange of the current phase with one of
// urls, and whether it finished: what a failure of settle shows (a request
// that got no answer, one answered but never finished, or a second request
// of the same URL).
func (n *netLog) exchanges(urls []string) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, x := range n.done {
		if slices.Contains(urls, x.url) {
			out = append(out, fmt.Sprintf("\t%s (finished: %v)", x, x.finished))
		}
	}
	return out
}

// unfinished returns those of urls that this phase has no finished
// exchange for, and the page's requests to site (a prefix: scheme, host
// and port) this phase has seen that have not finished yet: not the
// browser's own, such as the favicon (of type Other), nor those of a page
// the frame has left (abandoned).
func (n *netLog) unfinished(site string, urls []string) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var missing []string
	for _, u := range urls {
		if u, _, _ := strings.Cut(u, "#"); !slices.ContainsFunc(n.done, func(x *netExchange) bool { return x.url == u && x.finished }) {
			missing = append(missing, u)
		}
	}
	for _, x := range n.done {
		if !x.finished && x.typ != network.ResourceTypeOther && !n.abandoned(x) && strings.HasPrefix(x.url, site) {
			missing = append(missing, x.url)
		}
	}
	return missing
}

// abandoned reports whether x is a subresource request of a document its
// frame has since navigated away from, still open. Chromium drops such a
// request with the document and need not report its end: wp-login.php
// starts fetching zxcvbn.min.js (800 KB) on its load event, and the form
// may be submitted before it arrives. Called with n.mu held.
func (n *netLog) abandoned(x *netExchange) bool {
	doc, ok := n.docs[x.frame]
	return !x.finished && x.typ != network.ResourceTypeDocument && ok && doc != x.loader
}

// abandonedExchanges describes the exchanges of this phase that
// abandoned reports.
func (n *netLog) abandonedExchanges() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, x := range n.done {
		if n.abandoned(x) {
			out = append(out, x.String())
		}
	}
	return out
}

// headerValue is the value of the header name in h, whatever its case
// (HTTP/2's are lower-case).
func headerValue(h network.Headers, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return fmt.Sprint(v)
		}
	}
	return ""
}

// certSPKIHash is the base64 SHA-256 of the public key of the certificate
// in certFile, as Chromium's --ignore-certificate-errors-spki-list takes it.
func certSPKIHash(t *testing.T, certFile string) string {
	t.Helper()
	data, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM block", certFile)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// accessLog waits for fe-php's access log line of the request id and
// returns its fields (time id remote method uri proto status bytes
// duration_ms backend rule).
func (w *wpSite) accessLog(t testing.TB, id string) map[string]string {
	t.Helper()
	if id == "" {
		t.Fatalf("no X-Request-Id to look for in the access log")
	}
	line := regexp.MustCompile(`(?m)^\S+ id=` + regexp.QuoteMeta(id) + ` .*$`)
	var m string
	waitFor(t, 5*time.Second, "access log line of "+id, func() bool {
		m = line.FindString(w.srv.Stdout())
		return m != ""
	})
	fields := map[string]string{}
	for _, f := range regexp.MustCompile(`(\w+)=("(?:[^"\\]|\\.)*"|\S*)`).FindAllStringSubmatch(m, -1) {
		v := f[2]
		if u, err := strconv.Unquote(v); err == nil && strings.HasPrefix(v, `"`) {
			v = u
		}
		fields[f[1]] = v
	}
	return fields
}

// The browser tests' netLog forgets a request of a page the frame has
// left (its end may never be reported), and only such a request.
func TestNetLogLeavesAbandonedRequests(t *testing.T) {
	n := &netLog{byID: map[network.RequestID]*netExchange{}, docs: map[cdp.FrameID]cdp.LoaderID{}}
	const site = "https://wp.localhost/"
	send := func(id, loader string, typ network.ResourceType, u string) {
		n.listen(&network.EventRequestWillBeSent{RequestID: network.RequestID(id), LoaderID: cdp.LoaderID(loader),
			FrameID: "main", Type: typ, Request: &network.Request{Method: "GET", URL: u}})
	}
	send("L1", "L1", network.ResourceTypeDocument, site+"wp-login.php")
	n.listen(&network.EventLoadingFinished{RequestID: "L1"})
	send("s1", "L1", network.ResourceTypeScript, site+"zxcvbn.min.js")
	if got := n.unfinished(site, nil); len(got) != 1 {
		t.Fatalf("while its page is open, the script is waited for: unfinished = %q", got)
	}
	send("L2", "L2", network.ResourceTypeDocument, site+"wp-admin/")
	send("s2", "L2", network.ResourceTypeScript, site+"common.js")
	got := n.unfinished(site, nil)
	if len(got) != 2 || got[0] != site+"wp-admin/" || got[1] != site+"common.js" {
		t.Errorf("after the navigation, unfinished = %q, want the new document and its script only", got)
	}
	if left := n.abandonedExchanges(); len(left) != 1 || !strings.Contains(left[0], "zxcvbn.min.js") {
		t.Errorf("abandoned exchanges = %q, want the left page's script", left)
	}
}
