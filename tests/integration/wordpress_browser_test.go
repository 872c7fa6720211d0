//go:build fephp_bridge

package integration

import (
	"context"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's chromium; the tests never download a browser.
const chromiumPath = "/usr/bin/chromium"

// testWordPressBrowser drives a real headless Chromium through the site a
// visitor and an author see: the front page, the login form, publishing a
// post in the block editor, and the post on the site. Screenshots go to
// artifactsDir.
func testWordPressBrowser(t *testing.T, w *wpSite) {
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
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	defer cancelCtx()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()

	shots := artifactsDir(t)
	screenshot := func(name string) chromedp.Action[chromedp.Void] {
		return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			png, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return chromedp.Void{}, err
			}
			p := filepath.Join(shots, name)
			t.Logf("screenshot: %s", p)
			return chromedp.Void{}, os.WriteFile(p, png, 0o644)
		}
	}
	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			_ = chromedp.Do(ctx, screenshot("wordpress-failed.png"))
			t.Fatalf("%s: %v (page: %s)", what, err, loc)
		}
	}
	text := func(sel chromedp.CSS) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}

	// A visitor sees the front page with the site title.
	step("open the front page",
		chromedp.Navigate(w.base+"/"),
		chromedp.WaitVisible(chromedp.CSS(`.wp-block-site-title`)),
		screenshot("wordpress-front-page.png"),
	)
	if title := text(`.wp-block-site-title`); title != wpTitle {
		t.Errorf("site title in the browser: %q, want %q", title, wpTitle)
	}

	// The author logs in through the form (served by PHP-FPM).
	step("log in through the form",
		chromedp.Navigate(w.base+"/wp-login.php"),
		chromedp.WaitVisible(chromedp.CSS(`#user_login`)),
		chromedp.SendKeys(chromedp.CSS(`#user_login`), wpUser),
		chromedp.SendKeys(chromedp.CSS(`#user_pass`), wpPassword),
		chromedp.Click(chromedp.CSS(`#wp-submit`)),
		chromedp.WaitVisible(chromedp.CSS(`#wpadminbar`)),
		chromedp.WaitVisible(`//h1[normalize-space()="Dashboard"]`),
		screenshot("wordpress-dashboard.png"),
	)

	// ... writes a post in the block editor and publishes it.
	postTitle := "Published from Chromium " + randomHex(t, 3)
	step("open the block editor",
		chromedp.Navigate(w.base+"/wp-admin/post-new.php"),
		chromedp.WaitVisible(chromedp.CSS(`.editor-post-title__input`)),
	)
	// The first visit opens a welcome guide over the editor.
	if guide, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!document.querySelector('.edit-post-welcome-guide')`)); guide {
		step("close the welcome guide",
			chromedp.Click(chromedp.CSS(`.edit-post-welcome-guide .components-modal__header button`)),
			chromedp.WaitNotPresent(chromedp.CSS(`.edit-post-welcome-guide`)),
		)
	}
	step("publish a post",
		chromedp.Click(chromedp.CSS(`.editor-post-title__input`)),
		chromedp.SendKeys(chromedp.CSS(`.editor-post-title__input`), postTitle),
		chromedp.Click(chromedp.CSS(`.editor-post-publish-panel__toggle`)),
		chromedp.WaitVisible(chromedp.CSS(`.editor-post-publish-panel .editor-post-publish-button`)),
		chromedp.Click(chromedp.CSS(`.editor-post-publish-panel .editor-post-publish-button`)),
		chromedp.WaitVisible(chromedp.CSS(`.post-publish-panel__postpublish-header`)),
		screenshot("wordpress-published.png"),
	)
	t.Logf("editor says: %s", text(`.post-publish-panel__postpublish-header`))

	// ... and sees it on the site (embedded PHP).
	link := `//a[normalize-space()="` + postTitle + `"]`
	step("see the post on the front page",
		chromedp.Navigate(w.base+"/"),
		chromedp.WaitVisible(link),
		chromedp.Click(link),
		chromedp.WaitVisible(chromedp.CSS(`h1.wp-block-post-title`)),
		screenshot("wordpress-post.png"),
	)
	if heading := text(`h1.wp-block-post-title`); heading != postTitle {
		t.Errorf("post page heading %q, want %q", heading, postTitle)
	}
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
