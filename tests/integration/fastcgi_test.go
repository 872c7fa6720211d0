package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fe-php/fe-php/internal/testutil/fpmtest"
)

// fastcgiBackend is the fastcgi backend for runPHPSuite: a php-fpm8.2 with
// 4 children listening on listen ("unix" or "tcp"), pooled to 4.
func fastcgiBackend(listen string) phpBackend {
	return phpBackend{
		name:          "fastcgi",
		getallheaders: true,
		setup: func(t *testing.T, root string) (string, string) {
			f := fpmtest.Start(t, fpmtest.Options{Children: 4, Listen: listen, DocRoot: root})
			return fmt.Sprintf("fpm_socket = %q", f.Address), "[backend.connection_pool]\nmax_size = 4\n"
		},
	}
}

func TestPHPFastCGIUnix(t *testing.T) {
	t.Parallel()
	runPHPSuite(t, fastcgiBackend("unix"))
}

func TestPHPFastCGITCP(t *testing.T) {
	t.Parallel()
	runPHPSuite(t, fastcgiBackend("tcp"))
}

// startFastCGI starts a php-fpm with opts on a copy of the test site and
// fe-php in front of it; tables are the config's [backend.connection_pool]
// (and circuit breaker) tables.
func startFastCGI(t *testing.T, opts fpmtest.Options, tables string) (*phpSite, *fpmtest.FPM) {
	t.Helper()
	var f *fpmtest.FPM
	b := phpBackend{name: "fastcgi", getallheaders: true, setup: func(t *testing.T, root string) (string, string) {
		opts.DocRoot = root
		f = fpmtest.Start(t, opts)
		return fmt.Sprintf("fpm_socket = %q", f.Address), tables
	}}
	return startPHP(t, b, ""), f
}

// fetch is a GET usable from any goroutine: it returns the status, the
// Retry-After header and the body, or an error.
func fetch(url string) (status int, retryAfter string, body []byte, err error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), body, err
}

// TestFastCGIPoolLimit: with max_size = 3 and 3 FPM children, 20
// concurrent slow requests all succeed, and FPM never sees more than 3
// connections.
func TestFastCGIPoolLimit(t *testing.T) {
	t.Parallel()
	s, f := startFastCGI(t, fpmtest.Options{Children: 3, Listen: "tcp"},
		"[backend.connection_pool]\nmax_size = 3\nwait_timeout_secs = 60\n")
	const n = 20
	type result struct {
		status int
		body   string
		err    error
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			st, _, body, err := fetch(s.URL("/slow.php?ms=200"))
			results[i] = result{st, string(body), err}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	maxConns, samples := 0, 0
	for running := true; running; {
		select {
		case <-done:
			running = false
		case <-time.After(2 * time.Millisecond):
		}
		maxConns = max(maxConns, tcpServerConns(t, f.Address))
		samples++
	}
	pids := map[string]bool{}
	for i, r := range results {
		if r.err != nil || r.status != 200 || !strings.HasPrefix(r.body, "slept ") {
			t.Errorf("request %d: status %d, body %q, error %v", i, r.status, r.body, r.err)
			continue
		}
		pids[strings.TrimPrefix(r.body, "slept ")] = true
	}
	t.Logf("%d samples, at most %d connections to FPM, %d children served", samples, maxConns, len(pids))
	if maxConns > 3 {
		t.Errorf("FPM saw %d connections at once, want at most max_size = 3", maxConns)
	}
	if maxConns == 0 {
		t.Errorf("no connection to FPM seen in %d samples while 20 requests ran", samples)
	}
	if len(pids) > 3 {
		t.Errorf("%d FPM children served, FPM has 3", len(pids))
	}
}

// tcpServerConns counts the server ends of the connections to the TCP
// listener at addr (ESTABLISHED, accepted or queued), as FPM's ConnCount
// does, but each connection once: /proc/net/tcp is read in pages, not as
// one snapshot, and an entry is listed twice when the table changes
// between two reads (seen with fpmtest's ConnCount counting 4 connections
// where 3 were open).
func tcpServerConns(t *testing.T, addr string) int {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	suffix := fmt.Sprintf(":%04X", p)
	seen := map[string]bool{}
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(data), "\n") {
			// sl local_address rem_address st ...
			f := strings.Fields(line)
			if len(f) > 3 && strings.HasSuffix(f[1], suffix) && f[3] == "01" {
				seen[f[1]+" "+f[2]] = true
			}
		}
	}
	return len(seen)
}

