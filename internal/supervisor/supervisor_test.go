package supervisor

import (
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fe-php/fe-php/internal/server"
)

func TestBackoff(t *testing.T) {
	want := []time.Duration{0, 0, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond,
		800 * time.Millisecond, 1600 * time.Millisecond, 3200 * time.Millisecond, 6400 * time.Millisecond,
		10 * time.Second, 10 * time.Second}
	for n, w := range want {
		if got := backoff(n); got != w {
			t.Errorf("backoff(%d) = %v, want %v", n, got, w)
		}
	}
	if got := backoff(1000); got != 10*time.Second {
		t.Errorf("backoff(1000) = %v", got)
	}
}

// exitCause says what ended a process in words an operator can act on.
func TestExitCause(t *testing.T) {
	for _, c := range []struct {
		script string
		want   string
	}{
		{"exit 3", "exit status 3"},
		{"exit 2", "a crash in PHP"},
		{"kill -KILL $$", "killed by signal SIGKILL (the kernel's OOM killer"},
		{"kill -SEGV $$", "killed by signal SIGSEGV (a crash in PHP"},
	} {
		cmd := exec.Command("/bin/sh", "-c", c.script)
		cmd.Run()
		if got := exitCause(cmd.ProcessState); !strings.Contains(got, c.want) {
			t.Errorf("%q: %q, want it to say %q", c.script, got, c.want)
		}
	}
	if got := exitCause(nil); got != "unknown" {
		t.Errorf("nil: %q", got)
	}
}

// waitReady tells a process that said it serves from one that exited
// first, whatever the reads' sizes.
func TestWaitReady(t *testing.T) {
	r, w := io.Pipe()
	go func() {
		w.Write([]byte("rea"))
		w.Write([]byte("dy\n"))
	}()
	if err := waitReady(r); err != nil {
		t.Errorf("ready in two writes: %v", err)
	}
	r, w = io.Pipe()
	go func() {
		w.Write([]byte("read"))
		w.Close()
	}()
	if err := waitReady(r); err == nil {
		t.Error("a pipe closed before the whole word counted as ready")
	}
}

// TestMain doubles as a stand-in "fe-php run" process for TestFind.
func TestMain(m *testing.M) {
	if os.Getenv("FEPHP_TEST_SLEEP") != "" {
		time.Sleep(30 * time.Second)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Find finds the "fe-php run" process of a configuration file by its -c,
// resolved against that process's working directory.
func TestFind(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "run", "-c", "site/fe-php.toml")
	cmd.Args[0] = "fe-php"
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "FEPHP_TEST_SLEEP=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	want := filepath.Join(dir, "site", "fe-php.toml")
	var pid int
	deadline := time.Now().Add(10 * time.Second)
	for pid == 0 && time.Now().Before(deadline) {
		pid, _ = Find(want, "")
		time.Sleep(10 * time.Millisecond)
	}
	if pid != cmd.Process.Pid {
		t.Fatalf("Find = %d, want %d", pid, cmd.Process.Pid)
	}
	if _, err := Find(filepath.Join(dir, "other.toml"), ""); err == nil {
		t.Error("Find found a server for a file none serves")
	}
	pidFile := filepath.Join(dir, "pid")
	os.WriteFile(pidFile, []byte("4242\n"), 0o644)
	if got, err := Find(want, pidFile); got != 4242 || err != nil {
		t.Errorf("Find with a pid file = %d, %v", got, err)
	}
}

// Handing a listening socket to a child leaves it in non-blocking mode:
// the socket is one open file shared by the supervisor and every worker,
// and in blocking mode a worker's accept would wait in the kernel, where
// closing the listener cannot end it (os/exec's ExtraFiles did that).
func TestHandOnKeepsSocketsNonBlocking(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	lns := &server.Listeners{HTTP: ln, Keys: map[string]string{server.RoleHTTP: "127.0.0.1:0"}}
	fds, err := lns.Dup()
	if err != nil {
		t.Fatal(err)
	}
	h := newHandoffFiles("x.toml")
	h.sockets(fds, lns.Keys)
	proc, err := startProcess("/bin/true", []string{"true"}, nil, h, nil)
	if err != nil {
		t.Fatal(err)
	}
	proc.Wait()
	for _, fd := range fds {
		unix.Close(fd)
	}
	rc, _ := ln.(*net.TCPListener).SyscallConn()
	var flags int
	rc.Control(func(fd uintptr) { flags, err = unix.FcntlInt(fd, unix.F_GETFL, 0) })
	if err != nil {
		t.Fatal(err)
	}
	if flags&unix.O_NONBLOCK == 0 {
		t.Error("the listening socket is in blocking mode after a child inherited it")
	}
}
