package integration

// The supervisor and its workers (issue 12): a worker that crashes is
// replaced while the others serve; a crash loop is backed off; SIGHUP and
// "fe-php reload" swap the configuration under load without a failed
// request, and refuse a bad one; SIGUSR2 and "fe-php upgrade" swap the
// binary the same way; the admin listener sums the workers' metrics.

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// steadyLoad is a bounded, steady stream of GETs from a few clients, each
// on its own keep-alive connections, as a browser or a load balancer
// sends them (an idempotent request whose kept connection the server had
// closed is retried, as RFC 9112 9.3.1 allows and clients do).
type steadyLoad struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	errs       []string
	seen       map[string]int // the X-Config values the answers carried
	stop       chan struct{}
	wg         sync.WaitGroup
}

// startLoad sends GETs for paths (in turn) to base from clients
// goroutines, each pausing a little between requests, until Stop. An
// answer other than 200 with a non-empty body is a failure.
func startLoad(t *testing.T, base string, clients int, paths ...string) *steadyLoad {
	l := &steadyLoad{stop: make(chan struct{}), seen: map[string]int{}}
	for i := range clients {
		c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2}, Timeout: 30 * time.Second}
		l.wg.Go(func() {
			defer c.CloseIdleConnections()
			for n := i; ; n++ {
				select {
				case <-l.stop:
					return
				default:
				}
				path := paths[n%len(paths)]
				resp, err := c.Get(base + path)
				var body []byte
				if err == nil {
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				switch {
				case err != nil:
					l.fail(fmt.Sprintf("GET %s: %v", path, err))
				case resp.StatusCode != 200 || len(body) == 0:
					l.fail(fmt.Sprintf("GET %s: %s %q", path, resp.Status, trunc(body)))
				default:
					l.ok.Add(1)
					l.mu.Lock()
					l.seen[resp.Header.Get("X-Config")]++
					l.mu.Unlock()
				}
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	// Flowing before the test acts.
	waitFor(t, 10*time.Second, "the load to flow", func() bool { return l.ok.Load() >= int64(5*clients) })
	return l
}

func (l *steadyLoad) fail(msg string) {
	l.failed.Add(1)
	l.mu.Lock()
	if len(l.errs) < 20 {
		l.errs = append(l.errs, msg)
	}
	l.mu.Unlock()
}

// Stop ends the load and returns its counts and first failures.
func (l *steadyLoad) Stop() (ok, failed int64, errs []string) {
	close(l.stop)
	l.wg.Wait()
	return l.ok.Load(), l.failed.Load(), l.errs
}

// Seen is how many answers carried X-Config: v.
func (l *steadyLoad) Seen(v string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seen[v]
}

// restartIn matches the supervisor's replacement lines.
var restartIn = regexp.MustCompile(`msg="worker died; replacing it".* cause="([^"]+)".* restart_in=(\S+)`)

// A worker killed while requests flow (a real PHP crash: serialize() of a
// deeply nested array overflows the C stack; then the OOM killer's
// SIGKILL) is logged with its cause and replaced at once; the listener
// and the other worker answer throughout, static files included, and only
// requests in flight on the killed worker may fail.
func TestWorkerCrashReplaced(t *testing.T) {
	t.Parallel()
	embRequireBridge(t)
	s := startServer(t, `
[server]
workers = 2

[php]
document_root = "{{root}}"
worker_pool_size = 4

[admin]
listen = "127.0.0.1:0"
`, map[string]string{
		"root/hello.php": `<?php echo "hello from ", getmypid(), "\n";`,
		"root/crash.php": `<?php ini_set('memory_limit', '-1');
$a = [];
for ($i = 0; $i < 1000000; $i++) { $a = [$a]; }
echo strlen(serialize($a));`,
		"root/page.html": "static\n",
	})
	before := s.WorkerPIDs(t)
	if len(before) != 2 {
		t.Fatalf("%d worker processes, want 2 (server.workers)", len(before))
	}
	const clients = 4
	load := startLoad(t, "http://"+s.Addr, clients, "/hello.php", "/page.html")

	// 1. A segfault in PHP.
	if resp, err := client.Get(s.URL("/crash.php")); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("crash.php answered %s %q: this PHP does not crash on it, the test needs another crash", resp.Status, trunc(body))
	}
	waitFor(t, 10*time.Second, "the crashed worker to be replaced", func() bool {
		return strings.Contains(s.Stderr(), `msg="worker replaced"`)
	})
	m := restartIn.FindStringSubmatch(s.Stderr())
	if m == nil || !strings.Contains(m[1], "a crash in PHP") || m[2] != "0s" {
		t.Errorf("the replacement line: %q; want the cause (a crash in PHP) and an immediate restart", m)
	}

	// 2. The OOM killer (SIGKILL) on a worker. The server's request count
	// does not go backwards with it (Prometheus would see a reset).
	const served = `fe_php_requests_total{backend="embedded",rule="default",status_class="2xx"}`
	before2 := metric(t, scrape(t, s), served)
	now := s.WorkerPIDs(t)
	victim := now[0]
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the killed worker to be replaced", func() bool {
		return strings.Count(s.Stderr(), `msg="worker replaced"`) == 2
	})
	if !strings.Contains(s.Stderr(), fmt.Sprintf(`pid=%d slot=`, victim)) || !strings.Contains(s.Stderr(), "killed by signal SIGKILL") {
		t.Errorf("no log line names worker %d killed by SIGKILL", victim)
	}
	time.Sleep(200 * time.Millisecond) // some load on the new workers
	ok, failed, errs := load.Stop()
	t.Logf("%d requests answered, %d failed, across 2 worker deaths", ok, failed)
	// A client's request in flight on a dying worker may fail; no other.
	if failed > 2*clients {
		t.Errorf("%d requests failed, want at most %d (one in flight a client a death): %q", failed, 2*clients, errs)
	}

	after := s.WorkerPIDs(t)
	if len(after) != 2 || slices.Contains(after, victim) {
		t.Errorf("worker processes after the deaths: %v (before %v, killed %d); want 2 new ones", after, before, victim)
	}
	scraped := scrape(t, s)
	wantMetric(t, scraped, "fe_php_workers", 2)
	wantMetric(t, scraped, "fe_php_worker_crashes_total", 2)
	if after := metric(t, scraped, served); after < before2 {
		t.Errorf("%s went from %v to %v when a worker died: a counter must not go backwards", served, before2, after)
	}
	for range 10 {
		resp, body := get(t, s, "/hello.php")
		wantStatus(t, resp, body, 200)
	}
}

