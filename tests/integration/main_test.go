package integration

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fe-php/fe-php/internal/testutil"
	"github.com/fe-php/fe-php/internal/testutil/pebbletest"
)

// binary is the fe-php executable TestMain builds.
var binary string

// buildTags are the tags the binary under test is built with: the test
// binary's own (see tags_bridge_test.go), so that "make test" tests the
// binary "make build" makes.
var buildTags string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "fe-php-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration: temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	defer pebbletest.Cleanup() // the ACME tests' Pebble, if they built it
	binary = filepath.Join(dir, "fe-php")
	goTool, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration: the go tool is not on PATH:", err)
		return 1
	}
	args := []string{"build", "-o", binary}
	if buildTags != "" {
		args = append(args, "-tags", buildTags)
	}
	// Under "go test -race" the server is race-checked too: a data race in
	// it then fails the test that ran into it (see Server's cleanup).
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command(goTool, append(args, "github.com/fe-php/fe-php/cmd/fe-php")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "integration: building fe-php: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// childEnv is env (nil: this process's environment) with GORACE set so
// that a race-enabled fe-php writes its data race reports to stderr, where
// the tests look for them (see raceReports), and exits with code 66 if it
// found any, whatever GORACE the tests run with: the race runtime reads its
// options in order and the last one wins.
func childEnv(env []string) []string {
	if env == nil {
		env = os.Environ()
	}
	gorace := "log_path=stderr exitcode=66"
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GORACE="); ok {
			gorace = strings.TrimSpace(v + " " + gorace)
			continue
		}
		out = append(out, kv)
	}
	return append(out, "GORACE="+gorace)
}

// raceReports returns the data race reports a race-enabled fe-php wrote to
// its stderr, from the first one on, or "" if there are none.
func raceReports(stderr string) string {
	i := strings.Index(stderr, "WARNING: DATA RACE")
	if i < 0 {
		return ""
	}
	// A report starts with a line of "=" above the warning.
	if sep := "==================\n"; strings.HasSuffix(stderr[:i], sep) {
		i -= len(sep)
	}
	const limit = 64 << 10
	if len(stderr)-i > limit {
		return stderr[i:i+limit] + "\n... (truncated)"
	}
	return stderr[i:]
}

// Server is a running fe-php process.
type Server struct {
	Addr string // host:port it serves on
	// TLSAddr and H3Addr are the HTTPS and HTTP/3 listeners' host:port
	// ("" when off).
	TLSAddr, H3Addr string
	// AdminAddr is the admin listener's host:port ("" when off).
	AdminAddr string
	// Workers is how many worker processes the supervisor runs, and PID
	// its process id.
	Workers, PID int
	Dir          string // temp dir holding the config and the files
	Root         string // Dir/root, where configs put the static root by convention
	Config       string // the config file's path

	cmd      *exec.Cmd
	stdout   testutil.SyncBuffer
	stderr   testutil.SyncBuffer
	done     chan struct{}
	exitCode int
	stopOnce sync.Once
}

// WorkerPIDs returns the process ids of the supervisor's worker
// processes now (the children of its process).
func (s *Server) WorkerPIDs(t testing.TB) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// "pid (comm) state ppid ...": comm may hold spaces and parens.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(s.cmd.Process.Pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// URL returns the absolute URL of path on s.
func (s *Server) URL(path string) string { return "http://" + s.Addr + path }

// Stdout is what the process wrote to stdout so far (the access log by
// default; it is flushed every second and at exit).
func (s *Server) Stdout() string { return s.stdout.String() }

// Stderr is what the process wrote to stderr so far (its log).
func (s *Server) Stderr() string { return s.stderr.String() }

// Done is closed when the process has exited.
func (s *Server) Done() <-chan struct{} { return s.done }

// ExitCode is the process's exit code; valid once Done is closed.
func (s *Server) ExitCode() int { return s.exitCode }

// Stop sends SIGTERM, waits for the process to exit and returns its exit
// code. It is safe to call more than once.
func (s *Server) Stop(t testing.TB) int {
	t.Helper()
	s.stopOnce.Do(func() {
		s.cmd.Process.Signal(syscall.SIGTERM)
	})
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
		t.Errorf("fe-php did not exit within 20s of SIGTERM; killed it\nstderr:\n%s", s.Stderr())
	}
	return s.exitCode
}

var (
	tlsListenField = regexp.MustCompile(`tls_listen=(\S+)|"tls_listen":"([^"]+)"`)
	h3Field        = regexp.MustCompile(`http3=(\S+)|"http3":"([^"]+)"`)
	adminField     = regexp.MustCompile(` admin=(\S+)|"admin":"([^"]+)"`)
	workersField   = regexp.MustCompile(` workers=(\d+)|"workers":(\d+)`)
	pidField       = regexp.MustCompile(` pid=(\d+)|"pid":(\d+)`)
)

