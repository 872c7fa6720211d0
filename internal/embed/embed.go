// Package embed is fe-php's embedded backend: PHP (a ZTS libphp, loaded
// from php.libphp_path at start) executing requests in-process.
//
// The request path is lean on purpose. There is no worker goroutine to
// hand a request to: the goroutine serving the HTTP request takes one of
// worker_pool_size slots, pins itself to its OS thread for the duration,
// and calls into PHP once (one cgo call). The thread gets its PHP context
// (TSRM) the first time it runs PHP and keeps it, until it has served
// worker_max_requests requests and the context is recycled. A response
// that PHP does not stream comes back with that call, headers and body,
// so a typical request crosses from C into Go zero times.
//
// Threads run PHP on an explicit 64 MiB stack (see cgo.go), whatever
// ulimit -s says. PHP shares the process: a segfault in PHP or in an
// extension ends the server; paths that run untrusted, leaky or long
// code belong on the fastcgi backend.
package embed

/*
#include <stdlib.h>
#include "loader.h"
*/
import "C"

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/textproto"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/fe-php/fe-php/internal/config"
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
	// INIFile is a php.ini to load ("" for none).
	INIFile string
	// INI overrides php.ini settings ([php.ini] table).
	INI map[string]string
	// Opcache is the [php.opcache] section.
	Opcache config.Opcache
	// Resolver maps request paths to scripts.
	Resolver *phpreq.Resolver
	// Static sends the non-PHP files under the document root.
	Static http.Handler
	Logger *slog.Logger
}

// Backend is the embedded backend, an http.Handler.
type Backend struct {
	opts  Options
	log   *slog.Logger
	slots chan int
	jobs  []job
	wait  time.Duration
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
	if opts.INIFile != "" {
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
	}
	for _, k := range slices.Sorted(maps.Keys(b.opts.INI)) {
		fmt.Fprintf(&sb, "%s=%s\n", k, b.opts.INI[k])
	}
	return sb.String()
}

func boolInt(v bool) int {
	if v {
		return 1
	}
	return 0
}

// Close waits for the requests executing PHP to finish. PHP itself stays
// loaded until the process exits (it cannot start twice in a process).
func (b *Backend) Close() error {
	for range b.opts.Workers {
		<-b.slots
	}
	return nil
}

// ServeHTTP serves a request whose path the server has already cleaned.
func (b *Backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := b.opts.Resolver.Resolve(r)
	if t.Kind != phpreq.Script {
		phpreq.ServeNonScript(w, r, &t, b.opts.Static)
		return
	}
	b.serveScript(w, r, &t)
}

// acquire takes a free slot, waiting at most the wait timeout.
func (b *Backend) acquire(r *http.Request) (int, bool) {
	select {
	case s := <-b.slots:
		return s, true
	default:
	}
	t := time.NewTimer(b.wait)
	defer t.Stop()
	select {
	case s := <-b.slots:
		return s, true
	case <-t.C:
		return 0, false
	case <-r.Context().Done():
		return 0, false
	}
}

// preloadMax is the body size sent to PHP with the request itself; a
// larger body is read through a callback as PHP asks for it.
const preloadMax = 64 << 10

func (b *Backend) serveScript(w http.ResponseWriter, r *http.Request, t *phpreq.Target) {
	body, ok := phpreq.ReadBody(w, r)
	if !ok {
		return
	}
	defer body.Close()

	slot, ok := b.acquire(r)
	if !ok {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "503 service unavailable (all PHP workers busy)", http.StatusServiceUnavailable)
		b.log.Warn("embedded: no free PHP worker", slog.String("request_id", r.Header.Get("X-Request-Id")),
			slog.Duration("waited", b.wait), slog.Int("worker_pool_size", b.opts.Workers))
		return
	}
	released := false
	release := func() {
		if !released {
			released = true
			b.slots <- slot
		}
	}
	defer release()

	env := b.opts.Resolver.Env(r, t, body.Length)
	j := &b.jobs[slot]
	j.reset(w, r, t, body)
	if err := j.fill(r, env, t, body); err != nil {
		env.Release()
		http.Error(w, "413 request entity too large", http.StatusRequestEntityTooLarge)
		return
	}
	env.Release()

	// The thread keeps PHP's output buffers until its next request: stay
	// on it until the response is written.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	C.fephp_call_execute(j.creq)
	status := int(j.creq.status)
	hdrs := cbytes(j.creq.headers, j.creq.headers_len)
	out := cbytes(j.creq.out, j.creq.out_len)
	delivered := j.creq.delivered != 0
	finished := j.creq.finished != 0
	// From here on the slot's job belongs to the next request: use w,
	// never j (hdrs and out are this thread's buffers, safe while locked).
	release()
	if finished {
		return
	}
	if !delivered {
		addHeaders(w.Header(), hdrs)
		if len(out) > 0 && len(w.Header()["Content-Length"]) == 0 {
			w.Header()["Content-Length"] = []string{strconv.Itoa(len(out))}
		}
		w.WriteHeader(status)
	}
	if len(out) > 0 {
		w.Write(out)
	}
}

// job is one slot's request state: what the callbacks need, and the C
// memory the request is passed in.
type job struct {
	slot        int
	w           http.ResponseWriter
	r           *http.Request
	body        io.Reader
	reqID       string
	script      string
	wroteHeader bool
	status      int // the status sent when the response started streaming
	creq        *C.fephp_request
	arena       unsafe.Pointer // C memory holding the strings and body prefix
	arenaCap    int
}

func (j *job) reset(w http.ResponseWriter, r *http.Request, t *phpreq.Target, body *phpreq.Body) {
	j.w, j.r, j.body = w, r, body
	j.reqID = r.Header.Get("X-Request-Id")
	j.script = t.ScriptFilename
	j.wroteHeader = false
}

