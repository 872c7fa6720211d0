//go:build fephp_bridge

package integration

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's chromium; the tests never download a browser.
const chromiumPath = "/usr/bin/chromium"

// browserStepTimeout bounds each step of the browser test: generous, for a
// fresh machine with cold caches and a race-enabled server, but a step
// that waits for something that never comes fails within a minute.
const browserStepTimeout = time.Minute

// testWordPressBrowser drives a real headless Chromium through the site a
// visitor and an author see: the front page, the login form, publishing a
// post in the block editor, and the post on the site. Every step waits for
// the state it needs (loaded, visible, enabled, settled) instead of for a
// while. Screenshots go to artifactsDir; on a failure so do a screenshot
// and the HTML of the page as it was (wordpress-failed-PHASE.png, .html).
func testWordPressBrowser(t *testing.T, w *wpSite) {
	b := startWPBrowser(t, w)

	// A visitor sees the front page with the site title.
	b.phase = "front page"
	b.open("open the front page", "/")
	b.run("wait for the site title", chromedp.WaitVisible(chromedp.CSS(`.wp-block-site-title`)))
	b.screenshot("wordpress-front-page.png")
	if title := b.text(`.wp-block-site-title`); title != wpTitle {
		b.fatalf("site title in the browser: %q, want %q", title, wpTitle)
	}

	// The author logs in through the form (served by PHP-FPM) ...
	b.phase = "log in"
	b.logIn(wpUser, wpPassword)
	b.screenshot("wordpress-dashboard.png")

	// ... writes a post in the block editor and publishes it ...
	b.phase = "publish"
	postTitle := "Published from Chromium " + randomHex(t, 3)
	link := b.publishPost(postTitle)
	b.screenshot("wordpress-published.png")
	t.Logf("editor says: %s", b.text(`.post-publish-panel__postpublish-header`))

	// ... and sees it on the site (embedded PHP).
	b.phase = "post"
	b.open("open the front page again", "/")
	titleLink := fmt.Sprintf(`.wp-block-post-title a[href=%q]`, link)
	b.run("find the post on the front page", chromedp.WaitVisible(chromedp.CSS(titleLink)))
	if text := b.text(titleLink); text != postTitle {
		b.fatalf("the front page links to %s as %q, want %q", link, text, postTitle)
	}
	resp := b.clickToNavigate("open the post from the front page", titleLink)
	if resp.URL != link || resp.Status != 200 {
		b.fatalf("the post's link led to %s (status %d), want %s (200)", resp.URL, resp.Status, link)
	}
	b.run("wait for the post's heading", chromedp.WaitVisible(chromedp.CSS(`h1.wp-block-post-title`)))
	b.screenshot("wordpress-post.png")
	if heading := b.text(`h1.wp-block-post-title`); heading != postTitle {
		b.fatalf("post page heading %q, want %q", heading, postTitle)
	}
}

// startWPBrowser starts a headless Chromium on the site w, with extra
// options, for the rest of the test. Its tab reaches the site's host name
// on fe-php's address, whatever the port.
func startWPBrowser(t *testing.T, w *wpSite, extra ...chromedp.ExecAllocatorOption) *wpBrowser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("%s is missing: install Debian's chromium (scripts/deps.sh)", chromiumPath)
	}
	siteURL, _ := url.Parse(w.base)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.WindowSize(1280, 900),
		// This machine has no internet: no background calls to Google.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		// The site's name always means fe-php's loopback address.
		chromedp.Flag("host-resolver-rules", "MAP "+siteURL.Hostname()+" "+hostOf(w.srv.Addr)),
	}
	opts = append(opts, extra...)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelCtx)
	// The first Run starts the browser and ties it to its context: this
	// deadline bounds the whole session; each step has its own, shorter one.
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", chromiumPath, err)
	}
	b := &wpBrowser{t: t, ctx: ctx, base: w.base, artifacts: artifactsDir(t)}
	b.collectConsole()
	return b
}

