// Command fe-php is a PHP application server: one binary that serves each
// request path through the backend that fits it best (embedded libphp,
// PHP-FPM over FastCGI, or static files), chosen by a TOML file.
//
//	fe-php run     [-c FILE]          serve (a supervisor and its workers)
//	fe-php reload  [-c FILE]          validate FILE, then have the running server reload it
//	fe-php upgrade [-c FILE]          have the running server re-execute its binary
//	fe-php check   [-c FILE]          validate a config, print every error
//	fe-php routes  [-c FILE] PATH...  show which rule and backend serve each path
//	fe-php version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"syscall"
	"text/tabwriter"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/fe-php/fe-php/internal/config"
	"github.com/fe-php/fe-php/internal/router"
	"github.com/fe-php/fe-php/internal/server"
	"github.com/fe-php/fe-php/internal/supervisor"
	"github.com/fe-php/fe-php/internal/version"
)

const defaultConfig = "fe-php.toml"

const usage = `usage:
  fe-php run     [-c FILE]          serve HTTP with the configuration in FILE
  fe-php reload  [-c FILE]          validate FILE, then tell the server running it to reload it
  fe-php upgrade [-c FILE]          tell the server running FILE to start the binary on disk in its place
  fe-php check   [-c FILE]          validate FILE; print every error; exit 1 if any
  fe-php routes  [-c FILE] PATH...  print the rule and backend that serve each path
  fe-php version                    print the version

FILE defaults to ./fe-php.toml.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("fe-php "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	cfgPath := fs.String("c", defaultConfig, "configuration file")
	switch cmd {
	case "worker": // started by "fe-php run" only
		return cmdWorker(stderr)
	case "run", "check", "routes", "reload", "upgrade":
		if err := fs.Parse(args); err != nil {
			return 2
		}
	case "version", "-v", "--version":
		fmt.Fprintln(stdout, versionString())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "fe-php: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	switch cmd {
	case "run":
		return cmdRun(*cfgPath, stderr)
	case "check":
		return cmdCheck(*cfgPath, stdout, stderr)
	case "reload":
		return cmdSignal(*cfgPath, syscall.SIGHUP, stdout, stderr)
	case "upgrade":
		return cmdSignal(*cfgPath, syscall.SIGUSR2, stdout, stderr)
	default:
		return cmdRoutes(*cfgPath, fs.Args(), stdout, stderr)
	}
}

func versionString() string {
	rev := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				rev = " " + s.Value[:12]
			}
		}
	}
	return fmt.Sprintf("fe-php %s%s (%s %s/%s)", version.Version, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// printErrors prints a config error, one problem a line.
func printErrors(w io.Writer, err error) int {
	var errs config.Errors
	if errors.As(err, &errs) {
		for _, e := range errs {
			fmt.Fprintln(w, e)
		}
		return len(errs)
	}
	fmt.Fprintln(w, err)
	return 1
}

func cmdCheck(path string, stdout, stderr io.Writer) int {
	cfg, err := config.Load(path)
	if err != nil {
		n := printErrors(stderr, err)
		fmt.Fprintf(stderr, "%s: %d error(s); the configuration is not valid\n", path, n)
		return 1
	}
	// Build the backends too, as run would, without listening: this
	// catches what only building shows (as "nginx -t" does). The access
	// log is checked, not opened: check often runs as root, and a log file
	// it created would then be root's, unwritable by the service's user.
	if out := cfg.Server.AccessLog.Output; out != "off" && out != "stdout" && out != "stderr" {
		if err := checkLogPath(out); err != nil {
			fmt.Fprintf(stderr, "%s: server.access_log.output: %v\n%s: the configuration is not valid\n", path, err, path)
			return 1
		}
		cfg.Server.AccessLog.Output = "off"
	}
	srv, err := server.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		errs := []error{err}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			errs = j.Unwrap()
		}
		for _, e := range errs {
			fmt.Fprintf(stderr, "%s: %v\n", path, e)
		}
		fmt.Fprintf(stderr, "%s: the configuration is not valid\n", path)
		return 1
	}
	srv.Close()
	fmt.Fprintf(stdout, "%s: configuration OK (listen %s, default backend %s, %d routing rules)\n",
		path, cfg.Server.Listen, cfg.Backend.DefaultBackend, len(cfg.Backend.RoutingRules))
	return 0
}

func cmdRoutes(path string, paths []string, stdout, stderr io.Writer) int {
	if len(paths) == 0 {
		fmt.Fprintf(stderr, "fe-php routes: name at least one request path, e.g. fe-php routes /api/users /logo.png\n")
		return 2
	}
	cfg, err := config.Load(path)
	if err != nil {
		printErrors(stderr, err)
		return 1
	}
	rt, err := router.FromConfig(&cfg.Backend)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PATH\tMATCHED AS\tRULE\tPRIORITY\tBACKEND")
	for _, raw := range paths {
		u, err := url.Parse(raw)
		var cleaned string
		var i int
		ok := err == nil
		if ok {
			cleaned, i, ok = rt.Route(u.Path) // what the server does
		}
		if !ok {
			fmt.Fprintf(tw, "%s\t-\tnot a request path (want /...)\t-\t-\n", raw)
			continue
		}
		rule, prio, backend := "default_backend", "-", cfg.Backend.DefaultBackend
		if i >= 0 {
			r := rt.Rules()[i]
			rule = fmt.Sprintf("routing_rules[%d] %s %q", r.Index, r.Kind, r.Value)
			prio = fmt.Sprint(r.Priority)
			backend = r.Backend
		} else if !cfg.Backend.EnableHybrid {
			rule = "default_backend (enable_hybrid = false)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", raw, cleaned, rule, prio, backend)
	}
	tw.Flush()
	return 0
}

func newLogger(c *config.Server, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(c.LogLevel)) // validated already
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// cmdRun runs the supervisor: it binds the listeners and runs the worker
// processes (cmdWorker) that serve on them.
func cmdRun(path string, stderr io.Writer) int {
	cfg, data, err := config.Read(path)
	if err == nil {
		return supervise(path, cfg, data, stderr)
	}
	printErrors(stderr, err)
	fmt.Fprintf(stderr, "fe-php: not starting: fix %s (fe-php check -c %s lists every problem)\n", path, path)
	return 1
}

func supervise(path string, cfg *config.Config, data []byte, stderr io.Writer) int {
	log := newLogger(&cfg.Server, stderr)
	sup, err := supervisor.New(supervisor.Options{
		ConfigPath: path,
		Config:     cfg,
		ConfigData: data,
		Log:        log,
		Notify:     func(state string) { sdNotify(log, state) },
	})
	if err != nil {
		log.Error("not starting", slog.Any("error", err))
		return 1
	}
	// The signal handlers stay installed until the process exits: with
	// the default action back, a second SIGTERM during the graceful
	// shutdown would kill the supervisor before its workers have drained.
	ctx, _ := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	if err := sup.Run(ctx); err != nil {
		log.Error("not starting", slog.String("config", path), slog.Any("error", err))
		return 1
	}
	return 0
}

// cmdWorker is a worker process: a complete fe-php serving on the sockets
// and the configuration its supervisor handed it.
func cmdWorker(stderr io.Writer) int {
	h, err := supervisor.WorkerHandoff()
	if err != nil {
		fmt.Fprintf(stderr, "fe-php worker: %v\n", err)
		return 2
	}
	cfg, err := config.Parse(h.Config, h.ConfigData)
	if err != nil {
		printErrors(stderr, err)
		return 1
	}
	cfg.Admin.ShutdownDelay.Duration = 0 // the supervisor waits it out
	log := newLogger(&cfg.Server, stderr)
	srv, err := server.New(cfg, log)
	if err != nil {
		log.Error("not starting", slog.String("config", h.Config), slog.Any("error", err))
		return 1
	}
	defer srv.Close()
	srv.Worker = true
	srv.OnServing = h.Ready
	ctx, _ := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	// Notify before the goroutine starts: an early signal must not kill us.
	reopen := make(chan os.Signal, 1)
	signal.Notify(reopen, syscall.SIGHUP, syscall.SIGUSR1)
	go reopenLogs(ctx, reopen, srv, log)
	if err := srv.Serve(ctx, h.Listeners); err != nil {
		log.Error("server error", slog.Any("error", err))
		return 1
	}
	return 0
}

// reopenLogs reopens log files (logrotate) and re-reads certificate
// files when the supervisor passes SIGUSR1 on.
func reopenLogs(ctx context.Context, sig <-chan os.Signal, srv *server.Server, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-sig:
			if err := srv.Reload(); err != nil {
				log.Error("reopening logs", slog.Any("error", err))
			} else {
				log.Info("logs reopened, certificates re-read")
			}
		}
	}
}

// cmdSignal sends sig to the supervisor serving the configuration at
// path, after validating it when reloading.
func cmdSignal(path string, sig syscall.Signal, stdout, stderr io.Writer) int {
	what := map[syscall.Signal]string{syscall.SIGHUP: "reload", syscall.SIGUSR2: "upgrade"}[sig]
	cfg, err := config.Load(path)
	if err != nil {
		n := printErrors(stderr, err)
		fmt.Fprintf(stderr, "%s: %d error(s); no %s: the running configuration keeps serving\n", path, n, what)
		return 1
	}
	pid, err := supervisor.Find(path, cfg.Server.PIDFile)
	if err != nil {
		fmt.Fprintf(stderr, "fe-php: %v\n", err)
		return 1
	}
	if err := syscall.Kill(pid, sig); err != nil {
		fmt.Fprintf(stderr, "fe-php: signalling the server (pid %d): %v\n", pid, err)
		return 1
	}
	fmt.Fprintf(stdout, "fe-php: asked the server (pid %d) to %s; its log says how it went\n", pid, what)
	return 0
}

// sdNotify tells systemd of a state change (Type=notify services); a
// failure is logged, never fatal.
func sdNotify(log *slog.Logger, state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		log.Warn("systemd notification failed", slog.String("state", state), slog.Any("error", err))
	}
}

// checkLogPath tells whether a log file could be opened for appending at
// path, without creating it: an existing file must be a regular file, a
// new one needs an existing directory.
func checkLogPath(path string) error {
	if fi, err := os.Stat(path); err == nil {
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file", path)
		}
		return nil
	}
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("directory of the log file: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	return nil
}
