// Package supervisor runs fe-php as nginx runs: a small supervisor process
// binds the listening sockets and runs server.workers worker processes,
// each a complete fe-php (with its own PHP threads) serving on copies of
// them.
//
// The supervisor never loads PHP, so a crash in PHP ends one worker: the
// listening sockets stay open in the supervisor and the other workers,
// only that worker's requests in flight fail, and a new worker replaces
// it at once (backed off when it keeps crashing). SIGHUP reloads the
// configuration: it is validated first, a new generation of workers
// starts on it, and only once all of them serve are the old ones drained.
// SIGUSR2 starts the binary on disk as a new supervisor that takes the
// sockets over the same way, after which this one drains and exits.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"golang.org/x/sys/unix"

	"github.com/fe-php/fe-php/internal/config"
	"github.com/fe-php/fe-php/internal/server"
)

// Options configure a Supervisor.
type Options struct {
	// ConfigPath is the configuration file; Config is it, loaded and
	// validated, and ConfigData its bytes.
	ConfigPath string
	Config     *config.Config
	ConfigData []byte
	// Log is the supervisor's log.
	Log *slog.Logger
	// Notify tells systemd of a state change (sd_notify); nil: nothing.
	Notify func(state string)
}

// generation is the workers of one configuration.
type generation struct {
	n    int
	cfg  *config.Config
	data []byte
	lns  *server.Listeners
	size int

	stopped bool // by stopAll (under Supervisor.mu): start no more of it
}

// errStopped is start's error for a worker whose generation was stopped
// while it started.
var errStopped = errors.New("its generation is stopping")

// Supervisor runs and replaces the worker processes. Create it with New;
// Run runs it until it is stopped.
type Supervisor struct {
	path   string
	exe    string // the binary on disk, for upgrades
	log    *slog.Logger
	notify func(string)

	controlDir  string // 0700, the workers' control sockets ("" without admin)
	nextControl int
	spawn       chan func() // runs on one locked thread: see spawner

	mu      sync.Mutex
	gen     *generation
	workers []*worker           // every live worker, of any generation
	crashes map[int]int         // consecutive early deaths by slot, for the backoff
	retired []*dto.MetricFamily // the counts of workers that exited (see retire)
	exits   chan *worker

	draining atomic.Bool
	stats    stats
}

// New prepares a supervisor for the configuration in o.
func New(o Options) (*Supervisor, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("cannot find fe-php's own binary: %w", err)
	}
	s := &Supervisor{
		path:    o.ConfigPath,
		exe:     exe,
		log:     o.Log,
		notify:  o.Notify,
		spawn:   make(chan func()),
		crashes: map[int]int{},
		exits:   make(chan *worker, 16),
	}
	if s.notify == nil {
		s.notify = func(string) {}
	}
	s.gen = &generation{n: 1, cfg: o.Config, data: o.ConfigData, size: o.Config.WorkerCount()}
	go s.spawner()
	return s, nil
}

// spawner starts the worker processes from one OS thread that never
// ends: Linux ties a child's parent-death signal to the thread that
// forked it, so a worker started from a thread Go later retires would be
// told its supervisor died.
func (s *Supervisor) spawner() {
	runtime.LockOSThread()
	for f := range s.spawn {
		f()
	}
}

func (s *Supervisor) start(g *generation, slot int) (*worker, error) {
	var w *worker
	var err error
	done := make(chan struct{})
	s.spawn <- func() {
		w, err = s.startWorker(g, slot, s.exits)
		close(done)
	}
	<-done
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.workers = append(s.workers, w)
	late := g.stopped || s.draining.Load()
	w.retired = w.retired || late
	s.mu.Unlock()
	if late {
		// Its generation was stopped while it started (a crashed worker
		// replaced as a reload swapped generations, a reload during the
		// shutdown): stopAll did not see it, so it would serve on.
		w.signal(syscall.SIGTERM)
		return nil, errStopped
	}
	return w, nil
}

