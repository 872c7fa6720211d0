package integration

// The embedded backend end to end: a real fe-php with
// default_backend = "embedded" loading the ZTS libphp, serving the scripts
// of testdata/embedded over real HTTP. Each test starts its own fe-php
// (PHP starts once per process, so every process is independent).
//
// Run with the bridge: go test -tags fephp_bridge ./tests/integration/
// (without the tag the binary has no PHP bridge and these tests skip).
//
// No assertion is a timing threshold: overlaps, "before" and "after" are
// proven with timestamps taken by the scripts themselves and with marker
// files that scripts leave in the state directory beside the document root.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fe-php/fe-php/internal/testutil/fpmtest"
)

// embSite is fe-php serving a copy of testdata/embedded with the embedded
// backend.
type embSite struct {
	*Server
	dir   string // holds root/, state/ and the extra files
	root  string // the document root
	state string // where scripts leave marker files (_state.inc)
}

// embOpts configures embStart.
type embOpts struct {
	php     string            // keys added to [php]
	tables  string            // tables after [php] ([php.ini], [php.opcache], ...)
	backend string            // keys added to [backend], then tables after it
	files   map[string]string // extra files, relative to the site dir (see writeFiles)
	// unlimitedStack starts fe-php under "ulimit -s unlimited".
	unlimitedStack bool
}

// embRequireBridge skips when the binary under test has no PHP bridge.
func embRequireBridge(t *testing.T) {
	t.Helper()
	if buildTags != "fephp_bridge" {
		t.Skip("the embedded backend needs the PHP bridge: go test -tags fephp_bridge (after make bridge)")
	}
}

// embPrepare makes a site dir: root/ is a copy of testdata/embedded,
// state/ is empty, files are written beside them.
func embPrepare(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, "root"), os.DirFS(filepath.Join("testdata", "embedded"))); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "state"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, files)
	return dir
}

// embConfig is the configuration embStart runs, {{dir}} and {{root}} not
// yet expanded.
func embConfig(o embOpts) string {
	return fmt.Sprintf(`[php]
document_root = "{{root}}"
front_controller = ""
%s

%s

[backend]
default_backend = "embedded"
%s
`, o.php, o.tables, o.backend)
}

// embStart prepares a site and starts fe-php on it.
func embStart(t *testing.T, o embOpts) *embSite {
	t.Helper()
	embRequireBridge(t)
	return embStartIn(t, embPrepare(t, o.files), o)
}

// embStartIn starts fe-php on a site dir made by embPrepare.
func embStartIn(t *testing.T, dir string, o embOpts) *embSite {
	t.Helper()
	cfg := expand(embConfig(o), dir)
	var s *Server
	if o.unlimitedStack {
		s = embStartWrapped(t, cfg)
	} else {
		s = startServer(t, cfg, nil)
	}
	return &embSite{Server: s, dir: dir, root: filepath.Join(dir, "root"), state: filepath.Join(dir, "state")}
}

// embStartWrapped is startServer, but fe-php runs under
// "ulimit -s unlimited" (bash execs it, so the pid is fe-php's).
func embStartWrapped(t *testing.T, configTOML string) *Server {
	t.Helper()
	return startServerCmd(t, configTOML, nil, func(config string) *exec.Cmd {
		return exec.Command("bash", "-c", `ulimit -s unlimited && exec "$0" run -c "$1"`, binary, config)
	})
}

// alive fails the test unless the process is still running and serves a
// normal request on a PHP thread.
func (s *embSite) alive(t *testing.T) {
	t.Helper()
	select {
	case <-s.Done():
		t.Fatalf("fe-php died (exit code %d)\nstderr:\n%s", s.ExitCode(), tail(s.Stderr(), 3000))
	default:
	}
	resp, body := get(t, s.Server, "/ok.php")
	wantStatus(t, resp, body, http.StatusOK)
	if string(body) != "ok" {
		t.Fatalf("GET /ok.php: body %q, want %q", body, "ok")
	}
}

// marker returns the content of state/name, "" if it does not exist.
func (s *embSite) marker(name string) string {
	b, err := os.ReadFile(filepath.Join(s.state, name))
	if err != nil {
		return ""
	}
	return string(b)
}

// waitMarker waits until state/name exists.
func (s *embSite) waitMarker(t *testing.T, name string) {
	t.Helper()
	waitFor(t, 10*time.Second, "state/"+name, func() bool { return s.marker(name) != "" })
}

// embJSON GETs path, wants 200 and decodes the JSON body into v.
func embJSON(t *testing.T, s *embSite, path string, v any, headers ...string) *http.Response {
	t.Helper()
	resp, body := get(t, s.Server, path, headers...)
	wantStatus(t, resp, body, http.StatusOK)
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: body is not JSON: %v\n%s", path, err, trunc(body))
	}
	return resp
}

// logLineWith returns the first line of the log containing every one of subs.
func logLineWith(log string, subs ...string) string {
lines:
	for _, line := range strings.Split(log, "\n") {
		for _, sub := range subs {
			if !strings.Contains(line, sub) {
				continue lines
			}
		}
		return line
	}
	return ""
}