// arenaWriter lays strings out in the C arena.
type arenaWriter struct {
	buf []byte
	n   int
}

func (a *arenaWriter) cstr(s string) *C.char {
	p := (*C.char)(unsafe.Pointer(&a.buf[a.n]))
	a.n += copy(a.buf[a.n:], s)
	a.buf[a.n] = 0
	a.n++
	return p
}

// fill copies the request into C memory: environment pairs, the strings
// SG(request_info) wants, and the body when it is small.
func (j *job) fill(r *http.Request, env *phpreq.Env, t *phpreq.Target, body *phpreq.Body) error {
	need := 0
	for k, v := range env.All() {
		need += len(k) + len(v) + 2
	}
	ct, cookie, auth := env.Get("CONTENT_TYPE"), env.Get("HTTP_COOKIE"), env.Get("HTTP_AUTHORIZATION")
	need += len(r.Method) + len(r.RequestURI) + len(r.URL.RawQuery) + len(t.ScriptFilename) + len(ct) + len(cookie) + len(auth) + 8
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
	cr.env = (*C.char)(j.arena)
	count := 0
	for k, v := range env.All() {
		a.cstr(k)
		a.cstr(v)
		count++
	}
	cr.env_len = C.size_t(a.n)
	cr.env_count = C.size_t(count)
	cr.method = a.cstr(r.Method)
	cr.uri = a.cstr(r.RequestURI)
	cr.query = a.cstr(r.URL.RawQuery)
	cr.script = a.cstr(t.ScriptFilename)
	cr.content_type, cr.cookie, cr.authorization = nil, nil, nil
	if ct != "" {
		cr.content_type = a.cstr(ct)
	}
	if cookie != "" {
		cr.cookie = a.cstr(cookie)
	}
	if auth != "" {
		cr.authorization = a.cstr(auth)
	}
	cr.content_length = -1
	if body.Length > 0 {
		cr.content_length = C.int64_t(body.Length)
	}
	cr.proto_num = 1001
	if r.ProtoMajor == 1 && r.ProtoMinor == 0 {
		cr.proto_num = 1000
	}
	now := time.Now()
	cr.request_time = C.double(float64(now.UnixNano()) / 1e9)
	cr.body, cr.body_len, cr.body_complete = nil, 0, 1
	if preload {
		start := a.n
		n, err := io.ReadFull(body, a.buf[start:start+int(body.Length)])
		if err != nil {
			return err
		}
		cr.body = (*C.char)(unsafe.Pointer(&a.buf[start]))
		cr.body_len = C.size_t(n)
	} else if body.Length > 0 {
		cr.body_complete = 0
	}
	return nil
}

// applyHeaders adds the headers PHP produced to the job's response.
func (j *job) applyHeaders(hdrs []byte) {
	addHeaders(j.w.Header(), hdrs)
	j.wroteHeader = true
}

// addHeaders adds the headers PHP produced ("Name: value\n" lines) to h.
func addHeaders(h http.Header, hdrs []byte) {
	for len(hdrs) > 0 {
		line := hdrs
		if i := bytes.IndexByte(hdrs, '\n'); i >= 0 {
			line, hdrs = hdrs[:i], hdrs[i+1:]
		} else {
			hdrs = nil
		}
		name, value, ok := strings.Cut(string(line), ":")
		if !ok {
			continue
		}
		key := textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(name))
		switch key {
		case "Connection", "Keep-Alive", "Transfer-Encoding", "Trailer", "Upgrade":
			continue
		}
		h[key] = append(h[key], strings.TrimSpace(value))
	}
}

// write is the streaming path: headers first, then data, flushed when PHP
// flushed.
func (j *job) write(status int, hdrs, data []byte, flush bool) error {
	if !j.wroteHeader {
		j.applyHeaders(hdrs)
		j.status = status
		j.w.WriteHeader(status)
	}
	if len(data) > 0 {
		if _, err := j.w.Write(data); err != nil && err != http.ErrBodyNotAllowed {
			return err
		}
	}
	if flush {
		if err := http.NewResponseController(j.w).Flush(); err != nil {
			return err
		}
	}
	return nil
}

// finish completes the response for fastcgi_finish_request(): with a
// Content-Length when nothing was streamed yet, so that the client holds
// a complete response while the script goes on.
func (j *job) finish(status int, hdrs, data []byte) {
	streamed := j.wroteHeader
	if !streamed {
		j.applyHeaders(hdrs)
		if len(j.w.Header()["Content-Length"]) == 0 {
			j.w.Header()["Content-Length"] = []string{strconv.Itoa(len(data))}
		}
		j.w.WriteHeader(status)
	}
	if len(data) > 0 {
		j.w.Write(data)
	}
	rc := http.NewResponseController(j.w)
	rc.Flush()
	if streamed {
		j.endStreamed(rc)
	}
}

// endStreamed ends a response that was already streaming (chunked, or
// delimited by the connection's close) when the script called
// fastcgi_finish_request(): net/http would end it only when the handler
// returns, that is when the script ends. It takes the connection over,
// ends the body and closes the connection, so that the client has the
// whole response now, as under FPM. (Where it cannot, e.g. HTTP/2, the
// response ends with the script.)
func (j *job) endStreamed(rc *http.ResponseController) {
	chunked := j.r.ProtoAtLeast(1, 1) && j.r.Method != http.MethodHead &&
		len(j.w.Header()["Content-Length"]) == 0 &&
		j.status >= 200 && j.status != http.StatusNoContent && j.status != http.StatusNotModified
	conn, brw, err := rc.Hijack()
	if err != nil {
		return
	}
	if chunked {
		brw.WriteString("0\r\n\r\n")
		brw.Flush()
	}
	conn.Close()
}