// A worker that keeps dying young is replaced after a growing delay
// (0, then 0.1 s doubling), not in a tight loop.
func TestWorkerCrashLoopBackoff(t *testing.T) {
	t.Parallel()
	s := startServer(t, `
[server]
workers = 1

[backend]
default_backend = "static"

[backend.static_files]
root = "{{root}}"
`, map[string]string{"root/index.html": "up\n"})
	for i := range 3 {
		pids := s.WorkerPIDs(t)
		if len(pids) != 1 {
			t.Fatalf("round %d: worker processes %v, want 1", i, pids)
		}
		syscall.Kill(pids[0], syscall.SIGKILL)
		waitFor(t, 10*time.Second, "the replacement", func() bool {
			return strings.Count(s.Stderr(), `msg="worker replaced"`) == i+1
		})
	}
	var delays []string
	for _, m := range restartIn.FindAllStringSubmatch(s.Stderr(), -1) {
		delays = append(delays, m[2])
	}
	if want := []string{"0s", "100ms", "200ms"}; !slices.Equal(delays, want) {
		t.Errorf("restart delays %v, want %v", delays, want)
	}
	resp, body := get(t, s, "/")
	if resp.StatusCode != 200 || string(body) != "up\n" {
		t.Errorf("after the deaths: %s %q", describe(resp), body)
	}
}