// 1. OPcache is really on, under fe-php's own SAPI name, in a ZTS PHP; and
// [php.opcache] enable = false really turns it off.
func TestEmbeddedOpcache(t *testing.T) {
	t.Parallel()
	type info struct {
		Loaded  bool   `json:"opcache_loaded"`
		Enabled bool   `json:"opcache_enabled"`
		Cached  bool   `json:"cached"`
		SAPI    string `json:"php_sapi_name"`
		Const   string `json:"PHP_SAPI"`
		ZTS     int    `json:"PHP_ZTS"`
	}
	t.Run("on", func(t *testing.T) {
		t.Parallel()
		// file_update_protection: the scripts were written a moment ago,
		// and OPcache does not cache files younger than that (2 s).
		s := embStart(t, embOpts{php: "worker_pool_size = 2", tables: "[php.ini]\n\"opcache.file_update_protection\" = \"0\"\n"})
		var first, second info
		embJSON(t, s, "/info.php", &first)
		embJSON(t, s, "/info.php", &second)
		if !first.Loaded || !first.Enabled {
			t.Errorf("opcache loaded %v, opcache_get_status()['opcache_enabled'] %v; want both true", first.Loaded, first.Enabled)
		}
		if !second.Cached {
			t.Errorf("opcache_is_script_cached(__FILE__) is false on the second request: OPcache does not cache")
		}
		if first.SAPI != "fe-php" || first.Const != "fe-php" {
			t.Errorf("php_sapi_name() %q, PHP_SAPI %q; want both %q", first.SAPI, first.Const, "fe-php")
		}
		if first.ZTS != 1 {
			t.Errorf("PHP_ZTS = %d, want 1", first.ZTS)
		}
	})
	t.Run("off", func(t *testing.T) {
		t.Parallel()
		s := embStart(t, embOpts{php: "worker_pool_size = 2", tables: "[php.opcache]\nenable = false\n"})
		var got info
		embJSON(t, s, "/info.php", &got)
		if got.Loaded || got.Enabled {
			t.Errorf("with [php.opcache] enable = false: opcache loaded %v, enabled %v; want both false", got.Loaded, got.Enabled)
		}
		if got.SAPI != "fe-php" || got.Const != "fe-php" {
			t.Errorf("php_sapi_name() %q, PHP_SAPI %q; want both %q", got.SAPI, got.Const, "fe-php")
		}
	})
}

