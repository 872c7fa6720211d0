//go:build fephp_bridge

package integration

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fe-php/fe-php/internal/testutil/fpmtest"
)

// limitsSite is fe-php with both PHP backends on a copy of testdata/php:
// embedded by default, fastcgi under /f/ (a copy of limits/ at root/f/)
// on a PHP-FPM of one child, so that every fastcgi request lands on the
// same FPM process. rules are more [[backend.routing_rules]].
func limitsSite(t *testing.T, phpKeys, rules string) *phpSite {
	t.Helper()
	root, state := newPHPSiteDir(t)
	if err := os.CopyFS(filepath.Join(root, "f"), os.DirFS(filepath.Join("testdata", "php", "limits"))); err != nil {
		t.Fatal(err)
	}
	f := fpmtest.Start(t, fpmtest.Options{Children: 1, DocRoot: root})
	cfg := fmt.Sprintf(`[php]
document_root = %q
fpm_socket = %q
worker_pool_size = 2
%s

[backend]
default_backend = "embedded"

[backend.connection_pool]
max_size = 1

[[backend.routing_rules]]
pattern = { type = "prefix", value = "/f/" }
backend = "fastcgi"

%s
`, root, f.Address, phpKeys, rules)
	s := startServer(t, cfg, nil)
	return &phpSite{Server: s, Root: root, State: state}
}

// iniView is what testdata/php/limits/ini.php reports.
type iniView struct {
	UploadMaxFilesize string `json:"upload_max_filesize"`
	MemoryLimit       string `json:"memory_limit"`
	ErrorReporting    string `json:"error_reporting"`
	MaxInputVars      string `json:"max_input_vars"`
	GCMaxLifetime     string `json:"session.gc_maxlifetime"`
	IniSetMemoryLimit bool   `json:"ini_set_memory_limit"`
	IniSetGCLifetime  bool   `json:"ini_set_gc_maxlifetime"`
}

func getINI(t *testing.T, s *phpSite, path string) iniView {
	t.Helper()
	resp, body := get(t, s.Server, path)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s\n%s", path, describe(resp), trunc(body))
	}
	var v iniView
	decodeJSON(t, resp, body, &v)
	return v
}