// Run opens the listeners (or takes over an upgraded-from binary's),
// starts the first generation of workers and supervises them until ctx is
// done, then drains them. SIGHUP and SIGUSR2 reload and upgrade.
func (s *Supervisor) Run(ctx context.Context) error {
	cfg := s.gen.cfg
	up, err := upgradeHandoff()
	if err != nil {
		return err
	}
	var old *server.Listeners
	if up != nil {
		old = up.Listeners
	}
	if s.gen.lns, err = server.Listen(cfg, old); err != nil {
		if old != nil {
			old.Close()
		}
		return fmt.Errorf("cannot listen: %w", err)
	}
	if old != nil {
		old.CloseUnused(s.gen.lns)
	}
	defer func() { s.gen.lns.Close() }()
	if cfg.Admin.Listen != "" {
		removeStaleControlDirs()
		if s.controlDir, err = os.MkdirTemp("", controlDirPrefix+strconv.Itoa(os.Getpid())+"-"); err != nil {
			return err
		}
		defer os.RemoveAll(s.controlDir)
	}
	// Installed before the workers start: an early signal must not kill
	// the supervisor with its default action.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sigs)

	if err := s.startGeneration(ctx, s.gen); err != nil {
		s.stopAll(s.gen, 5*time.Second)
		if ctx.Err() != nil {
			s.log.Info("stopped before serving")
			return nil
		}
		return fmt.Errorf("the workers did not start: %w", err)
	}
	var admin *http.Server
	if s.gen.lns.Admin != nil {
		admin = s.newAdmin()
		go admin.Serve(s.gen.lns.Admin)
	}
	s.logServing(s.gen)
	if up != nil {
		up.Ready() // the old binary's supervisor now drains and exits
	}
	s.writePIDFile()
	s.notify("READY=1")

	busy := make(chan struct{}, 1) // one reload or upgrade at a time
	handedOver := make(chan struct{})
	for {
		select {
		case w := <-s.exits:
			s.exited(w)
		case sig := <-sigs:
			if sig == syscall.SIGUSR1 {
				s.reopenLogs()
				continue
			}
			select {
			case busy <- struct{}{}:
			default:
				s.log.Warn("a reload or upgrade is under way: signal ignored", slog.String("signal", sig.String()))
				continue
			}
			go func() {
				defer func() { <-busy }()
				if sig == syscall.SIGHUP {
					s.Reload(ctx)
					return
				}
				if s.upgrade(ctx) {
					close(handedOver)
				}
			}()
		case <-handedOver:
			s.shutdown(admin, false)
			return nil
		case <-ctx.Done():
			s.shutdown(admin, true)
			// A reload or upgrade under way stops too (an upgrade stops
			// the new binary): wait for it, or it would outlive us.
			busy <- struct{}{}
			return nil
		}
	}
}

// reopenLogs has every worker reopen its log files and re-read its
// certificate files (nginx's SIGUSR1, for logrotate): no PHP state is lost.
func (s *Supervisor) reopenLogs() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.workers {
		w.signal(syscall.SIGUSR1)
	}
	s.log.Info("asked the workers to reopen their logs (SIGUSR1)")
}

// startGeneration starts g's workers and waits until each serves; it
// fails if one exits first, if ctx ends (fe-php is stopping), or if none
// of that happens within a minute (libphp and OPcache start in well under
// a second).
func (s *Supervisor) startGeneration(ctx context.Context, g *generation) error {
	var ws []*worker
	for slot := range g.size {
		w, err := s.start(g, slot)
		if err != nil {
			return err
		}
		ws = append(ws, w)
	}
	timeout := time.NewTimer(time.Minute)
	defer timeout.Stop()
	for _, w := range ws {
		select {
		case <-w.ready:
		case <-w.done:
			if !w.servedBeforeExit() {
				return fmt.Errorf("worker %d (pid %d): %s", w.slot, w.pid, exitCause(w.state))
			}
			// It served, then died: a death like any other (replaced).
		case <-timeout.C:
			return fmt.Errorf("worker %d (pid %d) did not serve within a minute", w.slot, w.pid)
		case <-ctx.Done():
			return errors.New("fe-php is stopping")
		}
	}
	return nil
}