// 2a. worker_pool_size = 4 runs four requests at once.
func TestEmbeddedParallel(t *testing.T) {
	t.Parallel()
	s := embStart(t, embOpts{php: "worker_pool_size = 4"})
	type span struct{ Start, End float64 }
	spans := make([]span, 4)
	var wg sync.WaitGroup
	for i := range spans {
		wg.Go(func() {
			resp, body := get(t, s.Server, "/overlap.php")
			if resp.StatusCode != http.StatusOK {
				t.Errorf("request %d: status %d: %s", i, resp.StatusCode, trunc(body))
				return
			}
			if err := json.Unmarshal(body, &spans[i]); err != nil {
				t.Errorf("request %d: %v: %s", i, err, trunc(body))
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	lastStart, firstEnd := spans[0].Start, spans[0].End
	for _, sp := range spans {
		lastStart = max(lastStart, sp.Start)
		firstEnd = min(firstEnd, sp.End)
	}
	if lastStart >= firstEnd {
		t.Errorf("the four requests did not all run at once: the last one started at %.3f, after the first one ended at %.3f (%+v)",
			lastStart, firstEnd, spans)
	}
}

// 2b. With the only PHP thread busy, a request waits wait_timeout and gets
// a 503; the busy one completes.
func TestEmbeddedPoolFull(t *testing.T) {
	t.Parallel()
	// One worker process: the test fills its one PHP thread.
	s := embStart(t, embOpts{php: "worker_pool_size = 1\nwait_timeout = \"1s\"", tables: "[server]\nworkers = 1\n"})
	type result struct {
		resp *http.Response
		body []byte
	}
	held := make(chan result, 1)
	go func() {
		resp, body := get(t, s.Server, "/hold.php?s=3&id=pool")
		held <- result{resp, body}
	}()
	s.waitMarker(t, "hold-pool") // the slot is taken
	resp, body := get(t, s.Server, "/ok.php")
	wantStatus(t, resp, body, http.StatusServiceUnavailable)
	if resp.Header.Get("Retry-After") == "" {
		t.Errorf("503 without Retry-After")
	}
	select {
	case r := <-held:
		t.Fatalf("the holding request ended (%d %q) before the 503: the test proves nothing", r.resp.StatusCode, r.body)
	default:
	}
	r := <-held
	wantStatus(t, r.resp, r.body, http.StatusOK)
	if string(r.body) != "held pool slept=0" {
		t.Errorf("holding request: body %q", r.body)
	}
	waitFor(t, 5*time.Second, "the log line saying why the request got a 503", func() bool {
		return logLineWith(s.Stderr(), "no free PHP worker") != ""
	})
	s.alive(t)
}

// leakState is leak.php's answer: what the request saw of earlier ones.
type leakState struct {
	Global     int    `json:"global"`
	StaticVar  int    `json:"static_var"`
	StaticProp int    `json:"static_prop"`
	Constant   bool   `json:"constant"`
	Function   bool   `json:"function"`
	INI        string `json:"ini"`
	Env        any    `json:"env"`
	SAPI       string `json:"sapi"`
}

var cleanState = leakState{Global: 1, StaticVar: 1, StaticProp: 1, INI: "14", Env: false, SAPI: "fe-php fe-php"}

// 3a. worker_max_requests = 2: 30 requests succeed, and the log shows
// the PHP thread contexts being recycled.
func TestEmbeddedRecycling(t *testing.T) {
	t.Parallel()
	s := embStart(t, embOpts{php: "worker_pool_size = 2\nworker_max_requests = 2"})
	for i := range 30 {
		var st leakState
		embJSON(t, s, fmt.Sprintf("/leak.php?i=%d", i), &st)
		if st != cleanState {
			t.Fatalf("request %d saw state of an earlier one: %+v, want %+v", i, st, cleanState)
		}
	}
	waitFor(t, 5*time.Second, "a log line saying a PHP thread context was recycled", func() bool {
		return logLineWith(s.Stderr(), "level=INFO", "recycled") != ""
	})
	s.alive(t)
}

// 3a. max_execution_time keeps working on threads that serve request after
// request and are recycled, and no POSIX timer leaks: fe-php's PHP build
// (scripts/php-patches) keeps one timer per PHP thread context instead of
// making one per request, and deletes it with the context.
func TestEmbeddedTimerPerThread(t *testing.T) {
	t.Parallel()
	s := embStart(t, embOpts{php: "worker_pool_size = 2\nworker_max_requests = 3", tables: "[php.ini]\nmax_execution_time = \"1\"\n"})
	// Each thread with a PHP context has one timer that signals it; a
	// context recycled without deleting its timer would leave a second
	// one aimed at the same thread.
	timerTargets := regexp.MustCompile(`notify: signal/tid\.(\d+)`)
	checkTimers := func(round int) {
		timers := 0
		for _, pid := range s.WorkerPIDs(t) { // PHP runs in the workers
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/timers", pid))
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for _, m := range timerTargets.FindAllStringSubmatch(string(b), -1) {
				timers++
				if seen[m[1]] {
					t.Errorf("round %d: thread %s has two POSIX timers: a recycled PHP context leaked its timer\n%s", round, m[1], b)
				}
				seen[m[1]] = true
			}
		}
		if timers == 0 {
			t.Errorf("round %d: no PHP thread has a max_execution_time timer", round)
		}
	}
	for round := range 3 {
		for i := range 20 {
			resp, body := get(t, s.Server, "/ok.php")
			if resp.StatusCode != 200 || string(body) != "ok" {
				t.Fatalf("round %d, request %d: %s %q", round, i, describe(resp), body)
			}
		}
		checkTimers(round)
		resp, body := get(t, s.Server, "/busy.php")
		if resp.StatusCode != 500 || string(body) != "before the loop\n" {
			t.Errorf("round %d: busy.php: %s %q, want the 500 of max_execution_time", round, describe(resp), body)
		}
	}
	// fe-php's stderr reaches the test through a pipe: wait for the lines.
	waitFor(t, 5*time.Second, "3 max_execution_time errors logged", func() bool {
		return strings.Count(s.Stderr(), "Maximum execution time of 1 second exceeded") == 3
	})
	s.alive(t)
}

// 3a'. The bridge keeps PHP's max_input_time at -1 while a request runs
// (the body is in before PHP starts; one timer_settime less): scripts
// still see the configured value (PERDIR: ini_set cannot change it, as
// under FPM), and max_execution_time still ends a POST.
func TestEmbeddedMaxInputTime(t *testing.T) {
	t.Parallel()
	s := embStart(t, embOpts{
		php:    "worker_pool_size = 1",
		tables: "[php.ini]\nmax_execution_time = \"1\"\nmax_input_time = \"5\"\n",
		files: map[string]string{"root/mit.php": `<?php echo ini_get('max_input_time'), ' ', ini_get('max_execution_time');
if (isset($_GET['set'])) { ini_set('max_input_time', '9'); echo ' ', ini_get('max_input_time'); }`},
	})
	for _, c := range []struct{ path, want string }{
		{"/mit.php", "5 1"},
		{"/mit.php?set=1", "5 1 5"},
		{"/mit.php", "5 1"},
	} {
		resp, body := get(t, s.Server, c.path)
		if resp.StatusCode != 200 || string(body) != c.want {
			t.Errorf("%s: %s %q, want %q", c.path, describe(resp), body, c.want)
		}
	}
	req := newRequest(t, s.Server, http.MethodPost, "/busy.php", strings.NewReader("a=b"), "Content-Type: application/x-www-form-urlencoded")
	resp, body := clientDo(t, client, req, false)
	if resp.StatusCode != 500 || string(body) != "before the loop\n" {
		t.Errorf("POST busy.php: %s %q, want the 500 of max_execution_time", describe(resp), body)
	}
	s.alive(t)
}

// 3b. Nothing a script sets survives into the next request on the same
// PHP thread: globals, statics, constants, functions, ini_set(), putenv().
func TestEmbeddedStateDoesNotLeak(t *testing.T) {
	t.Parallel()
	s := embStart(t, embOpts{php: "worker_pool_size = 1\nworker_max_requests = 0"})
	for i := range 10 {
		var st leakState
		embJSON(t, s, "/leak.php", &st)
		if st != cleanState {
			t.Fatalf("request %d saw state of an earlier one: %+v, want %+v", i, st, cleanState)
		}
	}
	if line := logLineWith(s.Stderr(), "recycled"); line != "" {
		t.Errorf("worker_max_requests = 0 recycled a context: %s", line)
	}
}

// 4. Faults in scripts: each answers like PHP-FPM does and leaves the
// server alive with its only PHP thread reusable.
//
// The same scripts run through PHP-FPM (php8.2-fpm, the same ini values,
// output_buffering = 4096 as in php.ini-production and fe-php's defaults)
// on a /fpm/ route of the same fe-php, and the answers must agree. With
// display_errors off, PHP itself turns a fatal error into a 500 while no
// output has been sent; a memory-exhausted request's buffered output is
// discarded by PHP (empty 500) under both; exit() in a shutdown function
// keeps what was printed (200); sleeping past max_execution_time is no
// error under both (it counts CPU time).
func TestEmbeddedFaults(t *testing.T) {
	t.Parallel()
	embRequireBridge(t)
	dir := embPrepare(t, nil)
	if err := os.CopyFS(filepath.Join(dir, "root", "fpm"), os.DirFS(filepath.Join("testdata", "embedded"))); err != nil {
		t.Fatal(err)
	}
	ini := map[string]string{"memory_limit": "16M", "max_execution_time": "1"}
	f := fpmtest.Start(t, fpmtest.Options{Children: 1, DocRoot: filepath.Join(dir, "root"),
		ExtraINI: map[string]string{"memory_limit": "16M", "max_execution_time": "1", "output_buffering": "4096"}})
	var tables strings.Builder
	tables.WriteString("[php.ini]\n")
	for k, v := range ini {
		fmt.Fprintf(&tables, "%s = %q\n", k, v)
	}
	s := embStartIn(t, dir, embOpts{
		php:    fmt.Sprintf("worker_pool_size = 1\nfpm_socket = %q", f.Address),
		tables: tables.String(),
		backend: `[[backend.routing_rules]]
pattern = { type = "prefix", value = "/fpm/" }
backend = "fastcgi"
priority = 10
`,
	})
	cases := []struct {
		script     string
		status     int
		body       string // exact body; "" = empty
		logPattern string
		fpmStatus  int    // when PHP-FPM differs
		fpmBody    string // when PHP-FPM differs
	}{
		{"fatal.php", 500, "before the fatal error\n", `PHP Fatal error:  Uncaught Error: Call to undefined function undefined_function_for_test\(\)`, 0, ""},
		{"exception.php", 500, "before the exception\n", `PHP Fatal error:  Uncaught RuntimeException: uncaught for the test`, 0, ""},
		{"exit_in_shutdown.php", 200, "body before exit\nshutdown ran\n", ``, 0, ""},
		{"memory.php", 500, "", `PHP Fatal error:  Allowed memory size of 16777216 bytes exhausted`, 0, ""},
		{"busy.php", 500, "before the loop\n", `PHP Fatal error:  Maximum execution time of 1 second exceeded`, 0, ""},
		// max_execution_time counts CPU time on both: FPM's NTS PHP with
		// setitimer(ITIMER_PROF), the ZTS build with a per-thread CPU
		// clock (scripts/php-patches/0002): sleeping past it is no error.
		{"sleep_past_limit.php", 200, "before the sleep\nafter the sleep\n", ``, 0, ""},
	}
	for _, c := range cases {
		for _, prefix := range []string{"/", "/fpm/"} {
			status, want := c.status, c.body
			if prefix == "/fpm/" && c.fpmStatus != 0 {
				status, want = c.fpmStatus, c.fpmBody
			}
			resp, body := get(t, s.Server, prefix+c.script)
			if resp.StatusCode != status || string(body) != want {
				t.Errorf("GET %s%s: %d %q, want %d %q", prefix, c.script, resp.StatusCode, body, status, want)
			}
			if prefix == "/" && c.logPattern != "" {
				id := resp.Header.Get("X-Request-Id")
				re := regexp.MustCompile(`level=ERROR msg=php message="` + c.logPattern + `.*request_id=` + regexp.QuoteMeta(id))
				waitFor(t, 5*time.Second, "the log line of "+c.script, func() bool { return re.MatchString(s.Stderr()) })
			}
			// The server lives, and the one PHP thread serves the next request.
			s.alive(t)
		}
	}
}

// 5. Refusals: a libphp_path that cannot serve makes "check" and "run"
// fail at once, saying why.
func TestEmbeddedRefusals(t *testing.T) {
	t.Parallel()
	embRequireBridge(t)
	const nts = "/usr/lib/libphp8.2.so"
	if _, err := os.Stat(nts); err != nil {
		t.Fatalf("%s (Debian's NTS libphp) is missing: apt-get install libphp8.2-embed (scripts/deps.sh does)", nts)
	}
	notPHP, _ := filepath.Glob("/usr/lib/*-linux-gnu/libz.so.1")
	cases := []struct {
		name, path string
		want       []string // in stderr, case-insensitive
	}{
		{"missing", "/nonexistent/dir/libphp.so", []string{"/nonexistent/dir/libphp.so", "no such file"}},
		{"nts", nts, []string{nts, "non-thread-safe", "NTS", "ZTS"}},
		{"executable", "/bin/true", []string{"/bin/true", "cannot load", "libphp"}},
		{"directory", "/tmp", []string{"/tmp", "is a directory"}},
	}
	if len(notPHP) > 0 {
		cases = append(cases, struct {
			name, path string
			want       []string
		}{"other-library", notPHP[0], []string{notPHP[0], "is not libphp"}})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := embPrepare(t, nil)
			cfg := filepath.Join(dir, "fe-php.toml")
			text := withListen(expand(embConfig(embOpts{php: fmt.Sprintf("libphp_path = %q", c.path)}), dir), "127.0.0.1:0")
			if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, cmd := range []string{"check", "run"} {
				_, stderr, code := runCLI(t, dir, cmd, "-c", cfg)
				if code != 1 {
					t.Errorf("fe-php %s: exit code %d, want 1\nstderr:\n%s", cmd, code, stderr)
				}
				for _, w := range c.want {
					if !strings.Contains(strings.ToLower(stderr), strings.ToLower(w)) {
						t.Errorf("fe-php %s: stderr does not say %q:\n%s", cmd, w, stderr)
					}
				}
				if strings.Contains(stderr, "msg=serving") {
					t.Errorf("fe-php %s started serving", cmd)
				}
				if c.name == "other-library" && strings.Contains(stderr, "non-thread-safe") {
					t.Errorf("fe-php %s calls a library that is not PHP at all an NTS PHP:\n%s", cmd, stderr)
				}
			}
		})
	}
}

// 6. Under "ulimit -s unlimited" (where glibc gives new threads only
// 2 MiB), PHP still runs on fe-php's explicit stacks: a deep userland
// recursion works, and so does a deep C recursion (serialize() of a
// 10,000-level nested array needs more than 8 MiB of C stack).
func TestEmbeddedStack(t *testing.T) {
	t.Parallel()
	s := embStart(t, embOpts{php: "worker_pool_size = 2", tables: "[php.ini]\nmemory_limit = \"512M\"\n", unlimitedStack: true})
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", s.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`Max stack size\s+unlimited`).Match(limits) {
		t.Fatalf("fe-php does not run under ulimit -s unlimited:\n%s", limits)
	}
	resp, body := get(t, s.Server, "/recurse.php?n=50000")
	wantStatus(t, resp, body, http.StatusOK)
	if string(body) != "50000" {
		t.Errorf("f(50000) = %q, want 50000", body)
	}
	s.alive(t)
	resp, body = get(t, s.Server, "/serialize_deep.php?depth=10000")
	wantStatus(t, resp, body, http.StatusOK)
	if string(body) != "100006" {
		t.Errorf("strlen(serialize(10000-deep array)) = %q, want 100006", body)
	}
	s.alive(t)
}

// 7. A script writing to a socket whose peer has closed gets failed
// writes; SIGPIPE does not kill fe-php.
func TestEmbeddedSIGPIPE(t *testing.T) {
	t.Parallel()
	s := embStart(t, embOpts{php: "worker_pool_size = 2"})
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
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	resp, body := get(t, s.Server, fmt.Sprintf("/sigpipe.php?port=%d", port))
	wantStatus(t, resp, body, http.StatusOK)
	m := regexp.MustCompile(`^written=(\d+) failed=(\d+)$`).FindStringSubmatch(string(body))
	if m == nil || m[2] == "0" {
		t.Errorf("body %q: want some failed writes", body)
	}
	s.alive(t)
}

// 8. Signals while PHP runs: SIGUSR1 reopens the logs and disturbs no
// script; SIGHUP reloads, and the old worker finishes the sleeping script
// undisturbed; SIGTERM lets the request in flight complete, then fe-php
// exits 0.
func TestEmbeddedSignals(t *testing.T) {
	t.Parallel()
	s := embStart(t, embOpts{php: "worker_pool_size = 2"})
	type result struct {
		resp *http.Response
		body []byte
		err  error
	}
	fetch := func(path string) <-chan result {
		ch := make(chan result, 1)
		go func() {
			resp, err := client.Get(s.URL(path))
			if err != nil {
				ch <- result{err: err}
				return
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			ch <- result{resp, body, err}
		}()
		return ch
	}

	usr1 := fetch("/hold.php?s=2&id=usr1")
	s.waitMarker(t, "hold-usr1")
	if err := s.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "logs reopened", func() bool { return strings.Contains(s.Stderr(), "logs reopened") })
	r := <-usr1
	if r.err != nil {
		t.Fatalf("the request running during SIGUSR1: %v", r.err)
	}
	if string(r.body) != "held usr1 slept=0" {
		t.Errorf("the request running during SIGUSR1 answered %q, want %q", r.body, "held usr1 slept=0")
	}

	hup := fetch("/hold.php?s=2&id=hup")
	s.waitMarker(t, "hold-hup")
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the reload", func() bool { return strings.Contains(s.Stderr(), "reloaded") })
	r = <-hup
	if r.err != nil {
		t.Fatalf("the request running during SIGHUP: %v", r.err)
	}
	wantStatus(t, r.resp, r.body, http.StatusOK)
	// sleep() returns what it did not sleep: 0 means the signal did not
	// interrupt it (Linux gives a process-directed signal to the main
	// thread, which never runs PHP).
	if string(r.body) != "held hup slept=0" {
		t.Errorf("the request running during SIGHUP answered %q, want %q", r.body, "held hup slept=0")
	}
	s.alive(t)

	term := fetch("/hold.php?s=2&id=term")
	s.waitMarker(t, "hold-term")
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r = <-term
	if r.err != nil {
		t.Fatalf("the request in flight at SIGTERM failed: %v", r.err)
	}
	wantStatus(t, r.resp, r.body, http.StatusOK)
	if string(r.body) != "held term slept=0" {
		t.Errorf("the request in flight at SIGTERM answered %q", r.body)
	}
	select {
	case <-s.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("fe-php did not exit after SIGTERM")
	}
	if code := s.ExitCode(); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0\nstderr:\n%s", code, tail(s.Stderr(), 3000))
	}
}

