package embed

/*
#include <stdint.h>
#include <stddef.h>
#include "bridge/fephp.h"
*/
import "C"

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"unsafe"

	"github.com/fe-php/fe-php/internal/phpreq"
)

// The bridge calls these from the thread running the request's script (a
// cgo callback: from the slot's PHP thread, or from the goroutine's own
// thread when the script runs inline), one at a time, while Run waits. They only touch the request's phpreq.Output, never
// the client's connection: PHP does not wait for the client.
//
// A panic must never unwind through PHP's C frames (it would leave the
// thread's PHP context mid-request, with its locks held): each callback
// recovers, records the failure for Run, and tells PHP to stop
// (FEPHP_PANIC also makes the bridge recycle the thread's context).

// recovered turns a panic in a callback into FEPHP_PANIC.
func recovered(j *job, rc *C.int) {
	if v := recover(); v != nil {
		if j != nil && j.err == nil {
			j.err = &phpreq.Error{Status: http.StatusInternalServerError, Fault: phpreq.FaultPHP,
				Err: fmt.Errorf("panic in a PHP callback: %v", v)}
		}
		*rc = C.FEPHP_PANIC
	}
}

// result is the callback result for an Output error: stop the output.
func result(j *job, err error) C.int {
	if err == nil {
		return C.FEPHP_OK
	}
	if j.err == nil {
		j.err = err
	}
	return C.FEPHP_STOP
}

//export fephpGoWrite
func fephpGoWrite(h C.uintptr_t, status C.int, hdrs *C.char, hlen C.size_t, data *C.char, n C.size_t, flush C.int) (rc C.int) {
	j := current.job(uintptr(h))
	if j == nil || j.out == nil {
		return C.FEPHP_STOP
	}
	defer recovered(j, &rc)
	if rc := j.emit(status, hdrs, hlen, data, n); rc != C.FEPHP_OK {
		return rc
	}
	if flush != 0 && j.out.Flush() != nil {
		return C.FEPHP_STOP
	}
	return C.FEPHP_OK
}

// emit passes PHP's head (the first time) and data to the Output.
func (j *job) emit(status C.int, hdrs *C.char, hlen C.size_t, data *C.char, n C.size_t) C.int {
	if !j.out.HasHead() {
		if err := j.out.Head(int(status), cbytes(hdrs, hlen)); err != nil {
			return result(j, err)
		}
	}
	if b := cbytes(data, n); len(b) > 0 {
		if _, err := j.out.Write(b); err != nil {
			return C.FEPHP_STOP // the client has gone: connection_aborted()
		}
	}
	return C.FEPHP_OK
}

//export fephpGoReadBody
func fephpGoReadBody(h C.uintptr_t, buf *C.char, n C.size_t) (got C.size_t) {
	j := current.job(uintptr(h))
	if j == nil || j.body == nil {
		return 0
	}
	defer func() {
		if recover() != nil {
			got = 0
		}
	}()
	// PHP takes a short read for the end of the body (SAPI's
	// sapi_read_post_block): fill the buffer unless the body ends.
	m, _ := io.ReadFull(j.body, unsafe.Slice((*byte)(unsafe.Pointer(buf)), int(n)))
	return C.size_t(m)
}

//export fephpGoLog
func fephpGoLog(h C.uintptr_t, level C.int, msg *C.char, n C.size_t) {
	b := current.backend()
	if b == nil {
		return
	}
	defer func() { recover() }() // never unwind through PHP (see above)
	text := string(cbytes(msg, n))
	attrs := []slog.Attr{slog.String("message", text)}
	if j := current.job(uintptr(h)); j != nil && j.req != nil {
		attrs = append(attrs, slog.String("request_id", j.req.ID), slog.String("script", j.req.Target.ScriptFilename))
	}
	b.log.LogAttrs(nil, syslogLevel(int(level)), "php", attrs...)
}

//export fephpGoFinish
func fephpGoFinish(h C.uintptr_t, status C.int, hdrs *C.char, hlen C.size_t, data *C.char, n C.size_t) (rc C.int) {
	j := current.job(uintptr(h))
	if j == nil || j.out == nil {
		return C.FEPHP_STOP
	}
	defer recovered(j, &rc)
	if rc := j.emit(status, hdrs, hlen, data, n); rc != C.FEPHP_OK {
		return rc
	}
	if j.out.Finish() != nil {
		return C.FEPHP_STOP
	}
	return C.FEPHP_OK
}

// cbytes views C memory as a byte slice (valid during the callback).
func cbytes(p *C.char, n C.size_t) []byte {
	if p == nil || n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n))
}

// syslogLevel maps PHP's syslog priorities to slog levels.
func syslogLevel(prio int) slog.Level {
	switch {
	case prio <= 3: // LOG_ERR and worse
		return slog.LevelError
	case prio == 4: // LOG_WARNING
		return slog.LevelWarn
	case prio == 5: // LOG_NOTICE (error_log(), E_NOTICE)
		return slog.LevelWarn
	case prio == 6: // LOG_INFO (the bridge's own notes, e.g. recycling)
		return slog.LevelInfo
	default:
		return slog.LevelDebug
	}
}