// stopAll stops g's workers (nil: every worker) and waits for them, up to
// grace; then kills what is left.
func (s *Supervisor) stopAll(g *generation, grace time.Duration) {
	s.mu.Lock()
	if g != nil {
		g.stopped = true
	}
	var ws []*worker
	for _, w := range s.workers {
		if g == nil || w.gen == g {
			w.retired = true
			ws = append(ws, w)
		}
	}
	s.mu.Unlock()
	for _, w := range ws {
		w.signal(syscall.SIGTERM)
	}
	deadline := time.After(grace)
	for _, w := range ws {
		select {
		case <-w.done:
		case <-deadline:
			for _, w := range ws {
				if !w.exited() {
					s.log.Warn("worker did not stop in time: killed", slog.Int("pid", w.pid))
					w.signal(syscall.SIGKILL)
				}
			}
			for _, w := range ws {
				<-w.done
			}
			return
		}
	}
}

// exited handles the end of a worker: unless it was retired on purpose,
// it is a crash, and a new worker takes its slot, at once the first time
// and after a growing delay when the slot's workers keep dying young.
func (s *Supervisor) exited(w *worker) {
	s.retire(w)
	s.mu.Lock()
	s.workers = slices.DeleteFunc(s.workers, func(x *worker) bool { return x == w })
	// A worker of the generation a reload starts that had served is
	// replaced too: the reload counts it as started, and would otherwise
	// swap in a generation one worker short for good.
	current := (w.gen == s.gen || w.isReady()) && !w.gen.stopped && !w.retired && !s.draining.Load()
	s.mu.Unlock()
	if !current {
		s.log.Debug("worker stopped", slog.Int("pid", w.pid), slog.String("status", exitCause(w.state)))
		return
	}
	s.stats.crashes.Add(1)
	lived := time.Since(w.started)
	s.mu.Lock()
	if lived < 10*time.Second || !w.isReady() {
		s.crashes[w.slot]++
	} else {
		s.crashes[w.slot] = 1
	}
	n := s.crashes[w.slot]
	s.mu.Unlock()
	delay := backoff(n)
	s.log.Error("worker died; replacing it", slog.Int("pid", w.pid), slog.Int("slot", w.slot),
		slog.String("cause", exitCause(w.state)), slog.Duration("lived", lived.Round(time.Millisecond)),
		slog.Duration("restart_in", delay))
	g := w.gen
	time.AfterFunc(delay, func() {
		s.mu.Lock()
		stale := g.stopped || s.draining.Load()
		s.mu.Unlock()
		if stale {
			return
		}
		nw, err := s.start(g, w.slot)
		if errors.Is(err, errStopped) {
			return
		}
		if err != nil {
			s.log.Error("cannot start a worker", slog.Int("slot", w.slot), slog.Any("error", err))
			return
		}
		go func() {
			select {
			case <-nw.ready:
				s.log.Info("worker replaced", slog.Int("pid", nw.pid), slog.Int("slot", nw.slot))
			case <-nw.done:
			}
		}()
	})
}

// backoff is the delay before the n-th consecutive replacement of a slot
// whose workers die young: none for the first, then 0.1 s doubling up to
// 10 s, so that a crash loop (a broken extension, a full disk) costs
// little CPU and log.
func backoff(n int) time.Duration {
	if n <= 1 {
		return 0
	}
	d := 100 * time.Millisecond << min(n-2, 7)
	return min(d, 10*time.Second)
}

