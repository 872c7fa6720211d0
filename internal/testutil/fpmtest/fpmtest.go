// Package fpmtest starts a real PHP-FPM (Debian's php8.2-fpm) for tests.
//
// Each FPM gets its own php-fpm.conf, php.ini, pid file and error log in a
// temporary directory, runs in the foreground (daemonize = no) in its own
// process group, and listens on a Unix socket in a short temporary directory
// or on 127.0.0.1:<free port>. t.Cleanup stops it.
package fpmtest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fe-php/fe-php/internal/testutil"
)

// Binary is the php-fpm executable Start runs.
var Binary = "/usr/sbin/php-fpm8.2"

// Options configure one FPM.
type Options struct {
	// Children is pm.max_children (pm = static); 0 means 2.
	Children int
	// Listen is "unix" (the default) or "tcp".
	Listen string
	// MaxRequests is pm.max_requests (0: children are never recycled).
	MaxRequests int
	// DocRoot is the pool's chdir; the PHP scripts of the test usually live there.
	// Empty: a new empty directory (see FPM.DocRoot).
	DocRoot string
	// ExtraINI is written to the pool as php_admin_value[name] = value.
	ExtraINI map[string]string
	// PoolExtra is appended verbatim to the pool section of php-fpm.conf.
	PoolExtra string
	// INIFile is the php.ini FPM reads ("": fpmtest's own, written from
	// phpINI), e.g. Debian's /etc/php/8.2/fpm/php.ini.
	INIFile string
}

// FPM is one running php-fpm master with its pool.
type FPM struct {
	// Network and Address are what a client dials: "unix" and the socket path,
	// or "tcp" and "127.0.0.1:port".
	Network, Address string
	// DocRoot is the pool's document root (absolute).
	DocRoot string
	// Dir holds php-fpm.conf, php.ini, the pid file and the error log.
	Dir string

	opts    Options
	logPath string
	conf    string
	ini     string

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{}
	output   *testutil.SyncBuffer
	stopped  bool
	watchdog *watchdog
}

// Start writes the configuration, starts php-fpm and waits until its socket
// accepts connections. It fails the test (it does not skip) if php-fpm is not
// installed.
func Start(t testing.TB, opts Options) *FPM {
	t.Helper()
	if _, err := os.Stat(Binary); err != nil {
		t.Fatalf("fpmtest: %s not found: install php8.2-fpm (scripts/deps.sh)", Binary)
	}
	if opts.Children <= 0 {
		opts.Children = 2
	}
	if opts.Listen == "" {
		opts.Listen = "unix"
	}
	f := &FPM{opts: opts, Dir: t.TempDir()}
	if opts.DocRoot == "" {
		f.DocRoot = filepath.Join(f.Dir, "docroot")
		if err := os.Mkdir(f.DocRoot, 0o755); err != nil {
			t.Fatal(err)
		}
	} else {
		abs, err := filepath.Abs(opts.DocRoot)
		if err != nil {
			t.Fatal(err)
		}
		f.DocRoot = abs
	}
	switch opts.Listen {
	case "unix":
		// t.TempDir() paths can exceed the 108-byte limit of a socket path.
		sockDir, err := os.MkdirTemp("", "fpm")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(sockDir) })
		f.Network, f.Address = "unix", filepath.Join(sockDir, "fpm.sock")
	case "tcp":
		f.Network, f.Address = "tcp", "127.0.0.1:"+strconv.Itoa(freePort(t))
	default:
		t.Fatalf("fpmtest: Listen %q: want unix or tcp", opts.Listen)
	}
	f.logPath = filepath.Join(f.Dir, "fpm.log")
	f.conf = filepath.Join(f.Dir, "php-fpm.conf")
	f.ini = filepath.Join(f.Dir, "php.ini")
	if err := os.WriteFile(f.conf, []byte(f.fpmConf()), 0o644); err != nil {
		t.Fatal(err)
	}
	if opts.INIFile != "" {
		f.ini = opts.INIFile
	} else if err := os.WriteFile(f.ini, []byte(phpINI), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Stop)
	f.start(t)
	return f
}

// phpINI replaces the distribution's php.ini (the conf.d extension files are
// still loaded), so that tests do not depend on local edits of it.
const phpINI = `; written by fpmtest
memory_limit = 128M
post_max_size = 64M
upload_max_filesize = 64M
max_execution_time = 30
display_errors = Off
log_errors = On
error_reporting = E_ALL
output_buffering = 0
implicit_flush = Off
expose_php = On
variables_order = "EGPCS"
request_order = "GP"
date.timezone = UTC
`