// TestFastCGIWaitTimeout: max_size = 1, wait_timeout_secs = 1, and a request
// holding the only connection for 3 s: a second request gets 503.
func TestFastCGIWaitTimeout(t *testing.T) {
	t.Parallel()
	s, _ := startFastCGI(t, fpmtest.Options{Children: 2},
		"[backend.connection_pool]\nmax_size = 1\nwait_timeout_secs = 1\n")
	mark := unique("hold")
	held := make(chan error, 1)
	go func() {
		st, _, body, err := fetch(s.URL("/slow.php?ms=3000&mark=" + mark))
		if err == nil && st != 200 {
			err = fmt.Errorf("status %d, body %q", st, body)
		}
		held <- err
	}()
	waitFor(t, 15*time.Second, "the holding request to run on FPM", func() bool {
		_, err := os.Stat(filepath.Join(s.State, mark))
		return err == nil
	})
	resp, body := get(t, s.Server, "/slow.php")
	wantStatus(t, resp, body, http.StatusServiceUnavailable)
	if err := <-held; err != nil {
		t.Errorf("the request holding the connection: %v", err)
	}
	waitFor(t, 5*time.Second, "the 503's reason (pool exhausted) in fe-php's log", func() bool {
		return logLine(s.Stderr(), "request_id="+resp.Header.Get("X-Request-Id"), "pool exhausted") != ""
	})
	// The connection is free again.
	resp, body = get(t, s.Server, "/slow.php")
	wantStatus(t, resp, body, http.StatusOK)
}

// TestFastCGIMaxRequests: FPM recycles a child (and closes its kept-open
// connection) after 2 requests; sequential requests all succeed.
func TestFastCGIMaxRequests(t *testing.T) {
	t.Parallel()
	s, _ := startFastCGI(t, fpmtest.Options{Children: 2, MaxRequests: 2}, "")
	pids := map[string]bool{}
	for i := range 10 {
		resp, body := get(t, s.Server, "/slow.php")
		if resp.StatusCode != 200 {
			t.Fatalf("GET %d: status %d, body %q", i, resp.StatusCode, body)
		}
		pids[strings.TrimPrefix(string(body), "slept ")] = true
	}
	if len(pids) < 5 {
		t.Errorf("10 requests served by %d FPM children: pm.max_requests = 2 did not recycle them", len(pids))
	}
	// A POST is never sent twice: one that lands on a connection in the
	// moment FPM closes it gets a 502 (as behind nginx). Sequential POSTs
	// a little apart never do.
	for i := range 10 {
		time.Sleep(50 * time.Millisecond)
		resp, body := send(t, newRequest(t, s.Server, "POST", "/input.php", strings.NewReader("payload-"+strconv.Itoa(i)),
			"Content-Type: text/plain"))
		if resp.StatusCode != 200 {
			t.Errorf("POST %d: status %d, body %q", i, resp.StatusCode, body)
		}
	}
}

// TestFastCGIDown: FPM not there at start: 502, and fe-php's log names the
// address and the OS error.
func TestFastCGIDown(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := l.Addr().String()
	l.Close()
	missingSock := filepath.Join(t.TempDir(), "no-fpm.sock")
	for _, c := range []struct{ addr, oserr string }{
		{closedAddr, "connection refused"},
		{missingSock, "no such file or directory"},
	} {
		b := phpBackend{name: "fastcgi", setup: func(*testing.T, string) (string, string) {
			return fmt.Sprintf("fpm_socket = %q", c.addr), ""
		}}
		s := startPHP(t, b, "")
		resp, body := get(t, s.Server, "/info.php")
		wantStatus(t, resp, body, http.StatusBadGateway)
		id := resp.Header.Get("X-Request-Id")
		var line string
		waitFor(t, 5*time.Second, "the failure in fe-php's log", func() bool {
			line = logLine(s.Stderr(), "request_id="+id)
			return line != ""
		})
		if !strings.Contains(line, c.addr) || !strings.Contains(line, c.oserr) {
			t.Errorf("FPM at %s down: the log line does not name the address and %q:\n%s", c.addr, c.oserr, line)
		}
	}
}