// reloadConfig is the configuration TestReload swaps: gen names it in a
// response header; embedded PHP and static files on two workers.
func reloadConfig(gen string) string {
	return `
[server]
workers = 2

[server.headers]
X-Config = "` + gen + `"

[php]
document_root = "{{root}}"
worker_pool_size = 4

[admin]
listen = "127.0.0.1:0"
`
}

// SIGHUP and "fe-php reload" swap the configuration under a steady load
// without a failed request: the new workers serve before the old ones
// drain. A configuration that is not valid is refused, by "fe-php reload"
// with its errors and by the server on SIGHUP, and the running one keeps
// serving.
func TestReloadUnderLoad(t *testing.T) {
	t.Parallel()
	embRequireBridge(t)
	s := startServer(t, reloadConfig("1"), map[string]string{
		"root/hello.php": `<?php echo "hello\n";`,
		"root/page.html": "static\n",
	})
	// The listen keys stay as they were ("127.0.0.1:0"): an unchanged
	// key keeps its socket across the reload.
	write := func(cfg string) {
		t.Helper()
		cfg = withListen(expand(cfg, s.Dir), "127.0.0.1:0")
		if err := os.WriteFile(s.Config, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const clients = 4
	load := startLoad(t, "http://"+s.Addr, clients, "/hello.php", "/page.html")
	oldWorkers := s.WorkerPIDs(t)

	// 1. SIGHUP with a new configuration.
	write(reloadConfig("2"))
	s.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 30*time.Second, "the old workers to stop", func() bool {
		return strings.Count(s.Stderr(), "the old workers have stopped") == 1
	})
	waitFor(t, 10*time.Second, "answers of the new configuration", func() bool { return load.Seen("2") > 20 })
	for _, pid := range s.WorkerPIDs(t) {
		if slices.Contains(oldWorkers, pid) {
			t.Errorf("worker %d of the old configuration still runs", pid)
		}
	}

	// 2. A configuration with an error: "fe-php reload" refuses it and
	// says why; SIGHUP is refused by the server.
	write(reloadConfig("3") + "\n[server.bogus]\n")
	stdout, stderr, code := runCLI(t, s.Dir, "reload", "-c", s.Config)
	if out := stdout + stderr; code != 1 || !strings.Contains(out, "server.bogus") || !strings.Contains(out, "keeps serving") {
		t.Errorf("fe-php reload on a bad config: exit %d, output %q; want 1 and the error", code, out)
	}
	s.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 10*time.Second, "the refusal", func() bool { return strings.Contains(s.Stderr(), "reload refused") })

	// 3. "fe-php reload" with a valid one finds the server by its config.
	write(reloadConfig("4"))
	stdout, stderr, code = runCLI(t, s.Dir, "reload", "-c", s.Config)
	if code != 0 || !strings.Contains(stdout, fmt.Sprintf("pid %d", s.PID)) {
		t.Errorf("fe-php reload: exit %d, %q %q; want it to signal pid %d", code, stdout, stderr, s.PID)
	}
	waitFor(t, 30*time.Second, "the second reload", func() bool {
		return strings.Count(s.Stderr(), "the old workers have stopped") == 2
	})
	waitFor(t, 10*time.Second, "answers of the fourth configuration", func() bool { return load.Seen("4") > 20 })
	ok, failed, errs := load.Stop()
	t.Logf("%d requests across 2 reloads and 1 refused: %d failed; by configuration: 1=%d 2=%d 3=%d 4=%d",
		ok, failed, load.Seen("1"), load.Seen("2"), load.Seen("3"), load.Seen("4"))
	if failed > 0 {
		t.Errorf("%d requests failed during the reloads: %q", failed, errs)
	}
	if n := load.Seen("3"); n > 0 {
		t.Errorf("%d answers came from the refused configuration", n)
	}
	scraped := scrape(t, s)
	wantMetric(t, scraped, `fe_php_config_reloads_total{result="ok"}`, 2)
	wantMetric(t, scraped, `fe_php_config_reloads_total{result="failed"}`, 1)
}

