package integration

// The FastCGI attacks of issue 9: what PHP-FPM does on a kept connection
// must never reach another request, a request reaches PHP at most once,
// and only FPM's own failures open the circuit breaker.

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fe-php/fe-php/internal/testutil/fpmtest"
)

// Output after fastcgi_finish_request() travels on the FastCGI connection
// after FPM ended the request (php-src #18275): it must never reach the
// next user of that connection.
func TestHardenFastCGILateOutputNoLeak(t *testing.T) {
	t.Parallel()
	s, _ := startFastCGI(t, fpmtest.Options{Children: 1}, "[backend.connection_pool]\nmax_size = 1\n")
	for i := range 20 {
		resp, body := get(t, s.Server, "/late.php?ms=30")
		wantStatus(t, resp, body, http.StatusOK)
		if string(body) != "first-user" {
			t.Fatalf("round %d: first user got %q", i, body)
		}
		resp, body = get(t, s.Server, "/slow.php")
		if strings.Contains(string(body), "LATE") || resp.Header.Get("Set-Cookie") != "" || resp.Header.Get("X-Who") != "" {
			t.Fatalf("round %d: the next user got the first one's late output: %s %q", i, describe(resp), body)
		}
		wantStatus(t, resp, body, http.StatusOK)
	}
}

// runsOf counts the runs runs.php recorded under id.
func runsOf(s *phpSite, id string) int {
	b, _ := os.ReadFile(filepath.Join(s.State, id))
	return strings.Count(string(b), "run\n")
}

// warm opens n kept connections to FPM (n requests at once).
func warm(t *testing.T, s *phpSite, n int) {
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { fetch(s.URL("/slow.php?ms=200")) })
	}
	wg.Wait()
}

// A request whose FPM child dies (a crash, an OOM kill,
// request_terminate_timeout) is never sent again: it may have done its
// work (a payment) before dying.
func TestHardenFastCGINoReplay(t *testing.T) {
	t.Parallel()
	s, _ := startFastCGI(t, fpmtest.Options{Children: 4, PoolExtra: "request_terminate_timeout = 1s\n"},
		"[backend.connection_pool]\nmax_size = 4\n")
	warm(t, s, 4)
	resp, body := send(t, newRequest(t, s.Server, "POST", "/runs.php?id=pay&die=1", strings.NewReader("amount=10"),
		"Content-Type: application/x-www-form-urlencoded"))
	wantStatus(t, resp, body, http.StatusBadGateway)
	if n := runsOf(s, "pay"); n != 1 {
		t.Errorf("the POST whose child died ran %d times", n)
	}
	warm(t, s, 4)
	resp, body = get(t, s.Server, "/runs.php?id=slowget&ms=3000")
	if resp.StatusCode != http.StatusBadGateway && resp.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("GET killed by request_terminate_timeout: %s %q", describe(resp), body)
	}
	if n := runsOf(s, "slowget"); n != 1 {
		t.Errorf("the GET killed by request_terminate_timeout ran %d times", n)
	}
}

// A response that breaks after it started is broken for the client too,
// never ended as if it were whole; it is in the access log.
func TestHardenFastCGIBrokenStreamAborts(t *testing.T) {
	t.Parallel()
	s, _ := startFastCGI(t, fpmtest.Options{Children: 2}, "")
	resp, err := http.Get(s.URL("/runs.php?id=broken&flush=1&die=1"))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Errorf("the broken stream ended cleanly: %s %q", describe(resp), body)
	}
	waitFor(t, 5*time.Second, "the broken request in the access log", func() bool {
		return strings.Contains(s.Stdout(), "uri=\"/runs.php?id=broken&flush=1&die=1\"")
	})
}

// The circuit breaker counts FPM's failures only: clients' errors and
// scripts' faults never open it.
func TestHardenFastCGIBreakerIgnoresClientsAndScripts(t *testing.T) {
	t.Parallel()
	s, _ := startFastCGI(t, fpmtest.Options{Children: 2}, `[backend.connection_pool.circuit_breaker]
enable = true
failure_threshold = 2
success_threshold = 1
timeout_seconds = 60
`)
	big := "X-Big: " + strings.Repeat("a", 70<<10)
	for range 5 {
		resp, body := get(t, s.Server, "/slow.php", big)
		wantStatus(t, resp, body, http.StatusRequestHeaderFieldsTooLarge)
	}
	for _, mode := range []string{"dupcl", "junkcl", "dupcl"} {
		resp, body := get(t, s.Server, "/badheaders.php?mode="+mode)
		wantStatus(t, resp, body, http.StatusBadGateway)
	}
	for range 3 {
		resp, body := get(t, s.Server, "/badstatus.php")
		wantStatus(t, resp, body, http.StatusInternalServerError)
	}
	resp, body := get(t, s.Server, "/slow.php")
	wantStatus(t, resp, body, http.StatusOK)
	if strings.Contains(s.Stderr(), "circuit breaker changed state") {
		t.Errorf("the breaker moved: %s", logLine(s.Stderr(), "circuit breaker"))
	}
}
