//go:build fephp_bridge

package integration

// The attacks of issue 9, each against both PHP backends where it
// applies: what a hostile client or a misbehaving script does, and what
// fe-php must answer. Each test failed on the code before the shared
// PHP pipeline.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fe-php/fe-php/internal/testutil/fpmtest"
)

// oneWorker is each backend with room for exactly one PHP request at a
// time, and a short wait for it: a request that cannot get PHP is a
// quick 503.
func oneWorker() []phpBackend {
	return []phpBackend{
		{name: "embedded", setup: func(t *testing.T, root string) (string, string) {
			return "worker_pool_size = 1\nwait_timeout = \"2s\"", ""
		}},
		{name: "fastcgi", setup: func(t *testing.T, root string) (string, string) {
			f := fpmtest.Start(t, fpmtest.Options{Children: 1, DocRoot: root})
			return fmt.Sprintf("fpm_socket = %q", f.Address),
				"[backend.connection_pool]\nmax_size = 1\nwait_timeout_secs = 2\n"
		}},
	}
}

// bothBackends is each backend with a few workers.
func bothBackends() []phpBackend { return []phpBackend{embeddedBackend(), fastcgiBackend("unix")} }

// A client that trickles its body holds no PHP: the body is received in
// full before the request takes a PHP thread or an FPM connection.
func TestHardenSlowUploadHoldsNoPHP(t *testing.T) {
	t.Parallel()
	eachBackend(t, oneWorker(), "", func(t *testing.T, s *phpSite) {
		conn, err := net.Dial("tcp", s.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// 200 KB: more than any body a backend could hold in memory
		// before taking PHP.
		const size = 200000
		fmt.Fprintf(conn, "POST /input.php HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n0123456789", size)
		time.Sleep(200 * time.Millisecond) // the upload is under way
		resp, body := get(t, s.Server, "/slow.php")
		wantStatus(t, resp, body, http.StatusOK)
		// The slow upload still completes.
		fmt.Fprintf(conn, "%s", strings.Repeat("x", size-10))
		conn.SetDeadline(time.Now().Add(20 * time.Second))
		out, _ := io.ReadAll(io.LimitReader(conn, 4096))
		if !strings.HasPrefix(string(out), "HTTP/1.1 200") {
			t.Errorf("the slow upload: %q", trunc(out))
		}
	})
}

// A client that does not read its response holds no PHP: the response
// waits in fe-php's buffers (here a temporary file: 10 MiB) while PHP
// serves others.
func TestHardenSlowReaderHoldsNoPHP(t *testing.T) {
	t.Parallel()
	eachBackend(t, oneWorker(), "", func(t *testing.T, s *phpSite) {
		conn, err := net.Dial("tcp", s.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET /big.php HTTP/1.1\r\nHost: x\r\n\r\n")
		// Each request waits up to wait_timeout (2 s) for the one PHP
		// worker, which the unread 10 MiB must not hold.
		for range 3 {
			resp, body := get(t, s.Server, "/slow.php")
			wantStatus(t, resp, body, http.StatusOK)
		}
	})
}

// A body that arrives slower than client_body_min_rate is cut with 408.
func TestHardenMinBodyRate(t *testing.T) {
	t.Parallel()
	s := startPHP(t, embeddedBackend(), "read_header_timeout = \"1s\"\nclient_body_min_rate = \"100K\"")
	conn, err := net.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /input.php HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
	done := make(chan string, 1)
	go func() {
		out, _ := io.ReadAll(io.LimitReader(conn, 4096))
		done <- string(out)
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < 300; i++ {
		select {
		case out := <-done:
			if !strings.HasPrefix(out, "HTTP/1.1 408") {
				t.Fatalf("trickled body: %q", out)
			}
			return
		case <-tick.C:
			conn.Write([]byte("x"))
		}
	}
	t.Fatal("a body trickled at 10 bytes a second was still accepted after 30 s")
}

// NUL, CR or LF in a decoded Basic credential never reach PHP (they would
// split the strings PHP reads and forge $_SERVER); the environment goes
// through PHP's input filter on both backends.
func TestHardenServerVarsNotForgeable(t *testing.T) {
	t.Parallel()
	eachBackend(t, bothBackends(), "", func(t *testing.T, s *phpSite) {
		for _, cred := range []string{"admin\x00REMOTE_ADDR\x00203.0.113.9:pw", "admin:pw\r\nX: 1", "a\nHTTPS\non:pw"} {
			auth := "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(cred))
			resp, body := get(t, s.Server, "/filter.php", auth)
			wantStatus(t, resp, body, http.StatusBadRequest)
		}
		auth := "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("alice:pw"))
		resp, body := get(t, s.Server, "/filter.php", auth)
		wantStatus(t, resp, body, http.StatusOK)
		var got struct{ Filter, Server, User *string }
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		if got.Filter == nil || got.Server == nil || *got.Filter != "127.0.0.1" || *got.Server != "127.0.0.1" || got.User == nil || *got.User != "alice" {
			t.Errorf("filter_input(INPUT_SERVER) and $_SERVER: %s", body)
		}
	})
}

// An invalid status from the script is a 500 on both backends, flushed
// or not; the server goes on, the session the script held is free, and
// the process still stops on SIGTERM.
func TestHardenInvalidStatus(t *testing.T) {
	t.Parallel()
	eachBackend(t, bothBackends(), "shutdown_timeout = \"5s\"", func(t *testing.T, s *phpSite) {
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
		clientGet(t, c, s.URL("/session.php"))
		for _, q := range []string{"", "?flush=1", "?code=99", "?code=101&flush=1", "?session=1&flush=1"} {
			resp, body := clientGet(t, c, s.URL("/badstatus.php"+q))
			if resp.StatusCode != http.StatusInternalServerError || strings.Contains(string(body), "body") {
				t.Errorf("%s: %d %q, want a 500 without the script's body", q, resp.StatusCode, body)
			}
		}
		resp, body := clientGet(t, c, s.URL("/session.php"))
		// The script that failed held the session's lock: it is free.
		if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "n=") || string(body) == "n=1" {
			t.Errorf("the session after the invalid status: %s %q", describe(resp), body)
		}
		if code := s.Stop(t); code != 0 {
			t.Errorf("exit code %d after SIGTERM", code)
		}
	})
}

// PHP's heads are checked the same way on both backends: two or a junk
// Content-Length is a 502; a line without a colon is dropped and logged;
// X-Accel-Buffering is consumed.
func TestHardenPHPHeaders(t *testing.T) {
	t.Parallel()
	eachBackend(t, bothBackends(), "", func(t *testing.T, s *phpSite) {
		for _, mode := range []string{"dupcl", "junkcl"} {
			resp, body := get(t, s.Server, "/badheaders.php?mode="+mode)
			wantStatus(t, resp, body, http.StatusBadGateway)
		}
		resp, body := get(t, s.Server, "/badheaders.php?mode=nocolon")
		wantStatus(t, resp, body, http.StatusOK)
		if string(body) != "ok" || resp.Header.Get("X-Fine") != "yes" {
			t.Errorf("nocolon: %q, X-Fine %q", body, resp.Header.Get("X-Fine"))
		}
		waitFor(t, 5*time.Second, "the dropped header in the log", func() bool {
			return logLine(s.Stderr(), "header dropped", "garbage-line-without-colon") != ""
		})
		resp, body = get(t, s.Server, "/badheaders.php?mode=xaccel")
		wantStatus(t, resp, body, http.StatusOK)
		if string(body) != "streamed" || resp.Header.Get("X-Accel-Buffering") != "" || resp.ContentLength != -1 {
			t.Errorf("xaccel: %q, X-Accel-Buffering %q, length %d", body, resp.Header.Get("X-Accel-Buffering"), resp.ContentLength)
		}
	})
}

// Shutdown is bounded by shutdown_timeout even with a script that never
// ends.
func TestHardenShutdownWithRunningScript(t *testing.T) {
	t.Parallel()
	s := startPHP(t, embeddedBackend(), "shutdown_timeout = \"2s\"")
	go fetch(s.URL("/loop.php?mark=looping"))
	waitFor(t, 10*time.Second, "loop.php to run", func() bool {
		_, err := os.Stat(filepath.Join(s.State, "looping"))
		return err == nil
	})
	start := time.Now()
	s.cmd.Process.Signal(syscall.SIGTERM)
	// Past the grace period the server has stopped serving; closing the
	// backends still waits for the script. A second SIGTERM then (an
	// impatient supervisor) must not kill the process half-closed.
	waitFor(t, 10*time.Second, "the server to stop serving", func() bool { return strings.Contains(s.Stderr(), "msg=stopped") })
	s.cmd.Process.Signal(syscall.SIGTERM)
	if code := s.Stop(t); code != 0 {
		t.Errorf("exit code %d after two SIGTERMs, want 0", code)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("SIGTERM took %s with shutdown_timeout 2s", d)
	}
}

// clientGet is a GET through c (with its cookie jar); the body is read.
func clientGet(t *testing.T, c *http.Client, url string) (*http.Response, []byte) {
	t.Helper()
	return fetchURL(t, c, url)
}

// eachBackend runs f in a parallel subtest per backend, each with its own
// fe-php on the test site, started with serverKeys in [server].
func eachBackend(t *testing.T, backends []phpBackend, serverKeys string, f func(t *testing.T, s *phpSite)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			f(t, startPHP(t, b, serverKeys))
		})
	}
}