// Reload re-reads the configuration file and, if it is valid, replaces
// the workers with a generation serving it; otherwise, or if the new
// workers do not start, the old ones keep serving. It reports whether
// the new configuration serves. ctx ends when fe-php stops.
func (s *Supervisor) Reload(ctx context.Context) bool {
	s.notify("RELOADING=1\nMONOTONIC_USEC=" + monotonicUsec())
	defer s.notify("READY=1")
	s.log.Info("reloading the configuration", slog.String("config", s.path))
	refuse := func(why string, err error) bool {
		s.stats.reloads(false)
		s.log.Error("reload refused: the running configuration keeps serving", slog.String("reason", why), slog.Any("error", err))
		return false
	}
	cfg, data, err := config.Read(s.path)
	if err != nil {
		return refuse("invalid configuration", err)
	}
	s.mu.Lock()
	old := s.gen
	s.mu.Unlock()
	if cfg.Admin.Listen != "" && s.controlDir == "" || cfg.Admin.Listen == "" && s.controlDir != "" {
		return refuse("admin.listen can only change its address on reload, not be turned on or off: restart", nil)
	}
	if a := old.lns.Keys[server.RoleAdmin]; cfg.Admin.Listen != "" && cfg.Admin.Listen != a {
		// The admin server serves the socket it started on: a new one
		// would be bound with no one answering it, and the old one closed
		// once the old workers stopped. It stays until a restart.
		s.log.Warn("admin.listen changed: it keeps its address until a restart", slog.String("admin", a))
		cfg.Admin.Listen = a
	}
	lns, err := server.Listen(cfg, old.lns)
	if err != nil {
		return refuse("cannot listen", err)
	}
	g := &generation{n: old.n + 1, cfg: cfg, data: data, lns: lns, size: cfg.WorkerCount()}
	if err := s.startGeneration(ctx, g); err != nil {
		s.stopAll(g, 5*time.Second)
		lns.CloseUnused(old.lns)
		return refuse("the new workers did not start", err)
	}
	s.mu.Lock()
	s.gen = g
	s.mu.Unlock()
	if p := old.cfg.Server.PIDFile; p != cfg.Server.PIDFile {
		s.removePIDFileAt(p)
		s.writePIDFile()
	}
	s.stats.reloads(true)
	s.log.Info("reloaded: the new workers serve; the old ones drain", slog.Int("generation", g.n), slog.Int("workers", g.size))
	go func() {
		s.stopAll(old, old.cfg.Server.ShutdownTimeout.Duration+5*time.Second)
		old.lns.CloseUnused(g.lns)
		s.log.Info("the old workers have stopped", slog.Int("generation", old.n))
	}()
	return true
}

// shutdown stops serving. Unless the sockets were handed over to a new
// binary, readiness fails first and the listeners close after
// admin.shutdown_delay (Kubernetes' order); then the workers drain in
// server.shutdown_timeout.
func (s *Supervisor) shutdown(admin *http.Server, delay bool) {
	if !delay && admin != nil {
		// Handed over: the new supervisor answers the probes now.
		admin.Shutdown(context.Background())
		admin = nil
	}
	s.draining.Store(true)
	s.notify("STOPPING=1")
	cfg := s.current().cfg
	if d := cfg.Admin.ShutdownDelay.Duration; delay && d > 0 && admin != nil {
		s.log.Info("draining: /readyz fails; the listeners close after shutdown_delay", slog.Duration("shutdown_delay", d))
		time.Sleep(d)
	}
	grace := cfg.Server.ShutdownTimeout.Duration
	s.log.Info("shutting down: the workers drain", slog.Duration("grace", grace))
	// The supervisor's copies first: once the workers close theirs, new
	// connections are refused rather than left in a backlog no one reads.
	lns := s.current().lns
	if admin == nil {
		lns.Close()
	} else {
		lns.CloseUnused(&server.Listeners{Admin: lns.Admin}) // closed by admin.Shutdown
	}
	s.stopAll(nil, grace+5*time.Second)
	if admin != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if admin.Shutdown(ctx) != nil {
			admin.Close()
		}
		cancel()
	}
	s.removePIDFile()
	s.log.Info("stopped")
}

func (s *Supervisor) current() *generation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
}

// liveWorkers returns the workers that serve, of any generation.
func (s *Supervisor) liveWorkers() []*worker {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ws []*worker
	for _, w := range s.workers {
		if w.isReady() && !w.exited() {
			ws = append(ws, w)
		}
	}
	return ws
}

// logServing logs the line that says fe-php serves, with its addresses.
func (s *Supervisor) logServing(g *generation) {
	attrs := []any{slog.String("listen", g.lns.HTTP.Addr().String())}
	if g.lns.HTTPS != nil {
		attrs = append(attrs, slog.String("tls_listen", g.lns.HTTPS.Addr().String()))
	}
	if g.lns.QUIC != nil {
		attrs = append(attrs, slog.String("http3", g.lns.QUIC.LocalAddr().String()))
	}
	if g.lns.Admin != nil {
		attrs = append(attrs, slog.String("admin", g.lns.Admin.Addr().String()))
	}
	attrs = append(attrs, slog.Int("workers", g.size), slog.Int("pid", os.Getpid()), slog.String("config", s.path),
		slog.String("default_backend", g.cfg.Backend.DefaultBackend), slog.Int("rules", len(g.cfg.Backend.RoutingRules)))
	s.log.Info("serving", attrs...)
}