// buildVersion builds the fe-php binary under test again, stamped with
// version, into dir: a "new release" for the upgrade test.
func buildVersion(t *testing.T, dir, version string) string {
	t.Helper()
	out := filepath.Join(dir, "fe-php-"+version)
	args := []string{"build", "-o", out, "-ldflags", "-X github.com/fe-php/fe-php/internal/version.Version=" + version}
	if buildTags != "" {
		args = append(args, "-tags", buildTags)
	}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "github.com/fe-php/fe-php/cmd/fe-php")...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building fe-php %s: %v\n%s", version, err, b)
	}
	return out
}

// logFile is a process's log written to a file, not a pipe: a pipe would
// tie the test's Wait to the upgraded supervisor that inherits it.
type logFile struct{ path string }

func (l logFile) String() string {
	b, _ := os.ReadFile(l.path)
	return string(b)
}

// startLogged starts "bin run -c cfgPath" with its stderr in a logFile
// beside the config (stdout, the access log, to /dev/null); exited gets
// Wait's result.
func startLogged(t *testing.T, bin, cfgPath string) (cmd *exec.Cmd, log logFile, exited <-chan error) {
	t.Helper()
	log = logFile{filepath.Join(filepath.Dir(cfgPath), "stderr.log")}
	logf, err := os.Create(log.path)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close() // the child has its own descriptor
	cmd = exec.Command(bin, "run", "-c", cfgPath)
	cmd.Env = childEnv(nil)
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ch := make(chan error, 1)
	go func() { ch <- cmd.Wait() }()
	return cmd, log, ch
}