// 9. fastcgi_finish_request() completes the response (with its
// Content-Length) while the script goes on; so it does when the response
// was already streaming (chunked), and for an HTTP/1.0 client.
func TestEmbeddedFinishRequest(t *testing.T) {
	t.Parallel()
	s := embStart(t, embOpts{php: "worker_pool_size = 2"})
	resp, body := get(t, s.Server, "/finish.php?marker=finished")
	wantStatus(t, resp, body, http.StatusOK)
	if string(body) != "done" || resp.ContentLength != 4 {
		t.Errorf("body %q with Content-Length %d, want %q with 4", body, resp.ContentLength, "done")
	}
	if m := s.marker("finished"); m != "" {
		t.Errorf("the script had already finished (%q) when the client had the response: the response waited for it", m)
	}
	s.waitMarker(t, "finished")
	s.alive(t)

	// 200 KB, not flushed: buffered whole, sent with its length.
	const size = 200000
	resp, body = get(t, s.Server, fmt.Sprintf("/finish.php?size=%d&marker=buffered", size))
	wantStatus(t, resp, body, http.StatusOK)
	if len(body) != size || resp.ContentLength != size {
		t.Errorf("buffered response: %d bytes (Content-Length %d), want %d", len(body), resp.ContentLength, size)
	}
	if m := s.marker("buffered"); m != "" {
		t.Errorf("buffered response: the script had already finished when the client had the response: the response waited for it")
	}
	s.waitMarker(t, "buffered")

	// Flushed first: the response is streaming, chunked, when the script
	// calls fastcgi_finish_request().
	resp, body = get(t, s.Server, fmt.Sprintf("/finish.php?size=%d&flush=1&marker=streamed", size))
	wantStatus(t, resp, body, http.StatusOK)
	if len(body) != size || strings.Trim(string(body), "s") != "" || len(resp.TransferEncoding) == 0 {
		t.Errorf("streamed response: %d bytes (Transfer-Encoding %q), want %d", len(body), resp.TransferEncoding, size)
	}
	if m := s.marker("streamed"); m != "" {
		t.Errorf("streamed response: the script had already finished when the client had the response: the response waited for it")
	}
	s.waitMarker(t, "streamed")

	// HTTP/1.0: no chunking, the body ends with the connection.
	raw := rawExchange(t, s.Addr, fmt.Sprintf("GET /finish.php?size=%d&marker=http10 HTTP/1.0\r\nHost: test\r\n\r\n", size))
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
	if err != nil {
		t.Fatalf("HTTP/1.0: unparsable response %q: %v", trunc(raw), err)
	}
	body, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || len(body) != size {
		t.Errorf("HTTP/1.0 streamed response: %d, %d bytes, want 200, %d", resp.StatusCode, len(body), size)
	}
	if m := s.marker("http10"); m != "" {
		t.Errorf("HTTP/1.0 streamed response: the script had already finished when the client had the response")
	}
	s.waitMarker(t, "http10")
	s.alive(t)
}

