// Package fastcgi is a FastCGI 1.0 client for the responder role, made for
// PHP-FPM: one request at a time per connection (FPM does not multiplex),
// connections kept open with FCGI_KEEP_CONN and pooled (see Pool).
package fastcgi

import (
	"encoding/binary"
	"fmt"
)

// Record types (FastCGI 1.0, section 8).
const (
	typeBeginRequest    = 1
	typeAbortRequest    = 2
	typeEndRequest      = 3
	typeParams          = 4
	typeStdin           = 5
	typeStdout          = 6
	typeStderr          = 7
	typeData            = 8
	typeGetValues       = 9
	typeGetValuesResult = 10
	typeUnknownType     = 11
)

const (
	version1   = 1
	headerLen  = 8
	maxContent = 65535 // content length is a 16-bit field

	roleResponder = 1
	flagKeepConn  = 1
)

// Protocol status values of FCGI_END_REQUEST.
const (
	StatusRequestComplete = 0
	StatusCantMpxConn     = 1
	StatusOverloaded      = 2
	StatusUnknownRole     = 3
)

// putHeader writes a record header into b[:8].
func putHeader(b []byte, typ uint8, id uint16, contentLen int) {
	b[0] = version1
	b[1] = typ
	binary.BigEndian.PutUint16(b[2:4], id)
	binary.BigEndian.PutUint16(b[4:6], uint16(contentLen))
	b[6] = 0 // padding
	b[7] = 0
}

// appendHeader appends a record header.
func appendHeader(b []byte, typ uint8, id uint16, contentLen int) []byte {
	return append(b, version1, typ, byte(id>>8), byte(id), byte(contentLen>>8), byte(contentLen), 0, 0)
}

// nextID returns the request id after id: 1..65535, wrapping, never 0 (the
// id of management records).
func nextID(id uint16) uint16 {
	if id == 65535 {
		return 1
	}
	return id + 1
}

// appendBeginRequest appends an FCGI_BEGIN_REQUEST record for a responder
// with FCGI_KEEP_CONN.
func appendBeginRequest(b []byte, id uint16) []byte {
	b = appendHeader(b, typeBeginRequest, id, 8)
	return append(b, 0, roleResponder, flagKeepConn, 0, 0, 0, 0, 0)
}

// pairLen is the encoded size of one name-value pair.
func pairLen(name, value string) int {
	return lenSize(len(name)) + lenSize(len(value)) + len(name) + len(value)
}

func lenSize(n int) int {
	if n < 128 {
		return 1
	}
	return 4
}

func appendLen(b []byte, n int) []byte {
	if n < 128 {
		return append(b, byte(n))
	}
	return append(b, byte(n>>24)|0x80, byte(n>>16), byte(n>>8), byte(n))
}

// ParamTooLongError reports a name-value pair that does not fit in one
// FCGI_PARAMS record. PHP-FPM parses each PARAMS record on its own, so a pair
// cannot span records: name and value together must stay under 64 KiB.
type ParamTooLongError struct {
	Name string
	Len  int
}

func (e *ParamTooLongError) Error() string {
	return fmt.Sprintf("fastcgi: parameter %s is too long (%d bytes encoded, at most %d)", e.Name, e.Len, maxContent)
}

// paramsEncoder appends FCGI_PARAMS records to buf, starting a new record
// whenever the next pair would not fit in the current one.
type paramsEncoder struct {
	buf   []byte
	id    uint16 // request id of the records
	start int    // offset of the current record's header, -1 if none
	err   error
}

func (e *paramsEncoder) add(name, value string) bool {
	n := pairLen(name, value)
	if n > maxContent {
		e.err = &ParamTooLongError{Name: name, Len: n}
		return false
	}
	if e.start >= 0 && len(e.buf)-e.start-headerLen+n > maxContent {
		e.finish()
	}
	if e.start < 0 {
		e.start = len(e.buf)
		e.buf = appendHeader(e.buf, typeParams, e.id, 0)
	}
	e.buf = appendLen(e.buf, len(name))
	e.buf = appendLen(e.buf, len(value))
	e.buf = append(e.buf, name...)
	e.buf = append(e.buf, value...)
	return true
}

// finish fixes the length of the current record.
func (e *paramsEncoder) finish() {
	if e.start < 0 {
		return
	}
	putHeader(e.buf[e.start:], typeParams, e.id, len(e.buf)-e.start-headerLen)
	e.start = -1
}
