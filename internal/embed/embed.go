// Package embed is fe-php's embedded backend: PHP (a ZTS libphp, loaded
// from php.libphp_path at start) executing requests in-process.
//
// The goroutine serving the HTTP request takes one of worker_pool_size
// slots, lays the request out in the slot's C memory, and has PHP run it
// (placement.go says where: on the slot's own PHP thread, or inline on
// the goroutine's thread for scripts known to be short). A thread gets
// its PHP context (TSRM) the first time it runs PHP and keeps it, until
// it has served worker_max_requests requests and the context is
// recycled. A response that PHP does not stream comes back whole, headers
// and body, so a typical request crosses from C into Go zero times.
//
// Threads run PHP on an explicit 64 MiB stack (see loader.c), whatever
// ulimit -s says. PHP shares the process: a segfault in PHP or in an
// extension ends the worker process (the supervisor starts another);
// paths that run untrusted, leaky or long code belong on fastcgi.
package embed

/*
#include <stdlib.h>
#include "loader.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/fe-php/fe-php/internal/config"
	"github.com/fe-php/fe-php/internal/phpini"
	"github.com/fe-php/fe-php/internal/phpreq"
)

// Options configures the embedded backend.
type Options struct {
	// LibPHPPath is the ZTS libphp to load.
	LibPHPPath string
	// Workers is how many requests execute PHP at once (worker_pool_size).
	Workers int
	// MaxRequests recycles a thread's PHP context after this many
	// requests (0: never).
	MaxRequests int
	// WaitTimeout bounds the wait for a free slot (503 after).
	WaitTimeout time.Duration
	// INIFile is a php.ini to load instead of the build's; "" loads the
	// build's php.ini and scan dir, "none" loads no php.ini at all.
	INIFile string
	// INI overrides php.ini settings ([php.ini] table).
	INI map[string]string
	// Opcache is the [php.opcache] section.
	Opcache config.Opcache
	// ShutdownTimeout bounds how long Close waits for running scripts.
	ShutdownTimeout time.Duration
	Logger          *slog.Logger
	// SlotWait, if set, observes each request's wait for a slot, in
	// seconds (0 when one was free at once): a metrics histogram.
	SlotWait interface{ Observe(float64) }
}

// Backend is the embedded backend: a phpreq.Runner that executes
// requests in this process.
type Backend struct {
	opts  Options
	log   *slog.Logger
	slots chan int
	jobs  []job
	wait  time.Duration

	waiting atomic.Int64 // requests waiting for a slot
	clock   scriptClock  // how long scripts run: where their requests run

	contexts atomic.Int64     // PHP contexts that exist, as of the last request
	recycled [2]atomic.Uint64 // contexts recycled: after max_requests, after a failure
}

// countContexts notes what the bridge said of a request's PHP context.
func (b *Backend) countContexts(recycled, contexts int) {
	switch recycled {
	case C.FEPHP_RECYCLED_MAX_REQUESTS:
		b.recycled[0].Add(1)
	case C.FEPHP_RECYCLED_FAILURE:
		b.recycled[1].Add(1)
	}
	b.contexts.Store(int64(contexts))
}

// Contexts reports the PHP contexts that exist (as of the last request)
// and how many were recycled, after worker_max_requests requests and
// after a request that did not end cleanly: for metrics.
func (b *Backend) Contexts() (alive int, byMaxRequests, afterFailure uint64) {
	return int(b.contexts.Load()), b.recycled[0].Load(), b.recycled[1].Load()
}

// Slots reports the slots executing PHP now (busy), worker_pool_size
// (total) and the requests waiting for a slot: for metrics and readiness.
func (b *Backend) Slots() (busy, total, waiting int) {
	total = b.opts.Workers
	return total - len(b.slots), total, int(b.waiting.Load())
}

// current is the process's one Backend: PHP starts once per process.
var current registry

type registry struct {
	b atomic.Pointer[Backend]
}

func (r *registry) backend() *Backend { return r.b.Load() }

func (r *registry) job(h uintptr) *job {
	b := r.b.Load()
	if b == nil || h >= uintptr(len(b.jobs)) {
		return nil
	}
	return &b.jobs[h]
}

var (
	startMu sync.Mutex
	started bool
)

// New loads libphp, starts PHP and returns the backend. It must be called
// on the main goroutine (PHP starts on the main thread), once per process.
func New(opts Options) (*Backend, error) {
	startMu.Lock()
	defer startMu.Unlock()
	if started {
		return nil, errors.New("PHP is already started in this process")
	}
	if opts.Workers < 1 {
		opts.Workers = 1
	}
	b := &Backend{opts: opts, log: opts.Logger, wait: opts.WaitTimeout}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if err := loadLibPHP(opts.LibPHPPath, bridgeSO); err != nil {
		return nil, err
	}
	b.slots = make(chan int, opts.Workers)
	b.jobs = make([]job, opts.Workers)
	for i := range b.jobs {
		b.jobs[i].slot = i
		b.jobs[i].creq = (*C.fephp_request)(C.calloc(1, C.sizeof_fephp_request))
		b.slots <- i
	}
	current.b.Store(b)

	cfg := (*C.fephp_config)(C.calloc(1, C.sizeof_fephp_config))
	defer C.free(unsafe.Pointer(cfg))
	defaults := C.CString(iniDefaults)
	entries := C.CString(b.iniEntries())
	cfg.ini_defaults = defaults // kept: PHP reads it during startup only, freed below
	cfg.ini_entries = entries
	cfg.max_requests = C.int(opts.MaxRequests)
	cfg.max_contexts = C.int(maxContexts(opts.Workers))
	switch opts.INIFile {
	case "":
	case "none":
		cfg.ini_none = 1
	default:
		cfg.ini_file = C.CString(opts.INIFile)
		defer C.free(unsafe.Pointer(cfg.ini_file))
	}
	defer C.free(unsafe.Pointer(defaults))
	defer C.free(unsafe.Pointer(entries))
	if C.fephp_call_startup(cfg) != 0 {
		current.b.Store(nil)
		return nil, fmt.Errorf("starting PHP from %s: %s", opts.LibPHPPath, C.GoString(&cfg.error[0]))
	}
	started = true
	// A script's write to a closed socket raises SIGPIPE on its PHP
	// thread. On a thread Go did not make, Go's handler passes on only the
	// signals os/signal wants and re-raises the others with their default
	// action, which for SIGPIPE ends the process. Wanting it (and never
	// reading the channel: a full one drops them) makes it harmless; the
	// write fails with EPIPE, as in PHP-FPM, which ignores SIGPIPE.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	if err := b.startThreads(); err != nil {
		return nil, err
	}
	loaded, scanned := "none", "none"
	if cfg.ini_loaded != nil {
		loaded = C.GoString(cfg.ini_loaded)
	}
	if cfg.ini_scanned != nil {
		scanned = strings.Join(strings.Fields(strings.ReplaceAll(C.GoString(cfg.ini_scanned), ",", " ")), " ")
	}
	b.log.Info("php started", slog.String("libphp", opts.LibPHPPath), slog.String("php_ini", loaded), slog.String("php_ini_scanned", scanned))
	return b, nil
}

// iniDefaults are fe-php's web defaults, below php.ini: FPM's values where
// php_embed would force console ones (output_buffering, implicit_flush,
// max_execution_time), and php.ini-production's on errors.
var iniDefaults = strings.Join([]string{
	"display_errors=0",
	"display_startup_errors=0",
	"log_errors=1",
	"html_errors=1",
	"output_buffering=4096",
	"implicit_flush=0",
	"max_execution_time=30",
	"register_argc_argv=0",
	"error_reporting=22527", // E_ALL & ~E_DEPRECATED & ~E_STRICT
	// No $_ENV: FPM clears its workers' environment (clear_env = yes);
	// fe-php's own environment must not reach scripts that way.
	"variables_order=GPCS",
	// Off in Debian's current php8.2 (8.2.36: php-fpm8.2 -i), unlike PHP's
	// compiled-in default in the 8.2.32 source the ZTS build uses.
	"session.upload_progress.enabled=0",
	"",
}, "\n")

// iniEntries are the settings that override php.ini: the [php.opcache]
// keys, then the [php.ini] table.
func (b *Backend) iniEntries() string {
	var sb strings.Builder
	o := b.opts.Opcache
	if o.Enable {
		sb.WriteString("zend_extension=opcache\n")
		fmt.Fprintf(&sb, "opcache.enable=1\nopcache.memory_consumption=%d\nopcache.max_accelerated_files=%d\nopcache.validate_timestamps=%d\n",
			int64(o.MemorySize)>>20, o.MaxFiles, boolInt(o.ValidateTimestamps))
		sb.WriteString("opcache.jit=off\n") // as Debian's opcache.ini ([php.ini] may turn it on)
	}
	sb.WriteString(phpini.Text(b.opts.INI))
	return sb.String()
}

func boolInt(v bool) int {
	if v {
		return 1
	}
	return 0
}

// Close waits for the requests executing PHP to finish, at most
// ShutdownTimeout (a script in an endless loop must not hold the
// process). PHP itself stays loaded until the process exits (it cannot
// start twice in a process).
func (b *Backend) Close() error {
	var deadline <-chan time.Time
	if b.opts.ShutdownTimeout > 0 {
		t := time.NewTimer(b.opts.ShutdownTimeout)
		defer t.Stop()
		deadline = t.C
	}
	for range b.opts.Workers {
		select {
		case <-b.slots:
		case <-deadline:
			return fmt.Errorf("embedded: PHP scripts still running after %s", b.opts.ShutdownTimeout)
		}
	}
	return nil
}

// acquire takes a free slot, waiting at most the wait timeout.
func (b *Backend) acquire(req *phpreq.Request) (int, error) {
	select {
	case s := <-b.slots:
		if o := b.opts.SlotWait; o != nil {
			o.Observe(0)
		}
		return s, nil
	default:
	}
	b.waiting.Add(1)
	start := time.Now()
	defer func() {
		b.waiting.Add(-1)
		if o := b.opts.SlotWait; o != nil {
			o.Observe(time.Since(start).Seconds())
		}
	}()
	t := time.NewTimer(b.wait)
	defer t.Stop()
	select {
	case s := <-b.slots:
		return s, nil
	case <-t.C:
		return 0, &phpreq.Error{Status: http.StatusServiceUnavailable, Fault: phpreq.FaultCapacity, RetryAfter: "1",
			Err: fmt.Errorf("no free PHP worker within %s (worker_pool_size %d)", b.wait, b.opts.Workers)}
	case <-req.Context().Done():
		return 0, &phpreq.Error{Status: http.StatusServiceUnavailable, Fault: phpreq.FaultClient, Err: req.Context().Err()}
	}
}

// preloadMax is the body size sent to PHP with the request itself; a
// larger body is read through a callback as PHP asks for it.
const preloadMax = 64 << 10

// Run executes req: it takes one of worker_pool_size slots and has PHP
// run the request (on the slot's PHP thread, or inline). The
// response goes to out; the slot is free again as soon as the script
// has ended, whatever the client's pace.
func (b *Backend) Run(req *phpreq.Request, out *phpreq.Output) error {
	slot, err := b.acquire(req)
	if err != nil {
		return err
	}
	defer func() { b.slots <- slot }()

	j := &b.jobs[slot]
	j.reset(req, out)
	defer j.reset(nil, nil)
	if err := j.fill(req); err != nil {
		return &phpreq.Error{Status: http.StatusBadRequest, Fault: phpreq.FaultClient, Err: err}
	}

	var w *watch
	if st := req.Settings; st.TerminateTimeout > 0 || st.SlowlogTimeout > 0 {
		w = b.watch(j.creq, req)
	}

	script := req.Target.ScriptFilename
	share := b.clock.lookup(script)
	inline := short(share)
	if inline {
		// PHP's buffers stay on this thread until its next request: stay
		// on it until they are copied out.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
	rc, ran := j.execute(inline)
	b.clock.observe(script, share, ran)
	if w != nil {
		w.stop()
	}
	cr := j.creq
	b.countContexts(int(cr.recycled), int(cr.contexts))
	if rc != 0 {
		return &phpreq.Error{Status: http.StatusInternalServerError, Fault: phpreq.FaultPHP,
			Err: errors.New("PHP could not start the request (see PHP's log lines above)")}
	}
	if j.err != nil {
		return j.err
	}
	if cr.finished != 0 {
		return nil
	}
	if cr.interrupted != 0 {
		// PHP's own output ends in the fatal error: the client gets a 504,
		// as from fastcgi (or a broken stream, if it had begun).
		return &phpreq.Error{Status: http.StatusGatewayTimeout, Fault: phpreq.FaultPHP,
			Err: fmt.Errorf("PHP ran past request_terminate_timeout (%s): script interrupted", req.Settings.TerminateTimeout)}
	}
	if cr.delivered == 0 {
		if err := out.Head(int(cr.status), cbytes(cr.headers, cr.headers_len)); err != nil {
			return err
		}
	}
	if data := cbytes(cr.out, cr.out_len); len(data) > 0 {
		if _, err := out.Write(data); err != nil {
			return err
		}
	}
	return nil
}

// job is one slot's request state: what the callbacks need, and the C
// memory the request is passed in.
type job struct {
	slot     int
	done     *os.File // the PHP thread's eventfd: written when a request is done
	req      *phpreq.Request
	out      *phpreq.Output
	body     io.Reader // the rest of the body, after what was preloaded
	err      error     // a failure inside a callback, returned by Run
	creq     *C.fephp_request
	arena    unsafe.Pointer // C memory holding the strings and body prefix
	arenaCap int
}

// startThreads makes the PHP threads, one per slot (see loader.c).
func (b *Backend) startThreads() error {
	fds := make([]C.int, len(b.jobs))
	if e := C.fephp_threads_start(C.int(len(fds)), &fds[0]); e != 0 {
		return fmt.Errorf("starting %d PHP threads: %w", len(fds), syscall.Errno(e))
	}
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), fmt.Sprintf("php-thread-%d", i))
		// A file Go's poller does not watch would be read with EAGAIN.
		if err := f.SetReadDeadline(time.Time{}); err != nil {
			return fmt.Errorf("starting PHP thread %d: its eventfd is not pollable: %w", i, err)
		}
		b.jobs[i].done = f
	}
	return nil
}

// execute runs the slot's request, on this goroutine's thread (inline)
// or on the slot's PHP thread, waiting for it in Go's poller so that no
// goroutine, P or Go thread waits with it. It reports how long PHP ran.
func (j *job) execute(inline bool) (C.int, time.Duration) {
	var ns C.int64_t
	if inline {
		rc := C.fephp_call_execute(j.creq, &ns)
		return rc, time.Duration(ns)
	}
	C.fephp_thread_run(C.int(j.slot), j.creq)
	var n [8]byte
	if _, err := io.ReadFull(j.done, n[:]); err != nil {
		// Only a closed eventfd could do this, and then the PHP thread may
		// still be running the request: giving the slot to another one
		// would mix their responses. Stop; the supervisor starts a worker.
		fmt.Fprintf(os.Stderr, "fe-php: waiting for PHP thread %d: %v: stopping this worker\n", j.slot, err)
		os.Exit(70)
	}
	rc := C.fephp_thread_result(C.int(j.slot), &ns)
	return rc, time.Duration(ns)
}

func (j *job) reset(req *phpreq.Request, out *phpreq.Output) {
	j.req, j.out, j.body, j.err = req, out, nil, nil
}

// arenaWriter lays strings out in the C arena.
type arenaWriter struct {
	buf []byte
	n   int
}

// str copies s and a NUL into the arena.
func (a *arenaWriter) str(s string) C.fephp_str {
	p := (*C.char)(unsafe.Pointer(&a.buf[a.n]))
	a.n += copy(a.buf[a.n:], s)
	a.buf[a.n] = 0
	a.n++
	return C.fephp_str{p: p, len: C.size_t(len(s))}
}

// optStr is str, or a NULL string for "".
func (a *arenaWriter) optStr(s string) C.fephp_str {
	if s == "" {
		return C.fephp_str{}
	}
	return a.str(s)
}

const strSize = C.sizeof_fephp_str

// fill copies the request into C memory: the environment pairs (with
// their lengths), the strings SG(request_info) wants, and the body when
// it is small.
func (j *job) fill(req *phpreq.Request) error {
	r, env, body := req.HTTP, req.Env, req.Body
	need := 2 * env.Len() * strSize
	for k, v := range env.All() {
		need += len(k) + len(v) + 2
	}
	ct, cookie, auth := env.Get("CONTENT_TYPE"), env.Get("HTTP_COOKIE"), env.Get("HTTP_AUTHORIZATION")
	need += len(r.Method) + len(r.RequestURI) + len(r.URL.RawQuery) + len(req.Target.ScriptFilename) +
		len(ct) + len(cookie) + len(auth) + len(req.Settings.INI) + len(req.Settings.AdminINI) + 10
	preload := body.Length > 0 && body.Length <= preloadMax
	if preload {
		need += int(body.Length)
	}
	if need > j.arenaCap {
		capacity := max(need, 16<<10, 2*j.arenaCap)
		C.free(j.arena)
		j.arena = C.malloc(C.size_t(capacity))
		j.arenaCap = capacity
	}
	a := arenaWriter{buf: unsafe.Slice((*byte)(j.arena), j.arenaCap)}
	cr := j.creq
	cr.handle = C.uintptr_t(j.slot)
	strs := unsafe.Slice((*C.fephp_str)(j.arena), 2*env.Len())
	a.n = 2 * env.Len() * strSize
	i := 0
	for k, v := range env.All() {
		strs[i], strs[i+1] = a.str(k), a.str(v)
		i += 2
	}
	cr.env = (*C.fephp_str)(j.arena)
	cr.env_count = C.size_t(env.Len())
	cr.method = a.str(r.Method)
	cr.uri = a.str(r.RequestURI)
	cr.query = a.str(r.URL.RawQuery)
	cr.script = a.str(req.Target.ScriptFilename)
	cr.content_type, cr.cookie, cr.authorization = a.optStr(ct), a.optStr(cookie), a.optStr(auth)
	cr.content_length = -1
	if body.Length > 0 {
		cr.content_length = C.int64_t(body.Length)
	}
	cr.proto_num = 1001
	if r.ProtoMajor == 1 && r.ProtoMinor == 0 {
		cr.proto_num = 1000
	}
	cr.request_time = C.double(float64(time.Now().UnixNano()) / 1e9)
	cr.ini, cr.admin_ini = a.optStr(req.Settings.INI), a.optStr(req.Settings.AdminINI)
	cr.body, cr.body_len, cr.body_complete = nil, 0, 1
	switch {
	case preload:
		start := a.n
		n, err := io.ReadFull(body.Reader(), a.buf[start:start+int(body.Length)])
		if err != nil {
			return err
		}
		cr.body = (*C.char)(unsafe.Pointer(&a.buf[start]))
		cr.body_len = C.size_t(n)
	case body.Length > 0:
		cr.body_complete = 0
		j.body = body.Reader()
	}
	return nil
}