// 10. connection_aborted() notices a client that went away.
func TestEmbeddedConnectionAborted(t *testing.T) {
	t.Parallel()
	s := embStart(t, embOpts{php: "worker_pool_size = 2"})
	conn, err := net.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /aborted.php HTTP/1.1\r\nHost: test\r\n\r\n")
	br := bufio.NewReader(conn)
	if _, err := io.ReadFull(br, make([]byte, 100<<10)); err != nil {
		t.Fatalf("reading the start of the stream: %v", err)
	}
	conn.Close()
	waitFor(t, 10*time.Second, "the script to see connection_aborted()", func() bool {
		m := s.marker("aborted")
		return m != "" && m != "started"
	})
	if m := s.marker("aborted"); m != "aborted" {
		t.Errorf("marker %q, want %q", m, "aborted")
	}
	s.alive(t)
}

// embRequest is request.php's answer.
type embRequest struct {
	Server map[string]any    `json:"server"`
	Get    map[string]any    `json:"get"`
	Post   map[string]any    `json:"post"`
	Cookie map[string]string `json:"cookie"`
	Files  map[string]struct {
		Name     string `json:"name"`
		Type     string `json:"type"`
		Size     int    `json:"size"`
		Error    int    `json:"error"`
		Content  string `json:"content"`
		Uploaded bool   `json:"uploaded"`
	} `json:"files"`
	Input         string            `json:"input"`
	AllHeaders    map[string]string `json:"getallheaders"`
	ApacheHeaders map[string]string `json:"apache_request_headers"`
	GetenvScript  any               `json:"getenv_script_name"`
}

