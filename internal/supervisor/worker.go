package supervisor

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"golang.org/x/sys/unix"

	"github.com/fe-php/fe-php/internal/server"
)

// worker is one worker process.
type worker struct {
	gen  *generation
	slot int
	proc *os.Process
	pid  int

	// control is the private socket the worker serves its metrics and
	// readiness on ("" without the admin listener); client speaks to it.
	control string
	client  *http.Client

	started time.Time
	ready   chan struct{} // closed once it serves
	status  chan struct{} // closed once its status pipe is read to the end (ready or not)
	done    chan struct{} // closed once it exited; state is then set
	state   *os.ProcessState

	retired bool // stopped on purpose (reload, shutdown): no replacement

	last []*dto.MetricFamily // its metrics as last scraped (under the supervisor's mu)
	gone bool                // its counts are retired (under the supervisor's mu)
}

// isReady reports whether the worker has said it serves.
func (w *worker) isReady() bool {
	select {
	case <-w.ready:
		return true
	default:
		return false
	}
}

// servedBeforeExit reports, for a worker that has exited, whether it had
// said it serves: its status pipe may still hold "ready" when its exit is
// seen first. A pipe a child of the worker keeps open is not waited for
// past a second.
func (w *worker) servedBeforeExit() bool {
	select {
	case <-w.status:
	case <-time.After(time.Second):
	}
	return w.isReady()
}

// exited reports whether the worker process has ended.
func (w *worker) exited() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the worker unless it has exited.
func (w *worker) signal(sig syscall.Signal) {
	if !w.exited() {
		w.proc.Signal(sig)
	}
}

// startWorker starts worker slot of g on lns; exits gets it once it
// has exited.
func (s *Supervisor) startWorker(g *generation, slot int, exits chan<- *worker) (*worker, error) {
	h := newHandoffFiles(s.path)
	var toClose []int // the child has its own copies once started
	defer func() {
		for _, fd := range toClose {
			unix.Close(fd)
		}
	}()
	cfgFD, err := configFile(g.data)
	if err != nil {
		return nil, err
	}
	toClose = append(toClose, cfgFD)
	h.w.ConfigFD = h.add(cfgFD)
	statusR, statusW, err := pipe()
	if err != nil {
		return nil, err
	}
	toClose = append(toClose, statusW)
	h.w.StatusFD = h.add(statusW)

	fds, err := g.lns.Dup()
	if err != nil {
		statusR.Close()
		return nil, err
	}
	for _, fd := range fds {
		toClose = append(toClose, fd)
	}
	delete(fds, server.RoleAdmin) // the supervisor answers it
	// One worker only reads the QUIC socket: a datagram of a connection
	// reaching another process's QUIC stack would break that connection.
	roles := []string{server.RoleHTTP, server.RoleHTTPS}
	if slot == 0 {
		roles = append(roles, server.RoleQUIC)
	}
	h.sockets(fds, g.lns.Keys, roles...)

	w := &worker{gen: g, slot: slot, ready: make(chan struct{}), status: make(chan struct{}), done: make(chan struct{})}
	if s.controlDir != "" {
		// The worker's private admin socket, in the supervisor's 0700
		// directory: opened here, so it exists before the worker runs.
		s.nextControl++
		w.control = filepath.Join(s.controlDir, "w"+strconv.Itoa(s.nextControl)+".sock")
		ln, err := net.Listen("unix", w.control)
		if err != nil {
			statusR.Close()
			return nil, fmt.Errorf("worker control socket: %w", err)
		}
		ul := ln.(*net.UnixListener)
		ul.SetUnlinkOnClose(false) // the worker's copy listens on
		fd, err := server.DupFD(ul)
		ul.Close()
		if err != nil {
			statusR.Close()
			return nil, err
		}
		toClose = append(toClose, fd)
		h.w.FDs[server.RoleAdmin] = h.add(fd)
		w.client = &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", w.control)
			},
			MaxIdleConns: 2,
		}, Timeout: 5 * time.Second}
	}

	// /proc/self/exe: this very binary, even if a newer one has replaced
	// it on disk since (that one starts with "fe-php upgrade").
	proc, err := startProcess("/proc/self/exe", []string{s.exe, "worker"}, append(childEnv(), h.env(envWorker)), h,
		&syscall.SysProcAttr{
			// Its own process group: a terminal's Ctrl-C reaches the
			// supervisor alone, which stops the workers in order.
			Setpgid: true,
			// A worker whose supervisor is gone (killed) drains and exits.
			Pdeathsig: syscall.SIGTERM,
		})
	if err != nil {
		statusR.Close()
		if w.control != "" {
			os.Remove(w.control)
		}
		return nil, err
	}
	w.proc, w.pid, w.started = proc, proc.Pid, time.Now()
	go func() {
		if waitReady(statusR) == nil {
			close(w.ready)
		}
		statusR.Close()
		close(w.status)
	}()
	go func() {
		w.state, _ = proc.Wait()
		if w.control != "" {
			os.Remove(w.control)
		}
		close(w.done)
		exits <- w
	}()
	return w, nil
}

// childEnv is the supervisor's environment without what is its alone:
// systemd's notification socket and socket activation variables, and a
// handoff it received.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", envWorker, envUpgrade:
			continue
		}
		env = append(env, kv)
	}
	return env
}

// exitCause says why a worker ended, for the log.
func exitCause(ps *os.ProcessState) string {
	if ps == nil {
		return "unknown"
	}
	ws, ok := ps.Sys().(syscall.WaitStatus)
	if !ok {
		return ps.String()
	}
	switch {
	case ws.Signaled():
		sig := ws.Signal()
		msg := "killed by signal " + unix.SignalName(sig)
		if ws.CoreDump() {
			msg += " (core dumped)"
		}
		switch sig {
		case syscall.SIGKILL:
			msg += " (the kernel's OOM killer, or kill -9: see dmesg)"
		case syscall.SIGSEGV, syscall.SIGBUS, syscall.SIGFPE, syscall.SIGILL, syscall.SIGABRT:
			// PHP runs on threads of its own (internal/embed), where a
			// fault takes the process down without Go's report.
			msg += " (a crash in PHP or a PHP extension: dmesg names the library)"
		}
		return msg
	case ws.Exited() && ws.ExitStatus() == 2:
		// Go's runtime exits 2 on a fatal signal in C code: a crash in
		// PHP or an extension, whose report precedes this line.
		return "exit status 2 (a fatal error: a crash in PHP or a PHP extension, e.g. SIGSEGV; its report is above)"
	case ws.Exited():
		return "exit status " + strconv.Itoa(ws.ExitStatus())
	}
	return ps.String()
}
