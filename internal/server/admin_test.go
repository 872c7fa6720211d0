package server

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fe-php/fe-php/internal/config"
)

func withAdmin(delay time.Duration) func(*config.Config) {
	return func(c *config.Config) {
		c.Admin.Listen = "127.0.0.1:0"
		c.Admin.ShutdownDelay.Duration = delay
	}
}

func adminGet(t *testing.T, s *Server, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	s.newAdmin().Handler.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec.Code, rec.Body.String()
}

// /metrics counts requests by backend, rule and status class; /healthz
// and /readyz answer, and /readyz fails once draining.
func TestAdminEndpoints(t *testing.T) {
	s, _ := newTestServer(t, nil, withAdmin(0))
	for _, p := range []string{"/", "/", "/index.html"} {
		s.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", p, nil))
	}
	s.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/", nil)) // 405
	code, body := adminGet(t, s, "/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`fe_php_requests_total{backend="static",rule="default",status_class="2xx"} 3`,
		`fe_php_requests_total{backend="static",rule="default",status_class="4xx"} 1`,
		`fe_php_requests_total{backend="none",rule="none",status_class="2xx"} 0`,
		`fe_php_request_duration_seconds_count{backend="static"} 4`,
		`fe_php_build_info{goversion="go`,
		`fe_php_static_cache_hits_total `,
		"go_goroutines ",
		"process_open_fds ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q\n%s", want, grepLines(body, "fe_php_requests_total"))
		}
	}
	if code, body := adminGet(t, s, "/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := adminGet(t, s, "/readyz"); code != 200 || body != "ok\n" {
		t.Errorf("/readyz: %d %q", code, body)
	}
	s.draining.Store(true)
	if code, body := adminGet(t, s, "/readyz"); code != 503 || !strings.Contains(body, "draining") {
		t.Errorf("/readyz while draining: %d %q", code, body)
	}
}

// Without the admin listener nothing is instrumented.
func TestNoAdminNoMetrics(t *testing.T) {
	s, _ := newTestServer(t, nil, nil)
	if s.metrics != nil || s.fallback.metrics != nil {
		t.Error("metrics built without admin.listen")
	}
}

// On shutdown, /readyz fails at once while the public listener still
// serves for shutdown_delay; then it closes, and the admin listener last.
func TestShutdownDelay(t *testing.T) {
	s, logs := newTestServer(t, nil, withAdmin(time.Second))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminLn, err := net.Listen("tcp", s.cfg.Admin.Listen)
	if err != nil {
		t.Fatal(err)
	}
	lns := &Listeners{HTTP: ln, Admin: adminLn}
	public, admin := "http://"+ln.Addr().String(), "http://"+lns.Admin.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, lns) }()
	stopped := false
	defer func() {
		if cancel(); !stopped {
			<-done
		}
	}()
	status := func(url string) int {
		resp, err := http.Get(url)
		if err != nil {
			return 0
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s\n%s", what, logs)
			}
		}
	}
	waitUntil("the listeners", func() bool { return status(admin+"/readyz") == 200 && status(public+"/") == 200 })
	cancel()
	waitUntil("/readyz to fail", func() bool { return status(admin+"/readyz") == 503 })
	if st := status(public + "/"); st != 200 {
		t.Errorf("during shutdown_delay the public listener answered %d, want 200", st)
	}
	select {
	case err := <-done:
		stopped = true
		t.Fatalf("Serve returned during shutdown_delay: %v", err)
	default:
	}
	err = <-done
	stopped = true
	if err != nil {
		t.Errorf("Serve: %v", err)
	}
	for _, url := range []string{public + "/", admin + "/healthz"} {
		if st := status(url); st != 0 {
			t.Errorf("%s answered %d after shutdown", url, st)
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