// logIn logs in through wp-login.php's form as a person does, and waits
// for the dashboard.
func (b *wpBrowser) logIn(user, password string) {
	b.t.Helper()
	b.open("open the login form", "/wp-login.php")
	// That GET set WordPress's test cookie, and the POST must bring it
	// back, or WordPress answers with the form again and "Cookies are
	// blocked or not supported by your browser". So the form must post to
	// this very host, and the browser must hold the cookie for that URL
	// (a host-only cookie on the *.localhost name, path /).
	action := b.eval("read the login form's action", `document.getElementById('loginform').action`)
	if want := b.base + "/wp-login.php"; action != want {
		b.fatalf("the login form posts to %q, not to %q where the browser got the test cookie", action, want)
	}
	cookies := browserValue(b, "read the browser's cookies for "+action, func(ctx context.Context, _ *chromedp.Target) ([]*network.Cookie, error) {
		r, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{action}})
		return r.Cookies, err
	})
	i := slices.IndexFunc(cookies, func(c *network.Cookie) bool { return c.Name == "wordpress_test_cookie" })
	if i < 0 {
		var names []string
		for _, c := range cookies {
			names = append(names, c.Name)
		}
		b.fatalf("after GET /wp-login.php the browser has no wordpress_test_cookie for %s (it has %v): the login would fail the cookie check", action, names)
	}
	b.t.Logf("browser: WordPress's test cookie: domain %s, path %s", cookies[i].Domain, cookies[i].Path)

	b.run("wait for the login form's fields",
		chromedp.WaitVisible(chromedp.CSS(`#user_login`)), chromedp.WaitEnabled(chromedp.CSS(`#user_login`)),
		chromedp.WaitVisible(chromedp.CSS(`#user_pass`)), chromedp.WaitEnabled(chromedp.CSS(`#user_pass`)),
		waitClickable(`#wp-submit`),
	)
	// wp-login.php focuses the user name field and selects its text 200 ms
	// after its script runs (wp_attempt_focus): keys typed before that go
	// astray, e.g. the rest of the password replaces the user name. Typing
	// starts once the page has put the focus where it wants it.
	b.run("wait for WordPress to focus the user name field",
		waitJS(`() => document.activeElement === document.getElementById('user_login')`))
	b.run("type the user name and password",
		chromedp.SendKeys(chromedp.CSS(`#user_login`), user),
		chromedp.SendKeys(chromedp.CSS(`#user_pass`), password),
	)
	got := browserValue(b, "read the form back", chromedp.Evaluate[[]string](
		`[document.getElementById('user_login').value, document.getElementById('user_pass').value]`))
	if len(got) != 2 || got[0] != user || got[1] != password {
		b.fatalf("after typing, the form holds %q (want user %q and a password of %d characters)", got, user, len(password))
	}

	resp := b.clickToNavigate("submit the login form", `#wp-submit`)
	switch path := urlPath(resp.URL); path {
	case "/wp-admin/":
	case "/wp-login.php":
		msg := b.eval("read WordPress's login error",
			`(e => e ? e.innerText.trim() : '(no #login_error on the page)')(document.getElementById('login_error'))`)
		b.fatalf("WordPress refused the login: POST /wp-login.php answered %d with the login form again: %s", resp.Status, msg)
	default:
		b.fatalf("the login form led to %s (status %d), not to /wp-admin/", resp.URL, resp.Status)
	}
	b.run("wait for the dashboard",
		chromedp.WaitVisible(chromedp.CSS(`#wpadminbar`)),
		chromedp.WaitVisible(`//h1[normalize-space()="Dashboard"]`),
	)
}