// logLine returns the first line of log containing every one of subs.
func logLine(log string, subs ...string) string {
next:
	for line := range strings.SplitSeq(log, "\n") {
		for _, s := range subs {
			if !strings.Contains(line, s) {
				continue next
			}
		}
		return line
	}
	return ""
}

// TestFastCGIReadTimeout: a script slower than read_timeout_secs gets 504.
func TestFastCGIReadTimeout(t *testing.T) {
	t.Parallel()
	// 3 children: the two timed-out scripts keep theirs busy for 3 s.
	s, _ := startFastCGI(t, fpmtest.Options{Children: 3},
		"[backend.connection_pool]\nread_timeout_secs = 1\n")
	resp, body := get(t, s.Server, "/slow.php?ms=3000")
	wantStatus(t, resp, body, http.StatusGatewayTimeout)
	waitFor(t, 5*time.Second, "the 504's reason (no response within 1s) in fe-php's log", func() bool {
		return logLine(s.Stderr(), "request_id="+resp.Header.Get("X-Request-Id"), "no response within 1s") != ""
	})
	// The same with a body large enough to be streamed to FPM as it arrives.
	upload := randomBytes(200<<10, 3)
	resp, body = send(t, newRequest(t, s.Server, "POST", "/slow.php?ms=3000", bytes.NewReader(upload),
		"Content-Type: application/octet-stream"))
	wantStatus(t, resp, body, http.StatusGatewayTimeout)
	resp, body = get(t, s.Server, "/slow.php")
	wantStatus(t, resp, body, http.StatusOK)
}

