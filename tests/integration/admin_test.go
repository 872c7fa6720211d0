//go:build fephp_bridge

package integration

// The admin listener end to end: [admin] listen serves Prometheus metrics
// of a real fe-php (embedded, fastcgi on a real php-fpm, static), passing
// promtool's lint; /healthz; /readyz failing while the fastcgi breaker is
// open, while the embedded pool is saturated, and during the SIGTERM
// drain's shutdown_delay.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fe-php/fe-php/internal/testutil/fpmtest"
)

const promtool = "/usr/bin/promtool"

// adminGet GETs path on s's admin listener.
func adminGet(t testing.TB, s *Server, path string) (int, string) {
	t.Helper()
	if s.AdminAddr == "" {
		t.Fatalf("no admin=ADDR in the serving log line:\n%s", logLineWith(s.Stderr(), "serving"))
	}
	resp, err := client.Get("http://" + s.AdminAddr + path)
	if err != nil {
		t.Fatalf("admin GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("admin GET %s: %v", path, err)
	}
	return resp.StatusCode, string(body)
}

// scrape returns s's /metrics.
func scrape(t testing.TB, s *Server) string {
	t.Helper()
	code, body := adminGet(t, s, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: status %d: %s", code, trunc([]byte(body)))
	}
	return body
}

// metric returns the value of the series named exactly series (name and
// labels as the text format writes them), or fails.
func metric(t testing.TB, scraped, series string) float64 {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(scraped))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: value %q", series, v)
			}
			return f
		}
	}
	t.Fatalf("no series %s in /metrics; fe_php_ series:\n%s", series, grepPrefix(scraped, "fe_php_"))
	return 0
}