func (f *FPM) fpmConf() string {
	var b strings.Builder
	fmt.Fprintf(&b, "[global]\n")
	fmt.Fprintf(&b, "pid = %s\n", filepath.Join(f.Dir, "fpm.pid"))
	fmt.Fprintf(&b, "error_log = %s\n", f.logPath)
	fmt.Fprintf(&b, "log_level = notice\n")
	fmt.Fprintf(&b, "daemonize = no\n")
	fmt.Fprintf(&b, "\n[test]\n")
	fmt.Fprintf(&b, "listen = %s\n", f.Address)
	if f.Network == "unix" {
		fmt.Fprintf(&b, "listen.mode = 0666\n")
	}
	fmt.Fprintf(&b, "listen.backlog = 511\n")
	fmt.Fprintf(&b, "pm = static\n")
	fmt.Fprintf(&b, "pm.max_children = %d\n", f.opts.Children)
	fmt.Fprintf(&b, "pm.max_requests = %d\n", f.opts.MaxRequests)
	fmt.Fprintf(&b, "chdir = %s\n", f.DocRoot)
	fmt.Fprintf(&b, "catch_workers_output = yes\n")
	fmt.Fprintf(&b, "decorate_workers_output = no\n")
	fmt.Fprintf(&b, "clear_env = no\n")
	fmt.Fprintf(&b, "request_terminate_timeout = 60s\n")
	keys := make([]string, 0, len(f.opts.ExtraINI))
	for k := range f.opts.ExtraINI {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "php_admin_value[%s] = %s\n", k, f.opts.ExtraINI[k])
	}
	if f.opts.PoolExtra != "" {
		b.WriteString(f.opts.PoolExtra)
		b.WriteString("\n")
	}
	return b.String()
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (f *FPM) start(t testing.TB) {
	t.Helper()
	// -F: foreground, -R: allow running as root (the pool has no user =),
	// -y: our php-fpm.conf, -c: our php.ini.
	cmd := exec.Command(Binary, "-F", "-R", "-y", f.conf, "-c", f.ini)
	cmd.Dir = f.DocRoot
	out := &testutil.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("fpmtest: start %s: %v", Binary, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	wd := startWatchdog(cmd.Process.Pid)
	f.mu.Lock()
	f.cmd, f.exited, f.output, f.stopped, f.watchdog = cmd, exited, out, false, wd
	f.mu.Unlock()

	// Wait for the listener and for all children (with pm = static they are
	// forked right after the socket is bound), then for one connection to
	// work; wait for FPM to have closed that probe connection too, so that
	// ConnCount starts at 0.
	deadline := time.Now().Add(15 * time.Second)
	fail := func(format string, args ...any) {
		f.Kill()
		t.Fatalf("fpmtest: "+format+"\noutput:\n%s\nlog:\n%s", append(args, out.String(), f.Log())...)
	}
	var lastErr error
	for phase := 0; phase < 3; {
		select {
		case <-exited:
			t.Fatalf("fpmtest: php-fpm exited at start-up: %v\noutput:\n%s\nlog:\n%s", cmd.ProcessState, out.String(), f.Log())
		default:
		}
		switch phase {
		case 0:
			if f.listening() && f.childCount() >= f.opts.Children {
				phase++
				continue
			}
		case 1:
			c, err := net.DialTimeout(f.Network, f.Address, time.Second)
			if err == nil {
				c.Close()
				phase++
				continue
			}
			lastErr = err
		case 2:
			if f.ConnCount(t) == 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			fail("php-fpm not ready on %s %s within 15s (phase %d, last error: %v)", f.Network, f.Address, phase, lastErr)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// listening reports whether FPM's listen socket is there, without connecting.
func (f *FPM) listening() bool {
	if f.Network == "unix" {
		_, err := os.Stat(f.Address)
		return err == nil
	}
	_, portStr, _ := net.SplitHostPort(f.Address)
	port, _ := strconv.Atoi(portStr)
	want := fmt.Sprintf("0100007F:%04X", port)
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return true // cannot tell: let the dial decide
	}
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 3 && fields[1] == want && fields[3] == "0A" { // TCP_LISTEN
			return true
		}
	}
	return false
}

// Pid returns the master's process id (0 when not running).
func (f *FPM) Pid() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cmd == nil || f.cmd.Process == nil || f.stopped {
		return 0
	}
	return f.cmd.Process.Pid
}

// ChildPids returns the process ids of the master's children.
func (f *FPM) ChildPids() []int {
	pid := f.Pid()
	if pid == 0 {
		return nil
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return nil
	}
	var pids []int
	for _, s := range strings.Fields(string(data)) {
		if n, err := strconv.Atoi(s); err == nil {
			pids = append(pids, n)
		}
	}
	return pids
}

func (f *FPM) childCount() int { return len(f.ChildPids()) }

// Stop stops FPM gracefully (SIGQUIT), then with SIGKILL to the whole process
// group if it has not exited within 5 seconds. It is safe to call twice.
func (f *FPM) Stop() {
	f.mu.Lock()
	cmd, exited, stopped, wd := f.cmd, f.exited, f.stopped, f.watchdog
	f.stopped = true
	f.mu.Unlock()
	if cmd == nil || stopped {
		return
	}
	cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
	// Children that outlived the master (they should not) go too.
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	wd.stop()
}

// Kill sends SIGKILL to the master and its children (the process group) and
// waits for the master to exit.
func (f *FPM) Kill() {
	f.mu.Lock()
	cmd, exited, stopped, wd := f.cmd, f.exited, f.stopped, f.watchdog
	f.stopped = true
	f.mu.Unlock()
	if cmd == nil || stopped {
		return
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-exited
	wd.stop()
}

// Restart stops FPM (gracefully) and starts it again on the same address.
func (f *FPM) Restart(t testing.TB) {
	t.Helper()
	f.Stop()
	if f.Network == "unix" {
		os.Remove(f.Address)
	}
	f.start(t)
}

// Log returns the content of FPM's error log (worker output included, as
// catch_workers_output = yes).
func (f *FPM) Log() string {
	data, _ := os.ReadFile(f.logPath)
	return string(data)
}

// ConnCount returns how many connections to FPM's listen socket exist on the
// server side right now: queued in the accept backlog, served, or half-closed
// by FPM but still held by it. On TCP these are the entries of
// /proc/net/tcp{,6} with FPM's port as local port that are ESTABLISHED, or in
// a closing state while still owned by a process (inode != 0); on a Unix
// socket the connected or connecting (queued) entries of /proc/net/unix bound
// to FPM's socket path.
//
// FPM closes its end of a connection only after the client closed its own:
// a connection the client keeps open is counted, even one FPM is done with.
func (f *FPM) ConnCount(t testing.TB) int {
	t.Helper()
	if f.Network == "unix" {
		return countUnix(t, f.Address)
	}
	_, portStr, err := net.SplitHostPort(f.Address)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(portStr)
	n := 0
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		n += countTCP(t, file, port)
	}
	return n
}

// TCP states in /proc/net/tcp (include/net/tcp_states.h).
const (
	tcpEstablished = "01"
	tcpFinWait1    = "04"
	tcpFinWait2    = "05"
	tcpCloseWait   = "08"
	tcpLastAck     = "09"
	tcpClosing     = "0B"
)

func countTCP(t testing.TB, file string, port int) int {
	data, err := os.ReadFile(file)
	if err != nil {
		if os.IsNotExist(err) {
			return 0
		}
		t.Fatal(err)
	}
	want := fmt.Sprintf(":%04X", port)
	n := 0
	// The kernel writes the table in pages: a line can appear twice when
	// the table changes during the read, so count each connection once.
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Scan() // header
	for sc.Scan() {
		// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || !strings.HasSuffix(fields[1], want) || seen[fields[1]+" "+fields[2]] {
			continue
		}
		seen[fields[1]+" "+fields[2]] = true
		switch st, inode := fields[3], fields[9]; st {
		case tcpEstablished: // accepted, or queued (inode 0)
			n++
		case tcpFinWait1, tcpFinWait2, tcpCloseWait, tcpLastAck, tcpClosing:
			if inode != "0" { // still held by FPM, not an orphan
				n++
			}
		}
	}
	return n
}