// publishPost writes a post with title in the block editor, publishes it
// and returns its link. The editor is a JavaScript application: besides
// the page, the steps wait on its state (the wp.data stores).
func (b *wpBrowser) publishPost(title string) (link string) {
	b.t.Helper()
	b.open("open the block editor", "/wp-admin/post-new.php")
	b.run("wait for the block editor to be ready",
		waitJS(`() => { try { return wp.data.select('core/editor').__unstableIsEditorReady(); } catch (e) { return false; } }`),
		chromedp.WaitVisible(chromedp.CSS(`.editor-post-title__input`)),
	)
	// The first visit opens a welcome guide over the editor: the editor's
	// state says whether it does, so the test never races its modal.
	guide := browserValue(b, "ask the editor whether it shows the welcome guide",
		chromedp.Evaluate[bool](`wp.data.select('core/edit-post').isFeatureActive('welcomeGuide')`))
	b.t.Logf("browser: welcome guide shown: %v", guide)
	if guide {
		closeButton := `.edit-post-welcome-guide .components-modal__header button`
		b.run("close the welcome guide",
			waitClickable(closeButton),
			chromedp.Click(chromedp.CSS(closeButton)),
			chromedp.WaitNotPresent(chromedp.CSS(`.edit-post-welcome-guide`)),
		)
	}

	titleField := `.editor-post-title__input`
	b.run("type the post's title",
		waitClickable(titleField),
		chromedp.Click(chromedp.CSS(titleField)),
		chromedp.SendKeys(chromedp.CSS(titleField), title),
	)
	b.run("wait for the editor to hold the title",
		waitJS(`(want) => wp.data.select('core/editor').getEditedPostAttribute('title') === want`, title))

	// The Publish button opens a panel that slides in; its own Publish
	// button takes a click once the panel has stopped moving.
	toggle := `.editor-post-publish-panel__toggle`
	publish := `.editor-post-publish-panel .editor-post-publish-button`
	b.run("open the publish panel", waitClickable(toggle), chromedp.Click(chromedp.CSS(toggle)))
	b.run("publish", waitClickable(publish), chromedp.Click(chromedp.CSS(publish)))
	b.run("wait for the post to be published",
		waitJS(`() => { const e = wp.data.select('core/editor'); return e.getCurrentPostAttribute('status') === 'publish' && !e.isSavingPost(); }`),
		chromedp.WaitVisible(chromedp.CSS(`.post-publish-panel__postpublish-header`)),
	)
	link = b.eval("read the post's link", `wp.data.select('core/editor').getCurrentPostAttribute('link')`)
	if !strings.HasPrefix(link, b.base+"/") {
		b.fatalf("the published post's link %q is not on the site %s", link, b.base)
	}
	return link
}

// wpBrowser is a headless Chromium tab on a WordPress site. Each step runs
// within browserStepTimeout; a failure keeps a screenshot and the HTML of
// the page in the artifacts directory and names them in the message.
type wpBrowser struct {
	t         *testing.T
	ctx       context.Context // the tab
	base      string          // the site's URL
	artifacts string
	phase     string // what the test does now, to name the files a failure keeps

	mu      sync.Mutex
	console []string // the page's last console messages and errors
}

// do runs f as the step what, with a deadline of browserStepTimeout, and
// fails the test if f fails.
func (b *wpBrowser) do(what string, f func(ctx context.Context) error) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	start := time.Now()
	err := f(ctx)
	took := time.Since(start).Round(time.Millisecond)
	if err != nil {
		b.fatalf("%s: %v (after %v)", what, err, took)
	}
	b.t.Logf("browser: %s (%v)", what, took)
}

// run runs actions as the step what.
func (b *wpBrowser) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	b.do(what, func(ctx context.Context) error { return chromedp.Do(ctx, actions...) })
}

// browserValue runs a as the step what and returns its value.
func browserValue[T any](b *wpBrowser, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	var v T
	b.do(what, func(ctx context.Context) (err error) {
		v, err = chromedp.Run(ctx, a)
		return err
	})
	return v
}

// eval runs the JavaScript expression js as the step what and returns its
// string value.
func (b *wpBrowser) eval(what, js string) string {
	b.t.Helper()
	return browserValue(b, what, chromedp.Evaluate[string](js))
}

// text returns the trimmed text of the element sel names.
func (b *wpBrowser) text(sel string) string {
	b.t.Helper()
	return strings.TrimSpace(browserValue(b, "read the text of "+sel, chromedp.Text(chromedp.CSS(sel))))
}

// open loads path and waits for it to load; the page must answer 200.
func (b *wpBrowser) open(what, path string) {
	b.t.Helper()
	resp := browserValue(b, what, chromedp.NavigateResponse(b.base+path))
	if resp == nil {
		b.fatalf("%s: the browser saw no response for %s", what, path)
	}
	if resp.Status != 200 || urlPath(resp.URL) != path {
		b.fatalf("%s: GET %s ended at %s with status %d, want %s with 200", what, path, resp.URL, resp.Status, path)
	}
}

// clickToNavigate waits until the element sel names can take a click,
// clicks it and waits for the page the click leads to, whose response it
// returns.
func (b *wpBrowser) clickToNavigate(what, sel string) *network.Response {
	b.t.Helper()
	b.run(what+": wait until "+sel+" can be clicked", waitClickable(sel))
	var resp *network.Response
	b.do(what, func(ctx context.Context) (err error) {
		resp, err = chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel)))
		return err
	})
	if resp == nil {
		b.fatalf("%s: the browser saw no response for the page the click led to", what)
	}
	return resp
}

