package static

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// backupNames are copies of PHP sources that editors, deploy tools and
// people leave next to them; each holds the source and is never served.
var backupNames = []string{
	"config.php~", "config.php.bak", "config.php.old", "config.php.orig", "config.php.save",
	"config.php.swp", "config.php.swo", ".config.php.swp", "#config.php#", "config.php.dist",
	"config.php.tmp", "config.php.1", "config.php-", "config.php.", "config.php..", "config.php ",
	"CONFIG.PHP.BAK", "config.PhP.old", "wp-config.php.2024-01-31", "config.php_old",
	"config.php,v", "lib.inc.bak", "page.php5~", "view.phtml.orig", "app.phar.bak", "x.pht.swp",
	"sub/settings.inc.php.bak",
}

// notBackups look alike but are not PHP sources: they are served.
var notBackups = []string{
	"php.png", "phpinfo.html", "php-guide.pdf", "my.phpstorm.xml", "a.phpx", "x.php5x.txt",
	"include.js", "lib.incl", "phar.txt", "notes.php5ish", "config-php.bak", "config_php.txt",
	"sub/php/readme.txt",
}

func TestBackupNamesNotServed(t *testing.T) {
	root := t.TempDir()
	for _, name := range append(backupNames, notBackups...) {
		p := filepath.Join(root, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("<?php // "+name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, fallback := range []bool{false, true} {
		h, err := New(Options{Root: root, IndexFiles: []string{"index.html"}, Fallback: fallback})
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range backupNames {
			if code, body := getPath(h, "/"+name); code != http.StatusNotFound {
				t.Errorf("fallback %v: GET /%s: %d %q, want 404", fallback, name, code, body)
			}
		}
		for _, name := range notBackups {
			if code, body := getPath(h, "/"+name); code != http.StatusOK {
				t.Errorf("fallback %v: GET /%s: %d %q, want 200", fallback, name, code, body)
			}
		}
		h.Close()
	}
}

// getPath is getBody for a path that is not valid in a request line
// ("#", a space): the server decodes those from %23 and %20.
func getPath(h http.Handler, p string) (int, string) {
	r := httptest.NewRequest("GET", "/", nil)
	r.URL.Path = p
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

func TestIsPHPBackup(t *testing.T) {
	for _, c := range []struct {
		name string
		want bool
	}{
		{"config.php~", true},
		{"config.php.bak", true},
		{"config.php.old", true},
		{"config.php.orig", true},
		{"config.php.save", true},
		{"config.php.swp", true},
		{"config.php.swo", true},
		{".config.php.swp", true}, // a dotfile too
		{"#config.php#", true},
		{"config.php.dist", true},
		{"config.php.tmp", true},
		{"config.php.1", true},
		{"config.php-", true},
		{"config.php.", true},
		{"config.php ", true},
		{"config.php_old", true},
		{"config.php.2024-01-31", true},
		{"config.php.gz", true},
		{"CONFIG.PHP.BAK", true},
		{"Config.PhP~", true},
		{"a.b.php.c", true},
		{"lib.inc.bak", true},
		{"page.php5~", true},
		{"page.php8.old", true},
		{"view.phtml.orig", true},
		{"app.phar.bak", true},
		{"x.pht.swp", true},
		{"x.phps.txt", true},
		{"index.php.html", true}, // wget -E's name for a saved page: refused all the same
		{"footer.inc.html", true},

		{"config.php", false}, // PHP source: IsPHPSource's business
		{"config.PHP", false},
		{"php.png", false},
		{"phpinfo.html", false},
		{"php-guide.pdf", false},
		{"my.phpstorm.xml", false},
		{"a.phpx", false},
		{"x.php5x.txt", false},
		{"x.incl", false},
		{"include.js", false},
		{"data.include.js", false},
		{"config-php.bak", false},
		{"config_php.txt", false},
		{"phar", false},
		{".php", false},
		{"..php", false},
		{"", false},
		{".", false},
		{"#notes.txt#", false},
		{"style.css~", false},
		{"app.js.map", false},
	} {
		if got := isPHPBackup(c.name); got != c.want {
			t.Errorf("isPHPBackup(%q) = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestUnshared(t *testing.T) {
	for _, c := range []struct{ p, dir, want string }{
		{"/srv/www/a.css", "/srv/www", "/a.css"},
		{"/srv/www/sub/.env", "/srv/www", "/sub/.env"},
		{"/srv/www", "/srv/www", ""},
		{"/srv/www2/a.css", "/srv/www", "/www2/a.css"}, // a sibling sharing a prefix of the name only
		{"/srv/outside/secret.php", "/srv/www", "/outside/secret.php"},
		{"/var/lib/wordpress/wp-content/a.png", "/srv/wordpress-static", "var/lib/wordpress/wp-content/a.png"},
		{"/home/u/.sites/shared/a.png", "/home/u/.sites/current/public", "/shared/a.png"},
		{"/a.css", "/", "a.css"},
	} {
		if got := unshared(c.p, c.dir); got != c.want {
			t.Errorf("unshared(%q, %q) = %q, want %q", c.p, c.dir, got, c.want)
		}
	}
}