func countUnix(t testing.TB, path string) int {
	data, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	seen := map[string]bool{} // a line may appear twice (see countTCP)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	sc.Scan() // header
	for sc.Scan() {
		// Num RefCount Protocol Flags Type St Inode Path
		fields := strings.Fields(sc.Text())
		if len(fields) < 8 || fields[7] != path || seen[fields[6]] {
			continue
		}
		seen[fields[6]] = true
		// The listener is unconnected (St 01, __SO_ACCEPTCON in Flags).
		// Server ends carry the listener's path: St 02 while queued in the
		// backlog, 03 once connected (and still after a shutdown).
		if st := fields[5]; st == "02" || st == "03" {
			n++
		}
	}
	return n
}

// watchdog kills FPM's process group when the test process dies without
// cleaning up (a test timeout panics past t.Cleanup): FPM's children survive
// their master's death, and would keep the socket and run forever. It is a
// shell that blocks reading a pipe whose only writer is this process.
type watchdog struct {
	cmd *exec.Cmd
	w   *os.File
}

func startWatchdog(pgid int) *watchdog {
	r, w, err := os.Pipe()
	if err != nil {
		return nil
	}
	defer r.Close()
	cmd := exec.Command("/bin/sh", "-c", fmt.Sprintf("read -r _; kill -KILL -%d 2>/dev/null", pgid))
	cmd.Stdin = r
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil
	}
	return &watchdog{cmd: cmd, w: w}
}

// stop ends the watchdog without letting it kill anything.
func (wd *watchdog) stop() {
	if wd == nil {
		return
	}
	wd.cmd.Process.Kill()
	wd.cmd.Wait()
	wd.w.Close()
}
