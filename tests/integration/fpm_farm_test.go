package integration

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fe-php/fe-php/internal/testutil/fpmtest"
)

// farmScript echoes the name of the FPM that ran it (its pool's env
// marker), after sleeping ms milliseconds.
const farmScript = `<?php if (isset($_GET['ms'])) usleep((int)$_GET['ms'] * 1000); echo getenv('FPM_NAME');`

// startNamedFPM is a php-fpm on root whose scripts see FPM_NAME=name,
// answering FPM's ping on /ping.
func startNamedFPM(t *testing.T, root, name string) *fpmtest.FPM {
	return fpmtest.Start(t, fpmtest.Options{Children: 2, DocRoot: root,
		PoolExtra: fmt.Sprintf("env[FPM_NAME] = %s\nping.path = /ping\nping.response = pong\n", name)})
}

type farmResult struct {
	status         int
	body, id       string
	start, end     time.Time
	err            error
	afterKillStart bool
}

func farmGet(url string) farmResult {
	r := farmResult{start: time.Now()}
	resp, err := client.Get(url)
	if err != nil {
		r.err = err
		return r
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	r.status, r.body, r.id, r.end, r.err = resp.StatusCode, string(body), resp.Header.Get("X-Request-Id"), time.Now(), err
	return r
}

// TestFPMFarm: two FPMs behind one fe-php. Requests spread over both;
// killing one while requests flow fails none but those already sent to
// it (a 502, not sent again); the rest go to the survivor; once it is
// back (on the same socket), the active check returns it to rotation.
func TestFPMFarm(t *testing.T) {
	t.Parallel()
	root, _ := newPHPSiteDir(t)
	writeFiles(t, root, map[string]string{"who.php": farmScript})
	a := startNamedFPM(t, root, "A")
	b := startNamedFPM(t, root, "B")
	s := startServer(t, fmt.Sprintf(`
[php]
document_root = %q
fpm_socket = [%q, %q]

[backend]
default_backend = "fastcgi"

[backend.connection_pool]
max_size = 2
health_check_path = "/ping"
health_check_interval = "200ms"

[backend.connection_pool.circuit_breaker]
failure_threshold = 2
timeout_seconds = 1
`, root, a.Address, b.Address), nil)

	seen := map[string]int{}
	for range 20 {
		r := farmGet(s.URL("/who.php"))
		if r.err != nil || r.status != 200 {
			t.Fatalf("status %d, body %q, error %v", r.status, r.body, r.err)
		}
		seen[r.body]++
	}
	if seen["A"] == 0 || seen["B"] == 0 || seen["A"]+seen["B"] != 20 {
		t.Fatalf("20 sequential requests went %v, want both A and B", seen)
	}

	// Requests flow, 4 at a time, while A is killed.
	var (
		mu       sync.Mutex
		results  []farmResult
		stop     atomic.Bool
		killDone atomic.Int64 // UnixNano once Kill has returned
		wg       sync.WaitGroup
		afterB   atomic.Int32 // successes started after the kill
	)
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				r := farmGet(s.URL("/who.php?ms=30"))
				if k := killDone.Load(); k != 0 && r.start.UnixNano() > k {
					r.afterKillStart = true
					if r.err == nil && r.status == 200 {
						afterB.Add(1)
					}
				}
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
			}
		})
	}
	waitFor(t, 10*time.Second, "requests flowing", func() bool { mu.Lock(); defer mu.Unlock(); return len(results) >= 12 })
	a.Kill()
	killDone.Store(time.Now().UnixNano())
	waitFor(t, 20*time.Second, "40 requests after the kill", func() bool { return afterB.Load() >= 40 })
	stop.Store(true)
	wg.Wait()

	// Only a request already sent to A when it died may fail: a 502,
	// never sent again (it may have run), and fe-php's log names A and no
	// connect error (a refused connection goes to B). At most max_size (2)
	// were in flight on A when Kill began; a request started after Kill
	// returned may only fail that way too (a child still dying), never
	// otherwise.
	var failed []farmResult
	afterKill, before := 0, 0
	for _, r := range results {
		if r.afterKillStart {
			afterKill++
		}
		if r.err == nil && r.status == 200 {
			if r.afterKillStart && r.body != "B" {
				t.Errorf("request started after the kill served by %q, want B", r.body)
			}
			continue
		}
		if !r.afterKillStart {
			before++
		}
		failed = append(failed, r)
	}
	if before > 2 {
		t.Errorf("%d requests failed, at most 2 (max_size) were in flight on A", before)
	}
	for _, r := range failed {
		if r.err != nil || r.status != http.StatusBadGateway || r.id == "" {
			t.Errorf("failed request (after kill: %v): status %d, error %v: want only 502s of requests sent to A", r.afterKillStart, r.status, r.err)
			continue
		}
		var logLine string
		waitFor(t, 5*time.Second, "the log line of failed request "+r.id, func() bool {
			for line := range strings.SplitSeq(s.Stderr(), "\n") {
				if strings.Contains(line, r.id) && strings.Contains(line, "request failed") {
					logLine = line
					return true
				}
			}
			return false
		})
		if !strings.Contains(logLine, a.Address) || strings.Contains(logLine, "connect:") {
			t.Errorf("failed request %s: %s\nwant a request sent to A (not a connect failure, which goes to B)", r.id, logLine)
		}
	}
	t.Logf("%d requests, %d started after the kill, %d in flight on A failed with 502", len(results), afterKill, len(failed))
	waitFor(t, 5*time.Second, "A's failed health check in the log", func() bool {
		return strings.Contains(s.Stderr(), "failed its health check")
	})

	// A back on the same socket: the active check returns it to rotation.
	a.Restart(t)
	waitFor(t, 15*time.Second, "a request served by A again", func() bool {
		r := farmGet(s.URL("/who.php"))
		return r.err == nil && r.status == 200 && r.body == "A"
	})
	if !strings.Contains(s.Stderr(), "passed its health check: back in rotation") {
		t.Error("no log line of A back in rotation")
	}
}

// TestFPMFarmNamedPool: a rule's fpm key sends /admin/ to a named pool.
func TestFPMFarmNamedPool(t *testing.T) {
	t.Parallel()
	root, _ := newPHPSiteDir(t)
	writeFiles(t, root, map[string]string{"who.php": farmScript, "admin/who.php": farmScript})
	d := startNamedFPM(t, root, "default")
	e := startNamedFPM(t, root, "admin")
	s := startServer(t, fmt.Sprintf(`
[php]
document_root = %q
fpm_socket = %q

[php.fpm.admin]
fpm_socket = [%q]

[backend]
default_backend = "fastcgi"

[[backend.routing_rules]]
pattern = { type = "prefix", value = "/admin/" }
backend = "fastcgi"
fpm = "admin"
`, root, d.Address, e.Address), nil)
	for range 5 {
		resp, body := get(t, s, "/who.php")
		wantStatus(t, resp, body, http.StatusOK)
		if string(body) != "default" {
			t.Errorf("/who.php ran on %q, want the default pool", body)
		}
		resp, body = get(t, s, "/admin/who.php")
		wantStatus(t, resp, body, http.StatusOK)
		if string(body) != "admin" {
			t.Errorf("/admin/who.php ran on %q, want the admin pool", body)
		}
	}
}