// upgrade starts the binary on disk as a new supervisor on this one's
// sockets and waits until its workers serve: then it reports true and
// this supervisor drains; if the new one fails, this one keeps serving.
// If ctx is done first (fe-php is stopping), the new one is stopped.
func (s *Supervisor) upgrade(ctx context.Context) bool {
	g := s.current()
	s.log.Info("upgrading: starting the binary on disk", slog.String("binary", s.exe))
	fail := func(err error) bool {
		if ctx.Err() != nil {
			s.log.Warn("upgrade abandoned: fe-php is stopping", slog.Any("error", err))
			return false
		}
		s.log.Error("upgrade failed: the running binary keeps serving", slog.Any("error", err))
		return false
	}
	fds, err := g.lns.Dup()
	if err != nil {
		return fail(err)
	}
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	h := newHandoffFiles(s.path)
	statusR, statusW, err := pipe()
	if err != nil {
		return fail(err)
	}
	defer statusR.Close()
	h.w.StatusFD = h.add(statusW)
	h.sockets(fds, g.lns.Keys)
	env := append(childEnv(), h.env(envUpgrade))
	if ns := os.Getenv("NOTIFY_SOCKET"); ns != "" {
		env = append(env, "NOTIFY_SOCKET="+ns)
	}
	proc, err := startProcess(s.exe, append([]string{s.exe}, os.Args[1:]...), env, h, nil)
	unix.Close(statusW)
	if err != nil {
		return fail(err)
	}
	exited := make(chan struct{})
	go func() { proc.Wait(); close(exited) }()
	ready := make(chan error, 1)
	go func() { ready <- waitReady(statusR) }()
	select {
	case err = <-ready:
	case <-ctx.Done():
	case <-time.After(2 * time.Minute):
		err = errors.New("it did not serve within 2 minutes")
	}
	if err == nil && ctx.Err() != nil {
		// Stopping: the new binary must not serve on after this one.
		err = errors.New("fe-php is stopping")
	}
	if err != nil {
		proc.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			proc.Kill()
		}
		return fail(fmt.Errorf("the new binary (pid %d): %w", proc.Pid, err))
	}
	s.notify("MAINPID=" + strconv.Itoa(proc.Pid))
	s.log.Info("upgraded: the new binary serves; this supervisor drains and exits", slog.Int("new_pid", proc.Pid))
	return true
}

// writePIDFile writes server.pid_file, if set, all at once (a reader
// never sees it empty or half written).
func (s *Supervisor) writePIDFile() {
	p := s.current().cfg.Server.PIDFile
	if p == "" {
		return
	}
	tmp := p + ".tmp"
	err := os.WriteFile(tmp, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
		s.log.Error("cannot write server.pid_file", slog.Any("error", err))
	}
}

// removePIDFile removes the pid file if it still names this process (a
// new binary may have taken it over).
func (s *Supervisor) removePIDFile() {
	s.removePIDFileAt(s.current().cfg.Server.PIDFile)
}

func (s *Supervisor) removePIDFileAt(p string) {
	if p == "" {
		return
	}
	if b, err := os.ReadFile(p); err == nil && string(b) == strconv.Itoa(os.Getpid())+"\n" {
		os.Remove(p)
	}
}

// controlDirPrefix names the temporary directories of the workers'
// control sockets: "fe-php-workers-PID-RANDOM", PID the supervisor's.
const controlDirPrefix = "fe-php-workers-"

// removeStaleControlDirs removes the control socket directories of
// supervisors that are gone without cleaning up (killed with SIGKILL).
func removeStaleControlDirs() {
	matches, _ := filepath.Glob(filepath.Join(os.TempDir(), controlDirPrefix+"*"))
	for _, dir := range matches {
		pidStr, _, ok := strings.Cut(strings.TrimPrefix(filepath.Base(dir), controlDirPrefix), "-")
		pid, err := strconv.Atoi(pidStr)
		if !ok || err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(dir)
		}
	}
}

// monotonicUsec is CLOCK_MONOTONIC in microseconds, which systemd wants
// with RELOADING=1 (Type=notify-reload).
func monotonicUsec() string {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return "0"
	}
	return strconv.FormatInt(ts.Nano()/1000, 10)
}
