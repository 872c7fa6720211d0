package integration

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fe-php under systemd: it serves on the socket systemd passed (socket
// activation: the port is systemd's, and connections made before fe-php
// was ready wait in that socket's queue), and as a Type=notify service it
// says READY=1 once serving, RELOADING=1 then READY=1 on SIGHUP, and
// STOPPING=1 when SIGTERM begins the graceful shutdown.
func TestSystemdActivationAndNotify(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notifyPath := filepath.Join(dir, "notify.sock")
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	msgs := make(chan string, 32)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := nc.ReadFromUnix(buf)
			if err != nil {
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	next := func(what string) string {
		t.Helper()
		select {
		case m := <-msgs:
			return m
		case <-time.After(10 * time.Second):
			t.Fatalf("no systemd notification (%s) within 10s", what)
			return ""
		}
	}

	// The socket systemd would hold: bound (and listening) before fe-php runs.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lnFile, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	ln.Close() // the file keeps the socket
	defer lnFile.Close()
	addr := ln.Addr().String()

	root := filepath.Join(dir, "site")
	writeFiles(t, root, map[string]string{"index.html": "activated\n"})
	s := startServerListen(t, addr, `[backend]
default_backend = "static"

[backend.static_files]
root = "`+root+`"
`, nil, func(config string) *exec.Cmd {
		// LISTEN_PID must be fe-php's own pid: a shell sets it and execs.
		cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 NOTIFY_SOCKET="$1" exec "$2" run -c "$3"`,
			"sh", notifyPath, binary, config)
		cmd.ExtraFiles = []*os.File{lnFile} // fd 3, as systemd passes it
		return cmd
	})
	if s.Addr != addr {
		t.Fatalf("fe-php serves on %s, want systemd's socket %s", s.Addr, addr)
	}
	if m := next("start"); m != "READY=1" {
		t.Errorf("first notification %q, want READY=1", m)
	}
	resp, body := get(t, s, "/")
	if resp.StatusCode != 200 || string(body) != "activated\n" {
		t.Errorf("GET / on the passed socket: %s %q", describe(resp), body)
	}

	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if m := next("reload"); !strings.HasPrefix(m, "RELOADING=1\nMONOTONIC_USEC=") {
		t.Errorf("on SIGHUP: %q, want RELOADING=1 with MONOTONIC_USEC", m)
	}
	if m := next("reloaded"); m != "READY=1" {
		t.Errorf("after the reload: %q, want READY=1", m)
	}

	if code := s.Stop(t); code != 0 {
		t.Errorf("exit code %d", code)
	}
	if m := next("stop"); m != "STOPPING=1" {
		t.Errorf("on SIGTERM: %q, want STOPPING=1", m)
	}
}

// A socket systemd passed that no listen key names is refused at start,
// saying which.
func TestSystemdActivationUnknownSocket(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	defer f.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "fe-php.toml")
	os.WriteFile(cfg, []byte("[server]\nlisten = \"127.0.0.1:0\"\n[backend]\ndefault_backend = \"static\"\n[backend.static_files]\nroot = \""+dir+"\"\n"), 0o644)
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 exec "$1" run -c "$2"`, "sh", binary, cfg)
	cmd.ExtraFiles = []*os.File{f}
	cmd.Env = childEnv(nil)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("fe-php started with a socket no key names:\n%s", out)
	}
	if !strings.Contains(string(out), "systemd passed sockets that no listen key names: tcp "+ln.Addr().String()) {
		t.Errorf("the error does not name the socket:\n%s", out)
	}
}
