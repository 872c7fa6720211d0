//go:build fephp_bridge

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fe-php/fe-php/internal/testutil/fpmtest"
)

// A deploy through a symlink (current -> releases/N): after the switch
// both PHP backends run the new release, with OPcache on and
// validate_timestamps off, because DOCUMENT_ROOT and SCRIPT_FILENAME name
// the resolved release directory (nginx's $realpath_root); files beside
// the scripts come from the new release too.
func TestSymlinkDeploy(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	script := `<?php echo basename($_SERVER['DOCUMENT_ROOT']), ' ', basename(dirname($_SERVER['SCRIPT_FILENAME'], %d)), ' ', RELEASE, "\n";`
	for _, rel := range []string{"1", "2"} {
		writeFiles(t, filepath.Join(dir, "releases", rel), map[string]string{
			"index.php":     fmt.Sprintf("<?php const RELEASE = 'code-%s'; ?>", rel) + fmt.Sprintf(script, 1),
			"fpm/index.php": fmt.Sprintf("<?php const RELEASE = 'code-%s'; ?>", rel) + fmt.Sprintf(script, 2),
			"version.txt":   "static-" + rel + "\n",
		})
	}
	current := filepath.Join(dir, "current")
	if err := os.Symlink(filepath.Join("releases", "1"), current); err != nil {
		t.Fatal(err)
	}
	f := fpmtest.Start(t, fpmtest.Options{Children: 1, DocRoot: current,
		ExtraINI: map[string]string{"opcache.enable": "1", "opcache.validate_timestamps": "0"}})
	s := startServer(t, fmt.Sprintf(`[php]
document_root = %q
fpm_socket = %q
worker_pool_size = 1

[php.opcache]
validate_timestamps = false

[[backend.routing_rules]]
pattern = { type = "prefix", value = "/fpm/" }
backend = "fastcgi"
`, current, f.Address), nil)

	want := func(rel string) map[string]string {
		return map[string]string{
			"/":            rel + " " + rel + " code-" + rel + "\n",
			"/fpm/":        rel + " " + rel + " code-" + rel + "\n",
			"/version.txt": "static-" + rel + "\n",
		}
	}
	check := func(rel string) bool {
		for path, body := range want(rel) {
			resp, got := get(t, s, path)
			if resp.StatusCode != 200 || string(got) != body {
				return false
			}
		}
		return true
	}
	if !check("1") {
		for path := range want("1") {
			resp, got := get(t, s, path)
			t.Errorf("before the switch, GET %s: %s %q", path, describe(resp), got)
		}
		t.FailNow()
	}
	// The switch, atomic as deploy tools do it: a new link renamed over.
	tmp := current + ".new"
	if err := os.Symlink(filepath.Join("releases", "2"), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, current); err != nil {
		t.Fatal(err)
	}
	// The script and the files beside it switch at the same instant (one
	// shared view of the root): once a page comes from release 2, so does
	// the next static file, never one from release 1.
	waitFor(t, 10*time.Second, "the embedded backend to run release 2", func() bool {
		if _, page := get(t, s, "/"); string(page) != want("2")["/"] {
			return false
		}
		if _, file := get(t, s, "/version.txt"); string(file) != want("2")["/version.txt"] {
			t.Errorf("a page ran release 2, then GET /version.txt answered %q", file)
		}
		return true
	})
	waitFor(t, 10*time.Second, "both backends and the static files to serve release 2", func() bool { return check("2") })
	for path, body := range want("2") {
		if resp, got := get(t, s, path); string(got) != body {
			t.Errorf("after the switch, GET %s: %s %q", path, describe(resp), got)
		}
	}
	if strings.Contains(s.Stderr(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", s.Stderr())
	}
}