var servingLine = regexp.MustCompile(`msg=serving listen=(\S+)|"msg":"serving","listen":"([^"]+)"`)

// startServer writes files (paths relative to a new temp dir; see
// writeFiles) and configTOML (with "{{dir}}" and "{{root}}" expanded) to
// that dir, forces server.listen to 127.0.0.1:0, starts fe-php run on it
// and waits until it logs the address it serves on. The process is
// stopped with SIGTERM when the test ends.
func startServer(t testing.TB, configTOML string, files map[string]string) *Server {
	t.Helper()
	return startServerCmd(t, configTOML, files, nil)
}

// startServerCmd is startServer with the command that runs "fe-php run -c
// CONFIG" made by command (nil: the binary itself), e.g. under a shell
// that sets limits first.
func startServerCmd(t testing.TB, configTOML string, files map[string]string, command func(config string) *exec.Cmd) *Server {
	t.Helper()
	return startServerListen(t, "127.0.0.1:0", configTOML, files, command)
}

// startServerAt is startServer with server.listen forced to addr (a fixed
// "127.0.0.1:PORT" that something outside fe-php must know in advance)
// instead of 127.0.0.1:0.
func startServerAt(t testing.TB, addr, configTOML string, files map[string]string) *Server {
	t.Helper()
	return startServerListen(t, addr, configTOML, files, nil)
}