// TestFastCGISlowUpload: read_timeout_secs bounds each wait for FPM, not
// the time a client takes to upload its body: a body that trickles in for
// longer than read_timeout_secs, with no pause longer than it, reaches PHP
// whole.
func TestFastCGISlowUpload(t *testing.T) {
	t.Parallel()
	s, _ := startFastCGI(t, fpmtest.Options{Children: 2},
		"[backend.connection_pool]\nread_timeout_secs = 1\n")
	const piece, pieces = 20 << 10, 10 // 200 KiB: streamed to FPM as it arrives
	conn, err := net.DialTimeout("tcp", s.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(conn, "POST /input.php HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", piece*pieces)
	data := randomBytes(piece*pieces, 7)
	for i := range pieces {
		if _, err := conn.Write(data[i*piece : (i+1)*piece]); err != nil {
			t.Logf("writing piece %d: %v (the server answered early)", i, err)
			break
		}
		time.Sleep(250 * time.Millisecond) // 2.5 s in all, over read_timeout_secs
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	var got struct {
		Len int    `json:"len"`
		MD5 string `json:"md5"`
	}
	decodeJSON(t, resp, body, &got)
	if got.Len != len(data) || got.MD5 != md5hex(data) {
		t.Errorf("the script read %d bytes (md5 %s), want %d (md5 %s)", got.Len, got.MD5, len(data), md5hex(data))
	}
}

var breakerLine = regexp.MustCompile(`msg="fastcgi circuit breaker changed state".* from=(\S+) to=(\S+)`)

// breakerChanges lists the circuit breaker's state changes in log, as
// "from->to".
func breakerChanges(log string) []string {
	var out []string
	for _, m := range breakerLine.FindAllStringSubmatch(log, -1) {
		out = append(out, m[1]+"->"+m[2])
	}
	return out
}

func hasChange(log, change string) bool {
	for _, c := range breakerChanges(log) {
		if c == change {
			return true
		}
	}
	return false
}

// waitLogQuiet waits until fe-php's log has not grown for 300 ms: its
// lines reach the test through a pipe, possibly after the response they
// belong to. Checks that a line is absent run after it.
func waitLogQuiet(t *testing.T, s *Server) {
	t.Helper()
	n, since := len(s.Stderr()), time.Now()
	waitFor(t, 10*time.Second, "fe-php's log to settle", func() bool {
		if m := len(s.Stderr()); m != n {
			n, since = m, time.Now()
		}
		time.Sleep(20 * time.Millisecond)
		return time.Since(since) >= 300*time.Millisecond
	})
}

// TestFastCGICircuitBreaker: FPM killed under load opens the breaker after
// failure_threshold failures: requests then get 503 with Retry-After
// without FPM being contacted. FPM restarted on the same address: requests
// succeed again and the breaker closes (half-open -> closed).
func TestFastCGICircuitBreaker(t *testing.T) {
	t.Parallel()
	s, f := startFastCGI(t, fpmtest.Options{Children: 2, Listen: "tcp"}, `[backend.connection_pool]
max_size = 2

[backend.connection_pool.circuit_breaker]
enable = true
failure_threshold = 3
success_threshold = 2
timeout_seconds = 2
`)
	resp, body := get(t, s.Server, "/slow.php")
	wantStatus(t, resp, body, http.StatusOK)

	// Load: 3 clients in a loop.
	var mu sync.Mutex
	statuses := map[int]int{}
	var loadErrs []error
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				st, ra, _, err := fetch(s.URL("/slow.php?ms=20"))
				mu.Lock()
				if err != nil {
					loadErrs = append(loadErrs, err)
				} else {
					statuses[st]++
					if st == 503 && ra == "" {
						loadErrs = append(loadErrs, fmt.Errorf("503 without Retry-After"))
					}
				}
				mu.Unlock()
			}
		})
	}
	waitFor(t, 10*time.Second, "load to reach FPM", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return statuses[200] >= 5
	})
	f.Kill()
	waitFor(t, 10*time.Second, `the log line "fastcgi circuit breaker changed state" to open`, func() bool {
		return hasChange(s.Stderr(), "closed->open")
	})
	close(stop)
	wg.Wait()
	t.Logf("statuses under load: %v", statuses)
	for st := range statuses {
		if st != 200 && st != 502 && st != 503 {
			t.Errorf("status %d under load (%d times), want only 200, 502 and 503", st, statuses[st])
		}
	}
	for _, err := range loadErrs {
		t.Errorf("under load: %v", err)
	}

	// Open: 503 with Retry-After, and FPM not contacted (no failure logged
	// for these requests), unless the open period ended meanwhile and the
	// breaker let a trial request through (half-open).
	waitLogQuiet(t, s.Server)
	changes := len(breakerChanges(s.Stderr()))
	var ids, wrong []string
	for range 5 {
		resp, body := get(t, s.Server, "/slow.php")
		ids = append(ids, resp.Header.Get("X-Request-Id"))
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			wrong = append(wrong, fmt.Sprintf("status %d, Retry-After %q, body %q",
				resp.StatusCode, resp.Header.Get("Retry-After"), body))
		}
	}
	waitLogQuiet(t, s.Server)
	if c := breakerChanges(s.Stderr()); len(c) != changes {
		t.Logf("the breaker changed state during the burst (%v); open-state checks skipped", c[changes:])
	} else {
		for _, w := range wrong {
			t.Errorf("breaker open: %s; want 503 with Retry-After", w)
		}
		for _, id := range ids {
			if line := logLine(s.Stderr(), "fastcgi request failed", "request_id="+id); line != "" {
				t.Errorf("breaker open, yet FPM was contacted: %s", line)
			}
		}
	}

	f.Restart(t)
	ok := false
	waitFor(t, 15*time.Second, "a request to succeed and the breaker to close after the restart", func() bool {
		st, _, _, err := fetch(s.URL("/slow.php"))
		ok = ok || err == nil && st == 200
		time.Sleep(50 * time.Millisecond)
		return ok && hasChange(s.Stderr(), "half-open->closed")
	})
	t.Logf("breaker changes: %v", breakerChanges(s.Stderr()))
	resp, body = get(t, s.Server, "/slow.php")
	wantStatus(t, resp, body, http.StatusOK)
}

