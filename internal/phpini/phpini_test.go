package phpini

import (
	"errors"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		name, value string
		admin       bool
		want        string // "" = accepted
	}{
		{"upload_max_filesize", "64M", false, ""},            // PHP_INI_PERDIR
		{"memory_limit", "1G", false, ""},                    // PHP_INI_ALL
		{"allow_url_fopen", "0", false, "php_admin_ini"},     // PHP_INI_SYSTEM
		{"sqlite3.defensive", "0", false, "set by a script"}, // PHP_INI_USER only
		{"sqlite3.defensive", "0", true, ""},
		{"disable_functions", "exec", true, "only when PHP starts"},
		{"open_basedir", "/srv", true, ""},
		{"opcache.enable", "0", false, ""},
		{"extension", "redis", true, "cannot be loaded per request"},
		{"memory_limit", "1G\nauto_prepend_file=/x", true, "NUL, CR or LF"},
		{"no_such_directive", "1", true, "not a setting of this PHP"},
	} {
		err := Check(c.name, c.value, c.admin)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("Check(%q, %q, admin=%v) = %v, want nil", c.name, c.value, c.admin, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("Check(%q, %q, admin=%v) = %v, want an error with %q", c.name, c.value, c.admin, err, c.want)
		}
	}
	if !errors.Is(Check("no_such_directive", "", false), ErrUnknown) {
		t.Error("an unknown directive's error is not ErrUnknown")
	}
}

func TestText(t *testing.T) {
	got := Text(map[string]string{"memory_limit": "1G", "error_reporting": "E_ALL & ~E_NOTICE"})
	if want := "error_reporting=E_ALL & ~E_NOTICE\nmemory_limit=1G\n"; got != want {
		t.Errorf("Text = %q, want %q", got, want)
	}
	if Text(nil) != "" {
		t.Error("Text(nil) is not empty")
	}
}

func TestProductionValues(t *testing.T) {
	// Debian's php.ini-production, as a web SAPI reads it.
	for name, want := range map[string]string{"memory_limit": "128M", "upload_max_filesize": "2M", "max_execution_time": "30", "output_buffering": "4096", "display_errors": "", "html_errors": "1"} {
		if d, ok := Lookup(name); !ok || d.Production != want {
			t.Errorf("%s: production value %q (known %v), want %q", name, d.Production, ok, want)
		}
	}
}

func TestValue(t *testing.T) {
	for in, want := range map[string]string{
		"64M":                                "64M",
		"-1":                                 "-1",
		"E_ALL & ~E_NOTICE":                  "E_ALL & ~E_NOTICE",
		"E_ALL & ~(E_NOTICE | E_DEPRECATED)": "E_ALL & ~(E_NOTICE | E_DEPRECATED)",
		"32767":                              "32767",
		"On":                                 `"On"`,
		"None":                               `"None"`,
		"PHP_VERSION":                        `"PHP_VERSION"`,
		"ALERT!":                             `"ALERT!"`,
		"&amp;":                              `"&amp;"`,
		"A|B":                                `"A|B"`,
		"/var/lib/php/sessions":              `"/var/lib/php/sessions"`,
		"tcp://127.0.0.1:6379?timeout=2.5&prefix=s:": `"tcp://127.0.0.1:6379?timeout=2.5&prefix=s:"`,
		`a"b\c$d`:  `"a\"b\\c\$d"`,
		"":         `""`,
		" padded ": `" padded "`,
		"a;b":      `"a;b"`,
	} {
		if got := Value(in); got != want {
			t.Errorf("Value(%q) = %s, want %s", in, got, want)
		}
	}
}