// startServerListen is startServerCmd with server.listen forced to listen.
func startServerListen(t testing.TB, listen, configTOML string, files map[string]string, command func(config string) *exec.Cmd) *Server {
	t.Helper()
	dir := t.TempDir()
	s := &Server{Dir: dir, Root: filepath.Join(dir, "root"), Config: filepath.Join(dir, "fe-php.toml"), done: make(chan struct{})}
	writeFiles(t, dir, files)
	cfg := withListen(expand(configTOML, dir), listen)
	if err := os.WriteFile(s.Config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if command == nil {
		s.cmd = exec.Command(binary, "run", "-c", s.Config)
	} else {
		s.cmd = command(s.Config)
	}
	s.cmd.Dir = dir
	s.cmd.Env = childEnv(s.cmd.Env)
	s.cmd.Stdout = &s.stdout
	s.cmd.Stderr = &s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := s.cmd.Wait()
		var ee *exec.ExitError
		switch {
		case err == nil:
			s.exitCode = 0
		case errors.As(err, &ee):
			s.exitCode = ee.ExitCode()
		default:
			s.exitCode = -1
		}
		close(s.done)
	}()
	t.Cleanup(func() {
		code := s.Stop(t)
		if r := raceReports(s.Stderr()); r != "" {
			t.Errorf("fe-php (exit code %d) reported a data race:\n%s", code, r)
		}
		if t.Failed() {
			t.Logf("fe-php stderr:\n%s", tail(s.Stderr(), 4000))
			t.Logf("fe-php stdout:\n%s", tail(s.Stdout(), 4000))
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := servingLine.FindStringSubmatch(s.Stderr()); m != nil {
			s.Addr = m[1] + m[2]
			line := logLineWith(s.Stderr(), "serving")
			if m := tlsListenField.FindStringSubmatch(line); m != nil {
				s.TLSAddr = m[1] + m[2]
			}
			if m := h3Field.FindStringSubmatch(line); m != nil {
				s.H3Addr = m[1] + m[2]
			}
			if m := adminField.FindStringSubmatch(line); m != nil {
				s.AdminAddr = m[1] + m[2]
			}
			if m := workersField.FindStringSubmatch(line); m != nil {
				s.Workers, _ = strconv.Atoi(m[1] + m[2])
			}
			if m := pidField.FindStringSubmatch(line); m != nil {
				s.PID, _ = strconv.Atoi(m[1] + m[2])
			}
			return s
		}
		select {
		case <-s.done:
			t.Fatalf("fe-php exited (code %d) before serving\nconfig:\n%s\nstderr:\n%s", s.exitCode, cfg, s.Stderr())
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("fe-php did not log %q within 10s\nstderr:\n%s", "msg=serving listen=", s.Stderr())
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// expand replaces {{dir}} and {{root}} in s.
func expand(s, dir string) string {
	return strings.NewReplacer("{{dir}}", dir, "{{root}}", filepath.Join(dir, "root")).Replace(s)
}

// withListen sets server.listen in a config, adding the [server] table if
// the config has none.
func withListen(cfg, addr string) string {
	line := fmt.Sprintf("listen = %q\n", addr)
	re := regexp.MustCompile(`(?m)^\[server\][ \t]*\n`)
	if loc := re.FindStringIndex(cfg); loc != nil {
		return cfg[:loc[1]] + line + cfg[loc[1]:]
	}
	return "[server]\n" + line + "\n" + cfg
}

// writeFiles creates files under dir. A key ending in "/" is a directory;
// a value "symlink:TARGET" makes a symlink ({{dir}} and {{root}} expanded
// in TARGET); "sparse:N" makes a sparse file of N bytes (reads as zeros);
// "fifo:" makes a named pipe.
func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasPrefix(content, "symlink:"):
			if err := os.Symlink(expand(strings.TrimPrefix(content, "symlink:"), dir), p); err != nil {
				t.Fatal(err)
			}
		case content == "fifo:":
			if err := syscall.Mkfifo(p, 0o644); err != nil {
				t.Fatal(err)
			}
		case strings.HasPrefix(content, "sparse:"):
			n, err := strconv.ParseInt(strings.TrimPrefix(content, "sparse:"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			f, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.Truncate(n); err != nil {
				t.Fatal(err)
			}
			f.Close()
		default:
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// client never follows redirects and never asks for or decodes gzip on
// its own, so that tests see exactly what the server sent.
var client = &http.Client{
	Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 8},
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
	Timeout: 30 * time.Second,
}

// do sends method path to s with headers given as "Name: value" strings
// and returns the response with its body read.
func do(t testing.TB, s *Server, method, path string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	resp, err := client.Do(newRequest(t, s, method, path, nil, headers...))
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp, body
}

// newRequest builds a request to s with headers given as "Name: value".
func newRequest(t testing.TB, s *Server, method, path string, body io.Reader, headers ...string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, s.URL(path), body)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		k, v, ok := strings.Cut(h, ":")
		if !ok {
			t.Fatalf("bad header %q", h)
		}
		req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	return req
}

func get(t testing.TB, s *Server, path string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	return do(t, s, http.MethodGet, path, headers...)
}

// rawExchange writes req verbatim on a new TCP connection and returns
// every byte the server sent until it closed the connection.
func rawExchange(t testing.TB, addr, req string) []byte {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatalf("writing %q: %v", req, err)
	}
	out, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", req, err)
	}
	return out
}

// rawRequest writes "METHOD target HTTP/1.1" with headers and
// "Connection: close" verbatim on a new connection, so that the target
// reaches the server exactly as written, and parses the response.
func rawRequest(t testing.TB, addr, method, target string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n", method, target)
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	out := rawExchange(t, addr, b.String())
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(out)), &http.Request{Method: method, RequestURI: target})
	if err != nil {
		t.Fatalf("%s %q: unparsable response %q: %v", method, target, out, err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %q: reading body: %v", method, target, err)
	}
	return resp, body
}

func rawGet(t testing.TB, addr, target string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	return rawRequest(t, addr, http.MethodGet, target, headers...)
}

// runCLI runs fe-php with args in dir and returns its output and exit code.
func runCLI(t testing.TB, dir string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = dir
	cmd.Env = childEnv(nil)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("fe-php %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("fe-php %s did not exit within 20s", strings.Join(args, " "))
	}
	if r := raceReports(e.String()); r != "" {
		t.Errorf("fe-php %s (exit code %d) reported a data race:\n%s", strings.Join(args, " "), code, r)
	}
	return o.String(), e.String(), code
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wantStatus fails the test unless resp has the status code want.
func wantStatus(t testing.TB, resp *http.Response, body []byte, want int) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("%s: status %d, want %d; body %q", describe(resp), resp.StatusCode, want, trunc(body))
	}
}

// describe names the request a response answers, for messages.
func describe(resp *http.Response) string {
	if r := resp.Request; r != nil {
		if r.URL != nil {
			return r.Method + " " + r.URL.RequestURI()
		}
		return r.Method + " " + r.RequestURI
	}
	return "request"
}

func trunc(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}

// repoRoot is the repository's top directory (the tests run in
// tests/integration).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// clientDo sends req through c (with its cookie jar), following redirects
// or not, and reads the body.
func clientDo(t testing.TB, c *http.Client, req *http.Request, follow bool) (*http.Response, []byte) {
	t.Helper()
	if !follow {
		cc := *c
		cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		c = &cc
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", req.Method, req.URL, err)
	}
	return resp, body
}

// elfSymbol looks name up in the ELF file at path: its symbol table, or
// with dynamic its dynamic symbols (what a shared library exports or
// imports).
func elfSymbol(t testing.TB, path, name string, dynamic bool) (elf.Symbol, bool) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	read := f.Symbols
	if dynamic {
		read = f.DynamicSymbols
	}
	syms, err := read()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for _, s := range syms {
		if s.Name == name {
			return s, true
		}
	}
	return elf.Symbol{}, false
}