// SIGUSR2 and "fe-php upgrade" replace the running binary with the one on
// disk under a steady load without a failed request: the new supervisor
// takes the listening sockets over, serves, and the old one drains and
// exits 0. A new binary that cannot start is refused and the running one
// keeps serving.
func TestUpgradeUnderLoad(t *testing.T) {
	t.Parallel()
	embRequireBridge(t)
	dir := t.TempDir()
	newRelease := buildVersion(t, dir, "upgraded-test")
	bin := filepath.Join(dir, "fe-php")
	copyFile(t, binary, bin)
	writeFiles(t, dir, map[string]string{
		"root/version.php": `<?php echo $_SERVER['SERVER_SOFTWARE'], "\n";`,
		"root/page.html":   "static\n",
	})
	pidFile := filepath.Join(dir, "fe-php.pid")
	cfgPath := filepath.Join(dir, "fe-php.toml")
	cfg := expand(`
[server]
listen = "127.0.0.1:0"
workers = 2
pid_file = "`+pidFile+`"

[php]
document_root = "{{root}}"
worker_pool_size = 4

[admin]
listen = "127.0.0.1:0"
`, dir)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd, log, exited := startLogged(t, bin, cfgPath)
	newPID := 0
	t.Cleanup(func() {
		for _, pid := range []int{newPID, cmd.Process.Pid} {
			if pid > 0 {
				syscall.Kill(pid, syscall.SIGTERM)
			}
		}
		waitGone(t, newPID)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
		}
		if r := raceReports(log.String()); r != "" {
			t.Errorf("fe-php reported a data race:\n%s", r)
		}
		if t.Failed() {
			t.Logf("fe-php stderr:\n%s", tail(log.String(), 6000))
		}
	})
	waitFor(t, 20*time.Second, "fe-php to serve", func() bool { return servingLine.MatchString(log.String()) })
	line := logLineWith(log.String(), "msg=serving")
	addr := servingLine.FindStringSubmatch(line)[1]
	admin := adminField.FindStringSubmatch(line)[1]

	const clients = 4
	load := startLoad(t, "http://"+addr, clients, "/version.php", "/page.html")

	// 1. A "new binary" that cannot start: refused, the old one serves.
	broken := filepath.Join(dir, "broken")
	os.WriteFile(broken, []byte("#!/bin/sh\necho 'this release is broken' >&2\nexit 1\n"), 0o755)
	if err := os.Rename(broken, bin); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGUSR2)
	waitFor(t, 30*time.Second, "the failed upgrade", func() bool { return strings.Contains(log.String(), "upgrade failed") })

	// 2. The new release, with "fe-php upgrade" (found by pid_file).
	copyFile(t, newRelease, bin+".new")
	if err := os.Rename(bin+".new", bin); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runCLI(t, dir, "upgrade", "-c", cfgPath)
	if code != 0 || !strings.Contains(stdout, fmt.Sprintf("pid %d", cmd.Process.Pid)) {
		t.Fatalf("fe-php upgrade: exit %d, %q %q", code, stdout, stderr)
	}
	waitFor(t, 60*time.Second, "the upgrade", func() bool { return strings.Contains(log.String(), "upgraded: the new binary serves") })
	m := regexp.MustCompile(`new_pid=(\d+)`).FindStringSubmatch(log.String())
	newPID, _ = strconv.Atoi(m[1])
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("the old supervisor exited with %v, want 0", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("the old supervisor did not exit after the upgrade")
	}
	waitFor(t, 10*time.Second, "answers of the new binary", func() bool {
		resp, err := client.Get("http://" + addr + "/version.php")
		if err != nil {
			return false
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return string(body) == "fe-php/upgraded-test\n"
	})
	time.Sleep(200 * time.Millisecond)
	ok, failed, errs := load.Stop()
	t.Logf("%d requests across a failed and a done upgrade: %d failed", ok, failed)
	if failed > 0 {
		t.Errorf("%d requests failed during the upgrades: %q", failed, errs)
	}
	if b, _ := os.ReadFile(pidFile); strings.TrimSpace(string(b)) != strconv.Itoa(newPID) {
		t.Errorf("pid_file says %q, want the new supervisor's %d", b, newPID)
	}
	resp, err := client.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(body, []byte(`version="upgraded-test"`)) {
		t.Errorf("/metrics after the upgrade has no build_info of the new release:\n%s", grepPrefix(string(body), "fe_php_build_info"))
	}
}

