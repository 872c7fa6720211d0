package embed

/*
#include <stdint.h>
#include <stddef.h>
*/
import "C"

import (
	"io"
	"log/slog"
	"unsafe"
)

// The bridge calls these on the goroutine that is executing the request
// (a cgo callback), so they may use the request's ResponseWriter.

//export fephpGoWrite
func fephpGoWrite(h C.uintptr_t, status C.int, hdrs *C.char, hlen C.size_t, data *C.char, n C.size_t, flush C.int) C.int {
	j := current.job(uintptr(h))
	if j == nil {
		return -1
	}
	if err := j.write(int(status), cbytes(hdrs, hlen), cbytes(data, n), flush != 0); err != nil {
		return -1
	}
	return 0
}

//export fephpGoReadBody
func fephpGoReadBody(h C.uintptr_t, buf *C.char, n C.size_t) C.size_t {
	j := current.job(uintptr(h))
	if j == nil || j.body == nil {
		return 0
	}
	// PHP takes a short read for the end of the body (SAPI's
	// sapi_read_post_block): fill the buffer unless the body ends.
	got, _ := io.ReadFull(j.body, unsafe.Slice((*byte)(unsafe.Pointer(buf)), int(n)))
	return C.size_t(got)
}

//export fephpGoLog
func fephpGoLog(h C.uintptr_t, level C.int, msg *C.char, n C.size_t) {
	b := current.backend()
	if b == nil {
		return
	}
	text := string(cbytes(msg, n))
	attrs := []slog.Attr{slog.String("message", text)}
	if j := current.job(uintptr(h)); j != nil {
		attrs = append(attrs, slog.String("request_id", j.reqID), slog.String("script", j.script))
	}
	b.log.LogAttrs(nil, syslogLevel(int(level)), "php", attrs...)
}

//export fephpGoFinish
func fephpGoFinish(h C.uintptr_t, status C.int, hdrs *C.char, hlen C.size_t, data *C.char, n C.size_t) {
	if j := current.job(uintptr(h)); j != nil {
		j.finish(int(status), cbytes(hdrs, hlen), cbytes(data, n))
	}
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