// screenshot keeps a screenshot of the page in the artifacts directory.
func (b *wpBrowser) screenshot(name string) {
	b.t.Helper()
	png := browserValue(b, "take the screenshot "+name, chromedp.FullScreenshot(100))
	p := filepath.Join(b.artifacts, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", p)
}

// fatalf fails the test with the message and what the page shows now.
func (b *wpBrowser) fatalf(format string, args ...any) {
	b.t.Helper()
	b.t.Fatalf("browser (%s): %s\n%s", b.phase, fmt.Sprintf(format, args...), b.capture())
}

// capture keeps a screenshot and the HTML of the page as it is now,
// named after the phase of the test, and returns a report that says where
// they are, with the page's URL and its last console messages.
func (b *wpBrowser) capture() string {
	// The step's own deadline may have passed: this one is fresh.
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	name := filepath.Join(b.artifacts, "wordpress-failed-"+artifactSlug(b.phase))
	var report []string
	if loc, err := chromedp.Run(ctx, chromedp.Location()); err != nil {
		report = append(report, fmt.Sprintf("page: unknown (%v)", err))
	} else {
		report = append(report, "page: "+loc)
	}
	keep := func(what, file string, data []byte, err error) {
		if err == nil {
			err = os.WriteFile(file, data, 0o644)
		}
		if err != nil {
			report = append(report, fmt.Sprintf("%s: none (%v)", what, err))
		} else {
			report = append(report, fmt.Sprintf("%s: %s", what, file))
		}
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	keep("screenshot", name+".png", png, err)
	html, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	keep("HTML", name+".html", []byte(html), err)
	b.mu.Lock()
	console := slices.Clone(b.console)
	b.mu.Unlock()
	if len(console) > 0 {
		report = append(report, "browser console (last messages):\n\t"+strings.Join(console, "\n\t"))
	}
	return strings.Join(report, "\n")
}

// collectConsole keeps the tab's last console messages and uncaught
// errors, for failure reports, until the tab closes.
func (b *wpBrowser) collectConsole() {
	messages := chromedp.Console(b.ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			line := m.String()
			if m.URL != "" {
				line += fmt.Sprintf(" (%s:%d)", m.URL, m.Line+1)
			}
			b.mu.Lock()
			b.console = append(b.console, line)
			if len(b.console) > 40 {
				b.console = slices.Delete(b.console, 0, 1)
			}
			b.mu.Unlock()
		}
	}()
}

// waitJS waits until the JavaScript function fn, called with args, returns
// a truthy value; it polls every 50 ms, and a navigation ends it with an
// error.
func waitJS(fn string, args ...any) chromedp.Action[chromedp.Void] {
	return chromedp.PollFunction[chromedp.Void](fn,
		chromedp.WithPollingArgs(args...),
		chromedp.WithPollingInterval(50*time.Millisecond),
		chromedp.WithPollingTimeout(browserStepTimeout))
}

// clickableJS is true when the element sel names takes a mouse click at
// its center: it is enabled, has a size, no running animation moves it
// (panels slide in) and no other element covers its center.
const clickableJS = `(sel) => {
	const el = document.querySelector(sel);
	if (!el || el.disabled || el.getAttribute('aria-disabled') === 'true') return false;
	const r = el.getBoundingClientRect();
	if (r.width === 0 || r.height === 0) return false;
	const moving = document.getAnimations().some(a =>
		a.playState === 'running' && a.effect && a.effect.target && a.effect.target.contains(el));
	if (moving) return false;
	const hit = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
	return hit !== null && el.contains(hit);
}`

// waitClickable scrolls the element sel names into view and waits until
// it can take a click (clickableJS).
func waitClickable(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.ScrollIntoView(chromedp.CSS(sel)),
		waitJS(clickableJS, sel),
	)
}

// urlPath is the path of the URL u, or u itself if it does not parse.
func urlPath(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	return p.Path
}

// artifactSlug makes s a file name: lower-case letters and digits, dashes between.
func artifactSlug(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case 'a' <= r && r <= 'z', '0' <= r && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

// artifactsDir is where tests keep files for people to look at:
// $FEPHP_ARTIFACTS, or tests/artifacts in the repository.
func artifactsDir(t *testing.T) string {
	dir := os.Getenv("FEPHP_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(repoRoot(t), "tests", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func hostOf(addr string) string {
	h, _, _ := net.SplitHostPort(addr)
	return h
}