// waitGone waits until process pid (not a child of the test) has exited.
func waitGone(t *testing.T, pid int) {
	if pid <= 0 {
		return
	}
	deadline := time.Now().Add(30 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Errorf("process %d did not exit within 30s of SIGTERM; killed it", pid)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// The admin listener of several workers sums their metrics: requests,
// PHP slots, contexts and their recycling, and one build_info; promtool
// finds nothing to lint.
func TestAdminMetricsSummedAcrossWorkers(t *testing.T) {
	t.Parallel()
	embRequireBridge(t)
	s := startServer(t, `
[server]
workers = 2

[php]
document_root = "{{root}}"
worker_pool_size = 5
worker_max_requests = 1

[admin]
listen = "127.0.0.1:0"
`, map[string]string{"root/pid.php": `<?php echo getmypid();`})
	pids := map[string]bool{}
	const n = 40
	for range n {
		// A new connection each: the kernel hands them to both workers.
		resp, body := get(t, s, "/pid.php", "Connection: close")
		wantStatus(t, resp, body, 200)
		pids[string(body)] = true
	}
	scraped := scrape(t, s)
	wantMetric(t, scraped, `fe_php_requests_total{backend="embedded",rule="default",status_class="2xx"}`, n)
	wantMetric(t, scraped, "fe_php_embedded_slots_capacity", 10) // 5 a worker
	wantMetric(t, scraped, "fe_php_workers", 2)
	// A context serves one request, then is recycled before its next: of
	// 40 requests on at most 2 x (5 + 2 x GOMAXPROCS) contexts, most
	// started on a recycled one.
	if n := metric(t, scraped, `fe_php_embedded_context_recycles_total{reason="max_requests"}`); n < 1 {
		t.Errorf("%v contexts recycled after worker_max_requests = 1, want some", n)
	}
	wantMetric(t, scraped, `fe_php_embedded_context_recycles_total{reason="failure"}`, 0)
	if n := metric(t, scraped, "fe_php_embedded_contexts"); n < float64(len(pids)) {
		t.Errorf("%v PHP contexts in the %d workers that served", n, len(pids))
	}
	if c := strings.Count(scraped, "\nfe_php_build_info{"); c != 1 {
		t.Errorf("%d build_info series, want 1", c)
	}
	if problems := promtoolCheck(t, scraped); problems != "" {
		t.Errorf("promtool check metrics:\n%s", problems)
	}
	t.Logf("the %d requests ran in %d worker processes", n, len(pids))
}

// A reload that moves admin.listen keeps the admin listener where it is
// (moving it needs a restart): before, the new address was bound with no
// one answering it and the old one closed with the old workers, so that
// /metrics and the probes answered nowhere.
func TestReloadMovingAdminKeepsIt(t *testing.T) {
	t.Parallel()
	cfg := `
[server]
workers = 1

[server.headers]
X-Config = "%s"

[backend]
default_backend = "static"

[backend.static_files]
root = "{{root}}"

[admin]
listen = "%s"
`
	s := startServer(t, fmt.Sprintf(cfg, "1", "127.0.0.1:0"), map[string]string{"root/index.html": "up\n"})
	write := withListen(expand(fmt.Sprintf(cfg, "2", "127.0.0.2:0"), s.Dir), "127.0.0.1:0")
	if err := os.WriteFile(s.Config, []byte(write), 0o644); err != nil {
		t.Fatal(err)
	}
	s.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 30*time.Second, "the old workers to stop", func() bool {
		return strings.Contains(s.Stderr(), "the old workers have stopped")
	})
	if resp, body := get(t, s, "/"); resp.Header.Get("X-Config") != "2" {
		t.Errorf("after the reload: %s %q, X-Config %q; want the new configuration", describe(resp), body, resp.Header.Get("X-Config"))
	}
	if !strings.Contains(s.Stderr(), "admin.listen changed") {
		t.Error("no warning that admin.listen keeps its address")
	}
	if code, body := adminGet(t, s, "/readyz"); code != http.StatusOK {
		t.Errorf("/readyz on the admin listener after the reload: %d %q", code, body)
	}
	wantMetric(t, scrape(t, s), `fe_php_config_reloads_total{result="ok"}`, 1)
}

// SIGTERM while an upgrade is under way stops the new binary too: before,
// the old supervisor drained and exited while the new one started
// anyway and served on, orphaned, after fe-php had been told to stop.
func TestStopDuringUpgrade(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "fe-php")
	copyFile(t, binary, bin)
	writeFiles(t, dir, map[string]string{"root/index.html": "up\n"})
	cfgPath := filepath.Join(dir, "fe-php.toml")
	cfg := expand(`
[server]
listen = "127.0.0.1:0"
workers = 1

[backend]
default_backend = "static"

[backend.static_files]
root = "{{root}}"
`, dir)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd, log, exited := startLogged(t, bin, cfgPath)
	t.Cleanup(func() {
		cmd.Process.Kill()
		if t.Failed() {
			t.Logf("fe-php stderr:\n%s", tail(log.String(), 6000))
		}
	})
	waitFor(t, 20*time.Second, "fe-php to serve", func() bool { return servingLine.MatchString(log.String()) })
	addr := servingLine.FindStringSubmatch(logLineWith(log.String(), "msg=serving"))[1]

	// A release that takes its time to start: a wrapper that waits a
	// little, then runs the binary under test.
	slow := filepath.Join(dir, "slow")
	os.WriteFile(slow, []byte("#!/bin/sh\nsleep 2\nexec "+binary+" \"$@\"\n"), 0o755)
	if err := os.Rename(slow, bin); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGUSR2)
	waitFor(t, 10*time.Second, "the upgrade to start", func() bool { return strings.Contains(log.String(), "upgrading: starting") })
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("the supervisor exited with %v, want 0", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the supervisor did not exit on SIGTERM")
	}
	// Nothing holds the listening socket any more: not the new binary.
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after fe-php stopped during an upgrade", addr)
	}
	if strings.Count(log.String(), "msg=serving") > 1 {
		t.Error("the new binary served after fe-php stopped")
	}
}