func grepPrefix(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func wantMetric(t testing.TB, scraped, series string, want float64) {
	t.Helper()
	if got := metric(t, scraped, series); got != want {
		t.Errorf("%s = %v, want %v", series, got, want)
	}
}

// promtoolCheck runs "promtool check metrics" on a scrape and returns its
// problems, one a line ("" for none).
func promtoolCheck(t testing.TB, scraped string) string {
	t.Helper()
	if _, err := os.Stat(promtool); err != nil {
		t.Fatalf("%s not found: install the prometheus package (scripts/deps.sh)", promtool)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(scraped)
	out, err := cmd.CombinedOutput()
	if err != nil && len(out) == 0 {
		t.Fatalf("promtool check metrics: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// TestAdminMetrics: requests to each backend show in the request counters
// by backend, rule and status class; the slot gauges and the FPM pool
// and build info are there; promtool finds nothing to lint.
func TestAdminMetrics(t *testing.T) {
	embRequireBridge(t)
	t.Parallel()
	dir := embPrepare(t, map[string]string{
		"root/fpm/ok.php": "<?php echo 'fpm ok';",
		"root/hello.txt":  "hello",
	})
	f := fpmtest.Start(t, fpmtest.Options{Children: 2, Listen: "tcp", DocRoot: filepath.Join(dir, "root")})
	s := embStartIn(t, dir, embOpts{
		php: fmt.Sprintf("worker_pool_size = 2\nfpm_socket = %q", f.Address),
		backend: `[[backend.routing_rules]]
pattern = { type = "prefix", value = "/fpm/" }
backend = "fastcgi"

[[backend.routing_rules]]
pattern = { type = "suffix", value = ".txt" }
backend = "static"

[admin]
listen = "127.0.0.1:0"
`,
	})
	for path, want := range map[string]int{
		"/ok.php": 200, "/status.php?how=code": 404,
		"/fpm/ok.php": 200,
		"/hello.txt":  200, "/nope.txt": 404,
	} {
		resp, body := get(t, s.Server, path)
		wantStatus(t, resp, body, want)
	}
	get(t, s.Server, "/ok.php")
	// The small-file cache keeps a file once it has not changed for 3 s
	// (internal/static's settleTime): wait that out, then one GET fills
	// the cache and the next comes from it.
	if st, err := os.Stat(filepath.Join(dir, "root/hello.txt")); err == nil {
		time.Sleep(time.Until(st.ModTime().Add(3100 * time.Millisecond)))
	}
	get(t, s.Server, "/hello.txt")
	get(t, s.Server, "/hello.txt") // from the small-file cache

	m := scrape(t, s.Server)
	for series, want := range map[string]float64{
		`fe_php_requests_total{backend="embedded",rule="default",status_class="2xx"}`: 2,
		`fe_php_requests_total{backend="embedded",rule="default",status_class="4xx"}`: 1,
		`fe_php_requests_total{backend="fastcgi",rule="0",status_class="2xx"}`:        1,
		`fe_php_requests_total{backend="static",rule="1",status_class="2xx"}`:         3,
		`fe_php_requests_total{backend="static",rule="1",status_class="4xx"}`:         1,
		`fe_php_requests_total{backend="static",rule="1",status_class="5xx"}`:         0,
		`fe_php_request_duration_seconds_count{backend="embedded"}`:                   3,
		`fe_php_request_duration_seconds_count{backend="static"}`:                     4,
		`fe_php_embedded_slots_capacity`:                                              2 * float64(s.Workers), // worker_pool_size a worker
		`fe_php_embedded_slots_busy`:                                                  0,
		`fe_php_embedded_requests_waiting`:                                            0,
		`fe_php_embedded_slot_wait_seconds_count`:                                     3,
		`fe_php_fastcgi_requests_waiting{upstream="` + f.Address + `"}`:               0,
		`fe_php_fastcgi_connections{state="busy",upstream="` + f.Address + `"}`:       0,
		`fe_php_fastcgi_breaker_state{upstream="` + f.Address + `"}`:                  0,
		`fe_php_static_cache_hits_total`:                                              1,
	} {
		wantMetric(t, m, series, want)
	}
	if !strings.Contains(m, `fe_php_build_info{goversion="go`) || !strings.Contains(m, `php_version="8.`) {
		t.Errorf("build_info without the Go or PHP version:\n%s", grepPrefix(m, "fe_php_build_info"))
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "fe_php_request_body_spooled_bytes_total", `fe_php_response_spooled_bytes_total{backend="fastcgi"}`} {
		if !strings.Contains(m, "\n"+name) {
			t.Errorf("/metrics has no %s", name)
		}
	}
	if problems := promtoolCheck(t, m); problems != "" {
		t.Errorf("promtool check metrics:\n%s", problems)
	}
	if code, body := adminGet(t, s.Server, "/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := adminGet(t, s.Server, "/readyz"); code != 200 || body != "ok\n" {
		t.Errorf("/readyz: %d %q", code, body)
	}
	// The public listener serves no admin paths.
	resp, _ := get(t, s.Server, "/metrics")
	if resp.StatusCode == 200 {
		t.Errorf("/metrics on the public listener: 200")
	}
}

// TestAdminReadyzBreaker: /readyz fails while the fastcgi circuit breaker
// is open (FPM stopped, failure_threshold requests failed).
func TestAdminReadyzBreaker(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	writeFiles(t, dir, map[string]string{"root/ok.php": "<?php echo 'ok';"})
	f := fpmtest.Start(t, fpmtest.Options{Children: 1, Listen: "tcp", DocRoot: root})
	s := startServer(t, fmt.Sprintf(`[php]
document_root = %q
front_controller = ""
fpm_socket = %q

[backend]
default_backend = "fastcgi"

[backend.connection_pool]
max_size = 1
keepalive_secs = 0

[backend.connection_pool.circuit_breaker]
enable = true
failure_threshold = 2
success_threshold = 1
timeout_seconds = 120

[admin]
listen = "127.0.0.1:0"
`, root, f.Address), nil)
	resp, body := get(t, s, "/ok.php")
	wantStatus(t, resp, body, http.StatusOK)
	if code, body := adminGet(t, s, "/readyz"); code != 200 {
		t.Fatalf("/readyz before: %d %q", code, body)
	}
	f.Stop()
	for i := range 2 {
		resp, body := get(t, s, "/ok.php")
		if resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("request %d with FPM stopped: status %d %q, want 502", i, resp.StatusCode, body)
		}
	}
	code, reason := adminGet(t, s, "/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(reason, "circuit breaker open") {
		t.Errorf("/readyz with the breaker open: %d %q, want 503 naming the breaker", code, reason)
	}
	m := scrape(t, s)
	wantMetric(t, m, `fe_php_fastcgi_breaker_state{upstream="`+f.Address+`"}`, 2)
	wantMetric(t, m, `fe_php_fastcgi_breaker_transitions_total{to="open",upstream="`+f.Address+`"}`, 1)
	wantMetric(t, m, `fe_php_requests_total{backend="fastcgi",rule="default",status_class="5xx"}`, 2)
	if code, _ := adminGet(t, s, "/healthz"); code != 200 {
		t.Errorf("/healthz with the breaker open: %d, want 200 (alive)", code)
	}
}

// TestAdminReadyzSaturated: with worker_pool_size = 1, one script holding
// the slot and two requests queued behind it (more than worker_pool_size
// waiting), /readyz fails; once the script ends, everyone is served and
// /readyz passes again.
func TestAdminReadyzSaturated(t *testing.T) {
	embRequireBridge(t)
	t.Parallel()
	s := embStart(t, embOpts{
		php: "worker_pool_size = 1\nwait_timeout = \"60s\"",
		// One worker process: the test fills its pool; with two, /readyz
		// fails only once both are full.
		tables: "[server]\nworkers = 1\n",
		files: map[string]string{
			// Runs until the test leaves state/release (at most 30s).
			"root/wait.php": `<?php
require __DIR__ . '/_state.inc';
file_put_contents(state_file('started-' . preg_replace('/[^a-z0-9]/', '', $_GET['id'] ?? 'x')), '1');
for ($i = 0; $i < 3000 && !file_exists(state_file('release')); $i++) { usleep(10000); }
echo 'released';`,
		},
		backend: "\n[admin]\nlisten = \"127.0.0.1:0\"\n",
	})
	release := func() { os.WriteFile(filepath.Join(s.state, "release"), []byte("1"), 0o644) }
	t.Cleanup(release)

	var wg sync.WaitGroup
	statuses := make([]int, 3)
	for i, id := range []string{"a", "b", "c"} {
		if i == 1 {
			s.waitMarker(t, "started-a") // a holds the one slot
		}
		wg.Go(func() {
			st, _, _, err := fetch(s.URL("/wait.php?id=" + id))
			if err != nil {
				t.Errorf("request %s: %v", id, err)
			}
			statuses[i] = st
		})
	}
	var reason string
	waitFor(t, 10*time.Second, "/readyz to fail with two requests queued", func() bool {
		var code int
		code, reason = adminGet(t, s.Server, "/readyz")
		return code == http.StatusServiceUnavailable
	})
	if !strings.Contains(reason, "embedded") {
		t.Errorf("/readyz reason %q, want the embedded pool named", reason)
	}
	m := scrape(t, s.Server)
	wantMetric(t, m, "fe_php_embedded_slots_busy", 1)
	wantMetric(t, m, "fe_php_embedded_requests_waiting", 2)
	release()
	wg.Wait()
	for i, st := range statuses {
		if st != 200 {
			t.Errorf("request %d: status %d, want 200", i, st)
		}
	}
	if code, body := adminGet(t, s.Server, "/readyz"); code != 200 {
		t.Errorf("/readyz after the queue drained: %d %q", code, body)
	}
	m = scrape(t, s.Server)
	wantMetric(t, m, "fe_php_embedded_requests_waiting", 0)
	if n := metric(t, m, `fe_php_embedded_slot_wait_seconds_bucket{le="0.0005"}`); n != 1 {
		t.Errorf("slot waits under 0.5ms: %v, want 1 (only the first request found the slot free)", n)
	}
}

// TestAdminDrain: on SIGTERM /readyz fails at once while the public
// listener still serves for shutdown_delay; then the listener closes and
// the process exits cleanly.
func TestAdminDrain(t *testing.T) {
	t.Parallel()
	s := startServer(t, `[backend]
default_backend = "static"

[backend.static_files]
root = "{{root}}"

[admin]
listen = "127.0.0.1:0"
shutdown_delay = "5s"
`, map[string]string{"root/index.html": "home"})
	resp, body := get(t, s, "/")
	wantStatus(t, resp, body, http.StatusOK)
	if code, _ := adminGet(t, s, "/readyz"); code != 200 {
		t.Fatalf("/readyz before SIGTERM: %d", code)
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	waitFor(t, 5*time.Second, "/readyz to fail after SIGTERM", func() bool {
		code, reason := adminGet(t, s, "/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(reason, "draining")
	})
	// Still within shutdown_delay (the log says when it ends): served.
	resp, body = get(t, s, "/")
	wantStatus(t, resp, body, http.StatusOK)
	if logLineWith(s.Stderr(), "shutting down") != "" {
		t.Fatalf("the listeners closed before the request above was sent: shutdown_delay not honored\n%s", s.Stderr())
	}
	if code, _ := adminGet(t, s, "/healthz"); code != 200 {
		t.Errorf("/healthz while draining: %d, want 200", code)
	}
	waitFor(t, 15*time.Second, "the public listener to close", func() bool {
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case <-s.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("fe-php did not exit after the drain")
	}
	if s.ExitCode() != 0 {
		t.Errorf("exit code %d, want 0", s.ExitCode())
	}
	if i, j := strings.Index(s.Stderr(), "draining"), strings.Index(s.Stderr(), "shutting down"); i < 0 || j < i {
		t.Errorf("log order: want the draining line before shutting down\n%s", s.Stderr())
	}
}

// TestAdminPProf: with [admin] pprof, the admin listener serves Go's
// profiles of a worker process (its goroutines run the request loop, the
// supervisor's do not), a CPU profile and an execution trace among them;
// a worker that is not there is a 404 naming the current ones; without
// the key, no profiles.
func TestAdminPProf(t *testing.T) {
	t.Parallel()
	cfg := func(on bool) string {
		return fmt.Sprintf(`[php]
document_root = "{{root}}"

[backend]
default_backend = "static"

[admin]
listen = "127.0.0.1:0"
pprof = %v
`, on)
	}
	files := map[string]string{"root/index.html": "hi\n"}
	s := startServer(t, cfg(true), files)
	code, body := adminGet(t, s, "/debug/pprof/goroutine?debug=1")
	if code != http.StatusOK || !strings.Contains(body, "internal/http1.(*Server).Serve") {
		t.Fatalf("goroutines: %d, want 200 and a worker's request loop:\n%s", code, trunc([]byte(body)))
	}
	if code, body := adminGet(t, s, "/debug/pprof/trace?seconds=1"); code != http.StatusOK || !strings.HasPrefix(body, "go 1.") {
		t.Errorf("trace: %d %q, want 200 and a Go execution trace", code, trunc([]byte(body)))
	}
	if code, body := adminGet(t, s, "/debug/pprof/profile?seconds=1"); code != http.StatusOK || !strings.HasPrefix(body, "\x1f\x8b") {
		t.Errorf("CPU profile: %d %q, want 200 and a gzipped profile", code, trunc([]byte(body)))
	}
	if code, body := adminGet(t, s, "/debug/pprof/goroutine?worker=1"); code != http.StatusNotFound || !strings.Contains(body, "the current ones") {
		t.Errorf("worker=1: %d %q, want 404 naming the current workers", code, body)
	}
	resp, err := client.Post("http://"+s.AdminAddr+"/debug/pprof/symbol", "text/plain", strings.NewReader("0x1"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("POST symbol (go tool pprof's lookup): %d, want 200", resp.StatusCode)
	}
	if code, body := adminGet(t, s, "/debug/pprof/profile?seconds=700"); code != http.StatusBadRequest {
		t.Errorf("seconds=700: %d %q, want 400", code, body)
	}
	if code, _ := adminGet(t, s, "/metrics"); code != http.StatusOK {
		t.Errorf("/metrics beside the profiles: %d", code)
	}

	off := startServer(t, cfg(false), files)
	if code, _ := adminGet(t, off, "/debug/pprof/goroutine?debug=1"); code != http.StatusNotFound {
		t.Errorf("without admin.pprof: %d, want 404", code)
	}
}
