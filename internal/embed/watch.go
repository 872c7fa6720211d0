package embed

/*
#include <stdlib.h>
#include "loader.h"
*/
import "C"

import (
	"log/slog"
	"sync"
	"time"
	"unsafe"

	"github.com/fe-php/fe-php/internal/phpreq"
)

// watch keeps the clock on one running script, for the route's
// request_slowlog_timeout (its PHP backtrace is logged) and
// request_terminate_timeout (it is interrupted, and again every second
// until it returns: a shutdown function may hang too). PHP-FPM's master
// does both for its children, with ptrace and kill; here the PHP thread
// is read with process_vm_readv and stopped at its next VM instruction,
// and its context is recycled after (see fephp_interrupt).
type watch struct {
	b     *Backend
	creq  *C.fephp_request
	req   *phpreq.Request
	start time.Time

	mu          sync.Mutex
	done        bool // the script has returned: creq is no longer its
	interrupted bool
	slowlog     *time.Timer
	terminate   *time.Timer
}

// interruptEvery is how often a script past its time is interrupted again.
const interruptEvery = time.Second

// backtraceMax bounds a slowlog backtrace.
const backtraceMax = 32 << 10

func (b *Backend) watch(creq *C.fephp_request, req *phpreq.Request) *watch {
	w := &watch{b: b, creq: creq, req: req, start: time.Now()}
	w.mu.Lock()
	defer w.mu.Unlock()
	if d := req.Settings.SlowlogTimeout; d > 0 {
		w.slowlog = time.AfterFunc(d, w.logSlow)
	}
	if d := req.Settings.TerminateTimeout; d > 0 {
		w.terminate = time.AfterFunc(d, w.interrupt)
	}
	return w
}

// stop ends the watch once the script has returned (before its slot is
// free): a timer that fires now finds it done and leaves creq alone.
func (w *watch) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
	if w.slowlog != nil {
		w.slowlog.Stop()
	}
	if w.terminate != nil {
		w.terminate.Stop()
	}
}

func (w *watch) attrs() []slog.Attr {
	return []slog.Attr{
		slog.String("request_id", w.req.ID), slog.String("script", w.req.Target.ScriptFilename),
		slog.String("uri", w.req.HTTP.RequestURI), slog.Duration("elapsed", time.Since(w.start).Round(time.Millisecond)),
	}
}

func (w *watch) interrupt() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return
	}
	if C.fephp_call_interrupt(w.creq) != 0 && !w.interrupted {
		w.interrupted = true
		w.b.log.LogAttrs(nil, slog.LevelWarn, "php: request_terminate_timeout reached, interrupting the script",
			append(w.attrs(), slog.Duration("request_terminate_timeout", w.req.Settings.TerminateTimeout))...)
	}
	w.terminate.Reset(interruptEvery)
}

func (w *watch) logSlow() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return
	}
	buf := make([]byte, backtraceMax)
	n := C.fephp_call_backtrace(w.creq, (*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
	trace := "(unavailable: the script was between two PHP frames)"
	if n > 0 {
		trace = string(buf[:min(int(n), len(buf))])
	}
	w.b.log.LogAttrs(nil, slog.LevelWarn, "php: slow request",
		append(w.attrs(), slog.Duration("request_slowlog_timeout", w.req.Settings.SlowlogTimeout), slog.String("backtrace", trace))...)
}