// A rule's php_ini and php_admin_ini apply to the requests it routes, on
// both PHP backends alike (constants in values included), a script cannot
// change an admin value, and no other request sees them: not on embedded
// (PHP restores them after the request), and not on fastcgi either, where
// PHP-FPM would keep a PHP_VALUE in the child for its next requests.
func TestPerRulePHPSettings(t *testing.T) {
	t.Parallel()
	const settings = `php_ini = { upload_max_filesize = "96M", error_reporting = "E_ALL & ~E_NOTICE", "session.gc_maxlifetime" = "777" }
php_admin_ini = { memory_limit = "300M" }`
	s := limitsSite(t, "", fmt.Sprintf(`[[backend.routing_rules]]
pattern = { type = "exact", value = "/limits/ini-tuned.php" }
backend = "embedded"
priority = 10
%s

[[backend.routing_rules]]
pattern = { type = "exact", value = "/f/ini-tuned.php" }
backend = "fastcgi"
priority = 10
%s
`, settings, settings))
	for _, dir := range []string{"limits", "f"} {
		b, err := os.ReadFile(filepath.Join(s.Root, dir, "ini.php"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(s.Root, dir, "ini-tuned.php"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	plainE, plainF := getINI(t, s, "/limits/ini.php"), getINI(t, s, "/f/ini.php")
	for _, path := range []string{"/limits/ini-tuned.php", "/f/ini-tuned.php"} {
		got := getINI(t, s, path)
		want := iniView{UploadMaxFilesize: "96M", MemoryLimit: "300M", ErrorReporting: fmt.Sprint(32767 &^ 8),
			MaxInputVars: plainE.MaxInputVars, GCMaxLifetime: "777", IniSetMemoryLimit: false, IniSetGCLifetime: true}
		if got != want {
			t.Errorf("GET %s: PHP sees %+v, want %+v", path, got, want)
		}
	}
	// Again, after the tuned requests: the same PHP thread pool and the one
	// FPM child served them. (memory_limit stays locked against ini_set()
	// in that FPM child: FPM's PHP_ADMIN_VALUE does that, see
	// docs/configuration.md; the value itself is reset.)
	for i := range 3 {
		if got := getINI(t, s, "/limits/ini.php"); got != plainE {
			t.Errorf("round %d: embedded request without settings saw %+v, before %+v", i, got, plainE)
		}
		got := getINI(t, s, "/f/ini.php")
		got.IniSetMemoryLimit = plainF.IniSetMemoryLimit
		if got != plainF {
			t.Errorf("round %d: fastcgi request without settings saw %+v, before %+v: a rule's PHP_VALUE leaked", i, got, plainF)
		}
		getINI(t, s, "/limits/ini-tuned.php")
		getINI(t, s, "/f/ini-tuned.php")
	}
	if plainF.UploadMaxFilesize != "2M" || plainF.MemoryLimit != "128M" {
		t.Errorf("fastcgi without settings: upload_max_filesize %q, memory_limit %q: want the production php.ini's 2M and 128M, which fe-php sends so that a rule's values do not leak",
			plainF.UploadMaxFilesize, plainF.MemoryLimit)
	}
}

// A php_ini key PHP does not allow per directory, an unknown key and
// php_ini on a static rule are refused by "check", each with its line.
func TestPerRulePHPSettingsRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "fe-php.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`[php]
document_root = %q
[backend]
default_backend = "fastcgi"
[[backend.routing_rules]]
pattern = { type = "prefix", value = "/a/" }
backend = "fastcgi"
php_ini = { allow_url_fopen = "0" }
[[backend.routing_rules]]
pattern = { type = "prefix", value = "/b/" }
backend = "embedded"
php_admin_ini = { memry_limit = "1G", disable_functions = "exec" }
[[backend.routing_rules]]
pattern = { type = "prefix", value = "/c/" }
backend = "static"
php_ini = { memory_limit = "1G" }
`, dir)), 0o644)
	_, stderr, code := runCLI(t, dir, "check", "-c", cfg)
	if code == 0 {
		t.Fatalf("check accepted the config:\n%s", stderr)
	}
	for _, want := range []string{
		`fe-php.toml:8: backend.routing_rules[0].php_ini.allow_url_fopen: allow_url_fopen can only be set in php.ini or by an administrator: move it to php_admin_ini`,
		`backend.routing_rules[1].php_admin_ini.memry_limit: "memry_limit" is not a setting of this PHP`,
		`(did you mean "memory_limit"?)`,
		`backend.routing_rules[1].php_admin_ini.disable_functions: disable_functions takes effect only when PHP starts`,
		`backend.routing_rules[2].php_ini: is set, but the rule's backend "static" runs no PHP`,
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("check's errors lack %q:\n%s", want, stderr)
		}
	}
}

// max_execution_time counts CPU time on both backends, as PHP-FPM does: a
// script sleeping past it finishes, one computing past it is stopped.
func TestMaxExecutionTimeIsCPUTime(t *testing.T) {
	t.Parallel()
	s := limitsSite(t, "", "")
	for _, prefix := range []string{"/limits/", "/f/"} {
		resp, body := get(t, s.Server, prefix+"sleep.php?s=2&limit=1")
		if resp.StatusCode != 200 || string(body) != "slept 2\n" {
			t.Errorf("%ssleep.php: 2 s asleep under a 1 s max_execution_time: %s %q, want 200 \"slept 2\"", prefix, describe(resp), body)
		}
		resp, body = get(t, s.Server, prefix+"busy.php?s=10&limit=1")
		if resp.StatusCode != 500 || strings.Contains(string(body), "busy done") {
			t.Errorf("%sbusy.php: 10 s of CPU under a 1 s max_execution_time: %s %q, want PHP's 500", prefix, describe(resp), body)
		}
	}
	// FPM's line arrives on FCGI_STDERR with the response: wait for it.
	waitFor(t, 5*time.Second, "a max_execution_time error logged per backend", func() bool {
		return strings.Count(s.Stderr(), "Maximum execution time of 1 second exceeded") == 2
	})
}

// request_terminate_timeout bounds a request's wall-clock time on both
// backends: a script asleep past it gets the client a 504; on embedded
// the script is interrupted (its shutdown functions run) and its PHP
// thread serves the next request; on fastcgi the FastCGI request is
// aborted.
func TestRequestTerminateTimeout(t *testing.T) {
	t.Parallel()
	s := limitsSite(t, `request_terminate_timeout = "1s"`, "")
	client := &http.Client{Timeout: 30 * time.Second}
	for _, c := range []struct{ prefix, log string }{
		{"/limits/", "interrupting the script"},
		{"/f/", "FastCGI request aborted"},
	} {
		req := newRequest(t, s.Server, "GET", c.prefix+"sleep.php?s=10", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%ssleep.php: %v", c.prefix, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusGatewayTimeout {
			t.Errorf("%ssleep.php?s=10 under request_terminate_timeout = 1s: %s, want 504", c.prefix, describe(resp))
		}
		id := resp.Header.Get("X-Request-Id")
		waitFor(t, 5*time.Second, "the log line of "+c.prefix, func() bool {
			return logLineWith(s.Stderr(), c.log, id) != ""
		})
	}
	waitFor(t, 5*time.Second, "the interrupted script's shutdown function", func() bool {
		return strings.Contains(s.Stderr(), "limits: shutdown function ran")
	})
	// Both threads of the embedded pool serve again (the interrupted
	// thread's context is recycled when that thread next runs PHP).
	for i := range 4 {
		resp, body := get(t, s.Server, "/limits/sleep.php?s=0")
		if resp.StatusCode != 200 || string(body) != "slept 0\n" {
			t.Fatalf("request %d after the interrupted one: %s %q", i, describe(resp), body)
		}
	}
}

// request_slowlog_timeout (a rule's here) logs the PHP backtrace of an
// embedded request still running, with its id, script and URI, while it
// runs; the request itself goes on undisturbed.
func TestSlowlog(t *testing.T) {
	t.Parallel()
	s := limitsSite(t, "", `[[backend.routing_rules]]
pattern = { type = "prefix", value = "/limits/" }
backend = "embedded"
request_slowlog_timeout = "500ms"
`)
	resp, body := get(t, s.Server, "/limits/sleep.php?s=2")
	if resp.StatusCode != 200 || string(body) != "slept 2\n" {
		t.Fatalf("sleep.php: %s %q: the slowlog must not disturb the script", describe(resp), body)
	}
	id := resp.Header.Get("X-Request-Id")
	var line string
	waitFor(t, 5*time.Second, "the slowlog line of request "+id, func() bool {
		line = logLineWith(s.Stderr(), "php: slow request", id)
		return line != ""
	})
	script := filepath.Join(s.Root, "limits", "sleep.php")
	wantTrace := regexp.QuoteMeta(`backtrace="sleep()\nwait_for() `+script+`:6\n{main} `+script+`:`) + `\d+\\n"`
	for _, want := range []string{`uri="/limits/sleep.php\?s=2"`, `script=` + regexp.QuoteMeta(script), wantTrace} {
		if !regexp.MustCompile(want).MatchString(line) {
			t.Errorf("slowlog line lacks %s:\n%s", want, line)
		}
	}
	// A quick request is not logged.
	resp, _ = get(t, s.Server, "/limits/sleep.php?s=0")
	if line := logLineWith(s.Stderr(), "php: slow request", resp.Header.Get("X-Request-Id")); line != "" {
		t.Errorf("a quick request was slowlogged: %s", line)
	}
}

// The slowlog of a deep stack of long names: the backtrace is cut at the
// buffer's end, never written past it (a crash found by review).
func TestSlowlogDeepLongNames(t *testing.T) {
	t.Parallel()
	s := limitsSite(t, `request_slowlog_timeout = "300ms"`, "")
	resp, body := get(t, s.Server, "/limits/deep.php?d=60&s=1")
	if resp.StatusCode != 200 || string(body) != "deep done\n" {
		t.Fatalf("deep.php: %s %q", describe(resp), body)
	}
	var line string
	waitFor(t, 5*time.Second, "the slowlog line", func() bool {
		line = logLineWith(s.Stderr(), "php: slow request", resp.Header.Get("X-Request-Id"))
		return line != ""
	})
	if !strings.Contains(line, "sleep()") || !strings.Contains(line, "::f"+strings.Repeat("y", 249)+"()") {
		t.Errorf("slowlog line of the deep stack:\n%s", trunc([]byte(line)))
	}
}

// request_terminate_timeout with a script waiting on a socket that never
// answers: the one signal does not end PHP's wait (it polls again), so
// the script stops at its own socket timeout, and the request is not held
// beyond it (one signal a second kept it waiting for ever).
func TestRequestTerminateTimeoutSocketRead(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, silent, until the test ends
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	s := limitsSite(t, `request_terminate_timeout = "1s"`, "")
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(newRequest(t, s.Server, "GET", "/limits/socket.php?timeout=3&port="+port, nil))
	if err != nil {
		t.Fatalf("socket.php under request_terminate_timeout: %v (the request was held past the socket's own timeout)", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("socket.php: %s, want 504", describe(resp))
	}
}

// directives.json, the table "check" validates php_ini against, is the
// ZTS build's: regenerated, it is unchanged.
func TestPHPDirectivesTableIsCurrent(t *testing.T) {
	t.Parallel()
	embRequireBridge(t)
	dir := filepath.Join(repoRoot(t), "internal", "phpini")
	out, err := exec.Command("/usr/local/php-zts-embed/bin/php", "-d", "zend_extension=opcache",
		filepath.Join(dir, "gen.php")).Output()
	if err != nil {
		t.Fatalf("gen.php: %v", err)
	}
	want, err := os.ReadFile(filepath.Join(dir, "directives.json"))
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != string(want) {
		var a, b map[string]any
		json.Unmarshal(out, &a)
		json.Unmarshal(want, &b)
		for k, v := range a {
			if fmt.Sprint(b[k]) != fmt.Sprint(v) {
				t.Errorf("%s: build says %v, directives.json %v", k, v, b[k])
			}
		}
		for k := range b {
			if _, ok := a[k]; !ok {
				t.Errorf("%s: in directives.json, not in the build", k)
			}
		}
		t.Errorf("internal/phpini/directives.json is stale: run go generate ./internal/phpini")
	}
}