// TestFastCGIClientAbort: a client that leaves mid-response stops the PHP
// script: fe-php aborts the FPM request, PHP's next write fails, and with
// ignore_user_abort off the script ends.
func TestFastCGIClientAbort(t *testing.T) {
	t.Parallel()
	s, _ := startFastCGI(t, fpmtest.Options{Children: 2}, "")
	counter := unique("counter")
	conn, err := net.DialTimeout("tcp", s.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(conn, "GET /abort.php?counter=%s HTTP/1.1\r\nHost: test\r\n\r\n", counter)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 4096)); err != nil {
		t.Fatalf("reading the first chunk: %v", err)
	}
	conn.Close()

	read := func() int {
		b, _ := os.ReadFile(filepath.Join(s.State, counter))
		n, _ := strconv.Atoi(string(b))
		return n
	}
	// Stable: unchanged for 1.5 s (15 rounds of the script's 100 ms).
	last, since := read(), time.Now()
	waitFor(t, 20*time.Second, "the counter to stop changing", func() bool {
		if n := read(); n != last {
			last, since = n, time.Now()
		}
		time.Sleep(50 * time.Millisecond)
		return time.Since(since) > 1500*time.Millisecond
	})
	t.Logf("the script stopped after %d of 50 rounds", last)
	if last >= 25 {
		t.Errorf("the script ran %d of 50 rounds after the client left: the FPM request was not aborted", last)
	}
	// FPM's children are free again.
	for range 3 {
		resp, body := get(t, s.Server, "/slow.php")
		wantStatus(t, resp, body, http.StatusOK)
	}
}

// TestFastCGIClientBodyAbort: clients that send less of a body than they
// announced and leave are the clients' fault: no 502 logged as an FPM
// failure, nothing counted against the circuit breaker (failure_threshold
// = 2 here: two such clients must not open it), FPM still serves.
func TestFastCGIClientBodyAbort(t *testing.T) {
	t.Parallel()
	s, _ := startFastCGI(t, fpmtest.Options{Children: 2}, `[backend.connection_pool]
max_size = 2

[backend.connection_pool.circuit_breaker]
enable = true
failure_threshold = 2
success_threshold = 1
timeout_seconds = 60
`)
	// Small bodies are read whole before FPM is contacted; large ones are
	// streamed to FPM while they arrive.
	for _, c := range []struct{ announced, sent int }{{1000, 10}, {1 << 20, 100 << 10}, {1000, 10}, {1 << 20, 100 << 10}} {
		conn, err := net.DialTimeout("tcp", s.Addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST /input.php HTTP/1.1\r\nHost: test\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n%s",
			c.announced, strings.Repeat("q", c.sent))
		time.Sleep(100 * time.Millisecond) // let the server start on it
		conn.Close()
	}
	// The requests above end once the server saw the clients leave.
	waitFor(t, 10*time.Second, "the 4 truncated uploads in the access log", func() bool {
		return strings.Count(s.Stdout(), "method=POST uri=/input.php") >= 4
	})
	resp, body := get(t, s.Server, "/slow.php")
	wantStatus(t, resp, body, http.StatusOK)
	waitLogQuiet(t, s.Server)
	if c := breakerChanges(s.Stderr()); len(c) > 0 {
		t.Errorf("clients leaving mid-upload changed the circuit breaker's state: %v", c)
	}
	if line := logLine(s.Stderr(), "fastcgi request failed"); line != "" {
		t.Errorf("a client leaving mid-upload is logged as an FPM failure: %s", line)
	}
}

// TestFastCGIStderr: what PHP logs (error_log(), warnings) comes back on
// FCGI_STDERR ("PHP message: hello-stderr") and lands in fe-php's log with
// the request id and the script; FPM also writes it to its own log (as
// "NOTICE: PHP message: ..."). What a script writes to its process's fd 2
// (php://stderr) never reaches fe-php: FPM catches it in its own log
// (catch_workers_output).
func TestFastCGIStderr(t *testing.T) {
	t.Parallel()
	s, f := startFastCGI(t, fpmtest.Options{Children: 1}, "")
	resp, body := get(t, s.Server, "/stderr.php")
	wantStatus(t, resp, body, http.StatusOK)
	if string(body) != "ok" {
		t.Errorf("body %q, want ok", body)
	}
	id := resp.Header.Get("X-Request-Id")
	var line string
	waitFor(t, 5*time.Second, "hello-stderr in fe-php's log with the request id", func() bool {
		line = logLine(s.Stderr(), "hello-stderr", "request_id="+id)
		return line != ""
	})
	if !strings.Contains(line, "stderr.php") {
		t.Errorf("the log line does not name the script: %s", line)
	}
	waitFor(t, 5*time.Second, "hello-fd2 in FPM's log", func() bool {
		return strings.Contains(f.Log(), "hello-fd2")
	})
	if strings.Contains(s.Stderr(), "hello-fd2") {
		t.Errorf("php://stderr output reached fe-php's log; FPM was expected to keep it")
	}
}