func (r *embRequest) sv(name string) string {
	v, ok := r.Server[name]
	if !ok {
		return "<unset>"
	}
	return fmt.Sprint(v)
}

// embSend sends req and returns the decoded request.php answer.
func embSend(t *testing.T, req *http.Request) *embRequest {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, resp, body, http.StatusOK)
	var r embRequest
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("%v: %s", err, trunc(body))
	}
	return &r
}

// 11. What PHP sees of the request, and what the client sees of PHP's
// response: the PHP features FPM users rely on.
func TestEmbeddedRequestResponse(t *testing.T) {
	t.Parallel()
	s := embStart(t, embOpts{
		php:    "worker_pool_size = 4",
		tables: "[php.ini]\n\"session.save_path\" = \"{{dir}}/sessions\"\n",
		files:  map[string]string{"sessions/": ""},
	})
	newReq := func(t *testing.T, method, path string, body io.Reader, headers ...string) *http.Request {
		req, err := http.NewRequest(method, s.URL(path), body)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range headers {
			k, v, _ := strings.Cut(h, ":")
			req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		}
		return req
	}

	t.Run("Headers", func(t *testing.T) {
		t.Parallel()
		r := embSend(t, newReq(t, "GET", "/request.php", nil, "X-Custom-Header: custom value"))
		if got := r.AllHeaders["X-Custom-Header"]; got != "custom value" {
			t.Errorf("getallheaders()[X-Custom-Header] = %q; all: %v", got, r.AllHeaders)
		}
		if got := r.ApacheHeaders["X-Custom-Header"]; got != "custom value" {
			t.Errorf("apache_request_headers()[X-Custom-Header] = %q; all: %v", got, r.ApacheHeaders)
		}
		if got := r.AllHeaders["Host"]; got != s.Addr {
			t.Errorf("getallheaders()[Host] = %q, want %q", got, s.Addr)
		}
		if got := r.sv("HTTP_X_CUSTOM_HEADER"); got != "custom value" {
			t.Errorf("$_SERVER[HTTP_X_CUSTOM_HEADER] = %q", got)
		}
	})
	t.Run("CGIVariables", func(t *testing.T) {
		t.Parallel()
		r := embSend(t, newReq(t, "GET", "/request.php/a/b?x=1&y=two", nil))
		want := map[string]string{
			"REQUEST_METHOD":  "GET",
			"SCRIPT_NAME":     "/request.php",
			"SCRIPT_FILENAME": filepath.Join(s.root, "request.php"),
			"PATH_INFO":       "/a/b",
			"PHP_SELF":        "/request.php/a/b",
			"REQUEST_URI":     "/request.php/a/b?x=1&y=two",
			"QUERY_STRING":    "x=1&y=two",
			"HTTP_HOST":       s.Addr,
			"DOCUMENT_ROOT":   s.root,
			"SERVER_PROTOCOL": "HTTP/1.1",
			"REMOTE_ADDR":     "127.0.0.1",
		}
		for k, v := range want {
			if got := r.sv(k); got != v {
				t.Errorf("$_SERVER[%s] = %q, want %q", k, got, v)
			}
		}
		if r.Get["x"] != "1" || r.Get["y"] != "two" {
			t.Errorf("$_GET = %v", r.Get)
		}
		if r.GetenvScript != "/request.php" {
			t.Errorf("getenv('SCRIPT_NAME') = %v, want /request.php (as under FPM)", r.GetenvScript)
		}
	})
	t.Run("Cookies", func(t *testing.T) {
		t.Parallel()
		r := embSend(t, newReq(t, "GET", "/request.php", nil, "Cookie: a=1; b=two%20words"))
		if r.Cookie["a"] != "1" || r.Cookie["b"] != "two words" {
			t.Errorf("$_COOKIE = %v", r.Cookie)
		}
	})
	t.Run("PostForm", func(t *testing.T) {
		t.Parallel()
		form := url.Values{"name": {"fe-php"}, "list[]": {"x", "y"}}.Encode()
		r := embSend(t, newReq(t, "POST", "/request.php", strings.NewReader(form), "Content-Type: application/x-www-form-urlencoded"))
		if r.Post["name"] != "fe-php" || fmt.Sprint(r.Post["list"]) != "[x y]" {
			t.Errorf("$_POST = %v", r.Post)
		}
		if r.Input != form {
			t.Errorf("php://input = %q, want %q", r.Input, form)
		}
	})
	t.Run("Input", func(t *testing.T) {
		t.Parallel()
		// Small bodies travel with the request, bodies over 64 KiB are read
		// through a callback: both must arrive whole.
		for _, n := range []int{10, 300 << 10} {
			body := `{"k":"` + strings.Repeat("v", n) + `"}`
			r := embSend(t, newReq(t, "PUT", "/request.php", strings.NewReader(body), "Content-Type: application/json"))
			if r.Input != body {
				t.Errorf("php://input of a %d-byte body: %d bytes, want them all", len(body), len(r.Input))
			}
			if r.sv("CONTENT_LENGTH") != fmt.Sprint(len(body)) || r.sv("CONTENT_TYPE") != "application/json" {
				t.Errorf("CONTENT_LENGTH %q, CONTENT_TYPE %q", r.sv("CONTENT_LENGTH"), r.sv("CONTENT_TYPE"))
			}
		}
	})
	t.Run("Upload", func(t *testing.T) {
		t.Parallel()
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		mw.WriteField("field", "value")
		fw, _ := mw.CreateFormFile("upload", "hello.txt")
		fw.Write([]byte("uploaded content\n"))
		mw.Close()
		r := embSend(t, newReq(t, "POST", "/request.php", &buf, "Content-Type: "+mw.FormDataContentType()))
		f, ok := r.Files["upload"]
		if !ok || f.Name != "hello.txt" || f.Error != 0 || f.Content != "uploaded content\n" || !f.Uploaded || f.Size != 17 {
			t.Errorf("$_FILES = %+v", r.Files)
		}
		if r.Post["field"] != "value" {
			t.Errorf("$_POST = %v", r.Post)
		}
	})
	t.Run("SetCookie", func(t *testing.T) {
		t.Parallel()
		resp, body := get(t, s.Server, "/cookies_out.php")
		wantStatus(t, resp, body, http.StatusOK)
		cookies := resp.Header.Values("Set-Cookie")
		if len(cookies) != 2 || !strings.HasPrefix(cookies[0], "first=one") || !strings.HasPrefix(cookies[1], "second=two; path=/; HttpOnly") {
			t.Errorf("Set-Cookie = %q", cookies)
		}
		if got := resp.Header.Values("X-Multi"); len(got) != 2 || got[0] != "a" || got[1] != "b" {
			t.Errorf("X-Multi = %q, want [a b]", got)
		}
	})
	t.Run("Status", func(t *testing.T) {
		t.Parallel()
		resp, body := get(t, s.Server, "/status.php?how=code")
		if resp.StatusCode != 404 || string(body) != "not here" {
			t.Errorf("http_response_code(404): %d %q", resp.StatusCode, body)
		}
		resp, body = get(t, s.Server, "/status.php?how=cgi")
		if resp.StatusCode != 418 || string(body) != "short and stout" {
			t.Errorf("header('Status: 418 Teapot'): %d %q", resp.StatusCode, body)
		}
		if resp.Header.Get("Status") != "" {
			t.Errorf("the CGI Status header reached the client: %q", resp.Header.Get("Status"))
		}
		resp, body = get(t, s.Server, "/status.php?how=location")
		if resp.StatusCode != 302 || resp.Header.Get("Location") != "/x" {
			t.Errorf("header('Location: /x'): %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("FlushStreams", func(t *testing.T) {
		t.Parallel()
		resp, err := client.Get(s.URL("/stream.php"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		first, err := br.ReadString('\n')
		if err != nil || first != "first chunk\n" {
			t.Fatalf("first chunk %q, %v", first, err)
		}
		// The script goes on only once the client has seen the first chunk.
		if err := os.WriteFile(filepath.Join(s.state, "stream-seen"), []byte("yes"), 0o644); err != nil {
			t.Fatal(err)
		}
		rest, _ := io.ReadAll(br)
		if string(rest) != "rest after the client saw the first chunk\n" {
			t.Errorf("rest %q: flush() did not reach the client before the script ended", rest)
		}
	})
	t.Run("OutputBuffering", func(t *testing.T) {
		t.Parallel()
		resp, body := get(t, s.Server, "/ob.php")
		wantStatus(t, resp, body, http.StatusOK)
		if string(body) != `buffered {"headers_sent_before":false,"headers_sent_after":true}` {
			t.Errorf("body %q", body)
		}
		if resp.Header.Get("X-After-Output") != "yes" || resp.Header.Get("X-Kept") != "kept" {
			t.Errorf("headers set after buffered output are missing: %v", resp.Header)
		}
		if v, ok := resp.Header["X-Removed"]; ok {
			t.Errorf("header_remove()d header sent: %q", v)
		}
	})
	t.Run("Session", func(t *testing.T) {
		t.Parallel()
		type sess struct {
			ID    string `json:"id"`
			Value any    `json:"value"`
		}
		var first, second sess
		resp := embJSON(t, s, "/session.php?set=remembered", &first)
		var cookie string
		for _, c := range resp.Cookies() {
			if c.Name == "PHPSESSID" {
				cookie = c.Name + "=" + c.Value
			}
		}
		if cookie == "" || first.ID == "" {
			t.Fatalf("no session cookie: %q", resp.Header.Values("Set-Cookie"))
		}
		embJSON(t, s, "/session.php", &second, "Cookie: "+cookie)
		if second.ID != first.ID || second.Value != "remembered" {
			t.Errorf("second request with the cookie: %+v, want id %q and value remembered", second, first.ID)
		}
		if _, err := os.Stat(filepath.Join(s.dir, "sessions", "sess_"+first.ID)); err != nil {
			t.Errorf("session file not in session.save_path: %v", err)
		}
	})
}

// 12. PHP's error_log() and errors go to fe-php's log, with the id of the
// request that wrote them.
func TestEmbeddedErrorLog(t *testing.T) {
	t.Parallel()
	s := embStart(t, embOpts{php: "worker_pool_size = 2"})
	resp, body := get(t, s.Server, "/errorlog.php")
	wantStatus(t, resp, body, http.StatusOK)
	id := resp.Header.Get("X-Request-Id")
	if id == "" {
		t.Fatal("no X-Request-Id")
	}
	waitFor(t, 5*time.Second, "hello-embedded in the log with request_id="+id, func() bool {
		return logLineWith(s.Stderr(), "hello-embedded", "request_id="+id+" ") != ""
	})
	waitFor(t, 5*time.Second, "the E_USER_WARNING in the log", func() bool {
		return logLineWith(s.Stderr(), "level=WARN", "PHP Warning:  warned-embedded", "request_id="+id+" ") != ""
	})
	if line := logLineWith(s.Stderr(), "hello-embedded"); !strings.Contains(line, "errorlog.php") {
		t.Errorf("the log line does not name the script: %s", line)
	}
}

// 13. ini settings: [php.ini] overrides, ini_file is honoured, and
// [php.ini] wins over ini_file for the same key; both beat fe-php's
// defaults.
func TestEmbeddedINI(t *testing.T) {
	t.Parallel()
	s := embStart(t, embOpts{
		php: `ini_file = "{{dir}}/custom.ini"`,
		tables: `[php.ini]
memory_limit = "64M"
"date.timezone" = "Asia/Tokyo"
`,
		files: map[string]string{"custom.ini": "; test ini\nprecision = 10\nmemory_limit = 32M\ndefault_socket_timeout = 17\noutput_buffering = 8192\n"},
	})
	var got map[string]string
	embJSON(t, s, "/ini.php?keys=memory_limit,precision,default_socket_timeout,output_buffering,date.timezone,display_errors", &got)
	want := map[string]string{
		"memory_limit":           "64M",        // [php.ini] over ini_file
		"precision":              "10",         // ini_file
		"default_socket_timeout": "17",         // ini_file
		"output_buffering":       "8192",       // ini_file over fe-php's default (4096)
		"date.timezone":          "Asia/Tokyo", // [php.ini]
		"display_errors":         "0",          // fe-php's default
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("ini_get(%q) = %q, want %q", k, got[k], v)
		}
	}
}

// Concurrent requests through few PHP threads each get their own headers.
// (A slot freed as soon as PHP returned used to be refilled by the next
// request while the first still wrote its headers through the slot: some
// responses lost their headers or got a 500 from a nil ResponseWriter.)
func TestEmbeddedConcurrentResponses(t *testing.T) {
	t.Parallel()
	s := embStart(t, embOpts{php: "worker_pool_size = 1"})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var bad []string
	for g := range 8 {
		wg.Go(func() {
			for i := range 150 {
				id := fmt.Sprint(g*1000 + i)
				resp, err := client.Get(s.URL("/echo.php?id=" + id))
				if err != nil {
					t.Error(err)
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || string(body) != id || resp.Header.Get("X-Echo") != id {
					mu.Lock()
					bad = append(bad, fmt.Sprintf("id %s: %d %q X-Echo %q %v", id, resp.StatusCode, trunc(body), resp.Header.Values("X-Echo"), err))
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if len(bad) > 0 {
		t.Errorf("%d of 1200 responses are not their request's: %s", len(bad), strings.Join(bad[:min(len(bad), 5)], "; "))
	}
	s.alive(t)
}

// Short scripts run inline on Go's threads and longer ones on the slots'
// own PHP threads (internal/embed/placement.go): mixed on one server,
// every response is still its own request's, and with only long scripts
// the PHP contexts number the slots, not the threads Go made (before the
// PHP threads, 3 slots had up to 3 + 2 x GOMAXPROCS contexts, freed and
// remade as Go moved requests between its threads).
func TestEmbeddedPlacement(t *testing.T) {
	t.Parallel()
	embRequireBridge(t)
	const conf = `
[server]
workers = 1

[php]
document_root = "{{root}}"
worker_pool_size = 3

[admin]
listen = "127.0.0.1:0"
`
	files := map[string]string{
		"root/short.php": `<?php header("X-Id: " . $_GET["id"]); echo $_GET["id"];`,
		"root/long.php":  `<?php usleep(1000); header("X-Id: " . $_GET["id"]); echo str_repeat($_GET["id"] . ",", 2000);`,
	}
	mixed := startServer(t, conf, files)
	long := startServer(t, conf, files)

	var wg sync.WaitGroup
	var mu sync.Mutex
	var bad []string
	check := func(s *Server, path, id, want string) {
		resp, err := client.Get(s.URL(path + "?id=" + id))
		if err != nil {
			mu.Lock()
			bad = append(bad, err.Error())
			mu.Unlock()
			return
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || string(body) != want || resp.Header.Get("X-Id") != id {
			mu.Lock()
			bad = append(bad, fmt.Sprintf("%s id %s: %d %q X-Id %q %v", path, id, resp.StatusCode, trunc(body), resp.Header.Values("X-Id"), err))
			mu.Unlock()
		}
	}
	for g := range 8 {
		wg.Go(func() {
			for i := range 60 {
				id := fmt.Sprint(g*1000 + i)
				check(mixed, "/short.php", id, id)
				check(mixed, "/long.php", id, strings.Repeat(id+",", 2000))
				check(long, "/long.php", id, strings.Repeat(id+",", 2000))
			}
		})
	}
	wg.Wait()
	if len(bad) > 0 {
		t.Fatalf("%d of 1440 responses are not their request's: %s", len(bad), strings.Join(bad[:min(len(bad), 5)], "; "))
	}
	if n := metric(t, scrape(t, long), "fe_php_embedded_contexts"); n < 1 || n > 3 {
		t.Errorf("%v PHP contexts after 480 requests of a long script on 3 slots, want 1 to 3", n)
	}
}

// A process a script starts inherits the signal mask of the thread that
// ran the script: it must be empty, as under PHP-FPM, or the child could
// not be stopped with SIGTERM (proc_terminate, systemd). proc_open forks
// and execs with the thread's mask (popen, behind shell_exec, resets it).
// The first run of a script is on a slot's PHP thread, the next ones too
// (it is not short).
func TestEmbeddedChildSignalMask(t *testing.T) {
	t.Parallel()
	embRequireBridge(t)
	s := startServer(t, `
[php]
document_root = "{{root}}"
worker_pool_size = 2
`, map[string]string{"root/mask.php": `<?php usleep(200);
$p = proc_open(["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"], [1 => ["pipe", "w"]], $pipes);
echo stream_get_contents($pipes[1]);
proc_close($p);`})
	for range 3 {
		resp, body := get(t, s, "/mask.php")
		wantStatus(t, resp, body, 200)
		if !strings.Contains(string(body), "SigBlk:\t0000000000000000") {
			t.Fatalf("a child of a script starts with signals blocked:\n%s", body)
		}
	}
}
