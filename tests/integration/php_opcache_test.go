package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// opcacheLib is one of the files opcacheWork includes: a class and a
// function whose opcodes live in OPcache's shared memory while they run.
func opcacheLib(n int) string {
	return fmt.Sprintf(`<?php
final class Lib%[1]d {
    private array $rows = [];
    public function __construct(int $n) {
        for ($i = 0; $i < $n; $i++) {
            $this->rows[] = ['id' => $i, 'name' => "row-%[1]d-$i", 'tags' => ['a', 'b', (string) ($i %% 7)]];
        }
    }
    public function sum(): int {
        return array_sum(array_map(fn($r) => $r['id'] + strlen($r['name']) + count($r['tags']), $this->rows));
    }
}
function lib%[1]d(int $n): int { return (new Lib%[1]d($n))->sum(); }
`, n)
}

// opcacheWork runs code from five included files for about a millisecond
// and prints what it computed; the answer never changes.
const opcacheWork = `<?php
$sum = 0;
for ($k = 0; $k < 5; $k++) {
    require_once __DIR__ . "/lib/lib$k.php";
    $sum += ("lib$k")(200);
}
echo "sum:", $sum;
`

// OPcache may be reset (opcache_reset(), a full cache) while other PHP
// threads run scripts whose code is in its shared memory: the restart must
// wait for them. Stock ZTS PHP waits on a per-process file lock, which
// cannot see the process's own threads, and frees the memory under them
// (scripts/php-patches/0007 counts the requests instead). Requests run on
// four PHP threads while opcache_reset() is called again and again: every
// answer must be whole and right, the restarts must happen, and no worker
// may crash.
func TestEmbeddedOpcacheResetUnderLoad(t *testing.T) {
	t.Parallel()
	files := map[string]string{
		"root/work.php":   opcacheWork,
		"root/reset.php":  `<?php echo opcache_reset() ? "reset" : "not reset";`,
		"root/status.php": `<?php echo json_encode(opcache_get_status(false)['opcache_statistics'] ?? null);`,
	}
	for k := range 5 {
		files[fmt.Sprintf("root/lib/lib%d.php", k)] = opcacheLib(k)
	}
	s := embStart(t, embOpts{
		php:    "worker_pool_size = 4",
		tables: "[server]\nworkers = 1\n\n[php.ini]\n\"opcache.file_update_protection\" = \"0\"\n",
		files:  files,
	})
	resp, want := get(t, s.Server, "/work.php")
	wantStatus(t, resp, want, 200)
	if !strings.HasPrefix(string(want), "sum:") {
		t.Fatalf("/work.php answered %q", want)
	}
	workers := fmt.Sprint(s.WorkerPIDs(t))

	var (
		wg       sync.WaitGroup
		stop     atomic.Bool
		served   atomic.Int64
		mu       sync.Mutex
		failures []string
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 10 {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
		stop.Store(true)
	}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				resp, err := reportClient.Get(s.URL("/work.php"))
				if err != nil {
					fail("GET /work.php: %v", err)
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if body := string(b); err != nil || resp.StatusCode != 200 || body != string(want) {
					fail("GET /work.php: status %d, %v, body %.200q; want %q", resp.StatusCode, err, body, want)
					return
				}
				served.Add(1)
			}
		}()
	}
	deadline := time.Now().Add(3 * time.Second)
	resets := 0
	for time.Now().Before(deadline) && !stop.Load() {
		resp, body := get(t, s.Server, "/reset.php")
		wantStatus(t, resp, body, 200)
		resets++
		time.Sleep(5 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	for _, f := range failures {
		t.Error(f)
	}

	// opcache_get_status() is per process: one worker here.
	restarts := func() int {
		var stats struct {
			ManualRestarts int `json:"manual_restarts"`
		}
		resp, body := get(t, s.Server, "/status.php")
		wantStatus(t, resp, body, 200)
		if err := json.Unmarshal(body, &stats); err != nil {
			t.Fatalf("/status.php: %v: %q", err, body)
		}
		return stats.ManualRestarts
	}
	under := restarts()
	t.Logf("%d requests served, opcache_reset() called %d times, %d restarts", served.Load(), resets, under)
	if under == 0 {
		t.Errorf("OPcache never restarted under load (%d opcache_reset() calls): the test proved nothing", resets)
	}
	// Once the load is over nothing may still hold OPcache's count of
	// running requests: one more reset restarts at the next request.
	resp, body := get(t, s.Server, "/reset.php")
	wantStatus(t, resp, body, 200)
	get(t, s.Server, "/ok.php")
	if after := restarts(); after <= under {
		t.Errorf("opcache_reset() after the load: %d restarts, still %d: OPcache still counts a request in use", after, under)
	}
	if got := fmt.Sprint(s.WorkerPIDs(t)); got != workers {
		t.Errorf("worker processes %s became %s: a worker crashed\nstderr:\n%s", workers, got, tail(s.Stderr(), 3000))
	}
	s.alive(t)
}