// A worker of the generation a reload starts that dies after it served,
// while a sibling is still starting, is replaced: before, the supervisor
// took it for a worker of no current generation and did not, and the
// reload swapped in a generation one worker short for good.
func TestReloadReplacesNewWorkerThatDied(t *testing.T) {
	t.Parallel()
	cfg := `
[server]
workers = 2
log_level = "debug"

[server.headers]
X-Config = "%s"

[backend]
default_backend = "static"

[backend.static_files]
root = "{{root}}"
`
	s := startServer(t, fmt.Sprintf(cfg, "1"), map[string]string{"root/index.html": "up\n"})
	waitFor(t, 10*time.Second, "both workers", func() bool { return strings.Count(s.Stderr(), "worker serving") == 2 })
	old := s.WorkerPIDs(t)
	if err := os.WriteFile(s.Config, []byte(withListen(expand(fmt.Sprintf(cfg, "2"), s.Dir), "127.0.0.1:0")), 0o644); err != nil {
		t.Fatal(err)
	}
	s.cmd.Process.Signal(syscall.SIGHUP)
	// Hold each new worker as it appears (SIGSTOP), to let them serve
	// one at a time.
	var fresh []int
	waitFor(t, 10*time.Second, "the new workers", func() bool {
		for _, pid := range s.WorkerPIDs(t) {
			if !slices.Contains(old, pid) && !slices.Contains(fresh, pid) {
				syscall.Kill(pid, syscall.SIGSTOP)
				fresh = append(fresh, pid)
			}
		}
		return len(fresh) == 2
	})
	slices.Sort(fresh) // started in slot order
	syscall.Kill(fresh[0], syscall.SIGCONT)
	serving := fmt.Sprintf("pid=%d", fresh[0]) // not the other one's line: it may have served before it was held
	waitFor(t, 10*time.Second, "the first new worker to serve", func() bool { return logLineWith(s.Stderr(), "worker serving", serving) != "" })
	syscall.Kill(fresh[0], syscall.SIGKILL)
	waitFor(t, 10*time.Second, "its death", func() bool { return syscall.Kill(fresh[0], 0) != nil || strings.Contains(s.Stderr(), "worker died") })
	if strings.Contains(s.Stderr(), "reloaded:") {
		syscall.Kill(fresh[1], syscall.SIGCONT)
		t.Skip("the second new worker had served before it was held: the reload was done")
	}
	syscall.Kill(fresh[1], syscall.SIGCONT)
	waitFor(t, 30*time.Second, "the old workers to stop", func() bool { return strings.Contains(s.Stderr(), "the old workers have stopped") })
	waitFor(t, 30*time.Second, "the dead new worker's replacement", func() bool { return strings.Contains(s.Stderr(), `msg="worker replaced"`) })
	if pids := s.WorkerPIDs(t); len(pids) != 2 {
		t.Errorf("worker processes %v after the reload, want 2", pids)
	}
	if resp, body := get(t, s, "/"); resp.Header.Get("X-Config") != "2" {
		t.Errorf("after the reload: %s %q; want the new configuration", describe(resp), body)
	}
}
