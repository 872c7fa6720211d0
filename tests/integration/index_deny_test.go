package integration

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fe-php/fe-php/internal/testutil/fpmtest"
)

// A DokuWiki-shaped site: "/" runs doku.php (php.index_files, nginx's
// "index doku.php"), and its library directories answer 403 through a
// deny rule without a file being looked up or a script run, whatever
// follows in the path.
func TestIndexFilesAndDeny(t *testing.T) {
	t.Parallel()
	root, _ := newPHPSiteDir(t)
	writeFiles(t, root, map[string]string{
		"doku.php":          "<?php echo 'doku:' . $_SERVER['SCRIPT_NAME'];",
		"inc/init.php":      "<?php echo 'LIBRARY CODE RAN';",
		"conf/local.php":    "<?php $conf['secret'] = 'x';",
		"data/pages/a.txt":  "page text",
		"lib/exe/css.php":   "<?php echo 'css';",
		"manual/index.html": "<h1>manual</h1>",
	})
	f := fpmtest.Start(t, fpmtest.Options{Children: 2, DocRoot: root})
	s := startServer(t, fmt.Sprintf(`
[php]
document_root = %q
fpm_socket = %q
index_files = ["doku.php", "index.html"]
front_controller = ""

[backend]
default_backend = "fastcgi"

[[backend.routing_rules]]
pattern = { type = "regex", value = "^/(data|conf|bin|inc|vendor)/" }
backend = "deny"
priority = 100
`, root, f.Address), nil)

	resp, body := get(t, s, "/")
	wantStatus(t, resp, body, http.StatusOK)
	if string(body) != "doku:/doku.php" {
		t.Errorf("/: %q, want doku.php to run", body)
	}
	resp, body = get(t, s, "/manual/")
	wantStatus(t, resp, body, http.StatusOK)
	if string(body) != "<h1>manual</h1>" {
		t.Errorf("/manual/: %q, want its index.html", body)
	}
	resp, body = get(t, s, "/lib/exe/css.php")
	wantStatus(t, resp, body, http.StatusOK)
	for _, p := range []string{"/inc/init.php", "/inc/", "/conf/local.php", "/data/pages/a.txt", "/data/../inc/init.php", "/bin/nothing-here", "/vendor/x.php/y"} {
		resp, body := get(t, s, p)
		wantStatus(t, resp, body, http.StatusForbidden)
		if strings.Contains(string(body), "LIBRARY") {
			t.Errorf("%s: the script ran", p)
		}
	}
	waitFor(t, 5*time.Second, "the deny backend in the access log", func() bool {
		return strings.Contains(s.Stdout(), "uri=/inc/init.php") && strings.Contains(s.Stdout(), "backend=deny")
	})
}
