package phpreq

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
)

// Body is a request body received in full, before PHP is involved (like
// nginx's request buffering): in memory up to a bound, the rest in an
// unlinked temporary file. It can be read any number of times through
// Reader. Close it when done.
type Body struct {
	// Length is the body's size in bytes.
	Length int64

	mem      []byte   // the body, or its first part when file is set
	file     *os.File // the part after mem, unlinked
	reserved int64    // bytes held in the budget
	budget   *BodyBuffers
}

// Bytes returns the body when it is held in memory in one piece (nil
// otherwise, and for an empty body).
func (b *Body) Bytes() []byte {
	if b.file != nil {
		return nil
	}
	return b.mem
}

// Reader returns a reader of the whole body from its start.
func (b *Body) Reader() io.Reader {
	if b.file == nil {
		return bytes.NewReader(b.mem)
	}
	return io.MultiReader(bytes.NewReader(b.mem), io.NewSectionReader(b.file, 0, b.Length-int64(len(b.mem))))
}

// Close releases the memory, the temporary file and the budget. It does
// not close the request body (the server does).
func (b *Body) Close() error {
	var err error
	if b.file != nil {
		err = b.file.Close()
		b.file = nil
	}
	if b.mem != nil {
		putMem(b.mem)
		b.mem = nil
	}
	if b.budget != nil {
		b.budget.release(b.reserved)
		b.reserved = 0
	}
	return err
}

// BodyBuffers receives request bodies in full before they go to PHP, so
// that a slow client never holds a PHP thread or an FPM connection. It
// keeps one global budget for the bytes all bodies hold at once, in
// memory and on disk. It is safe for concurrent use.
type BodyBuffers struct {
	// MemLimit is how much of one body is kept in memory; the rest goes
	// to a temporary file. 0 spools every non-empty body.
	MemLimit int64
	// TotalLimit bounds the bytes all bodies hold at once (0: no bound):
	// beyond it a request gets ErrBodyBudget.
	TotalLimit int64
	// TempDir holds the temporary files ("": os.TempDir()). They are
	// unlinked as soon as they are created.
	TempDir string

	used    atomic.Int64
	spooled atomic.Int64 // bytes written to temporary files, ever
}

// Spooled reports the request body bytes written to temporary files so
// far (a counter, for metrics).
func (bb *BodyBuffers) Spooled() int64 { return bb.spooled.Load() }

// emptyBody is every request's without a body: shared, nothing to close.
var emptyBody Body

// ErrBodyBudget is returned by Receive when holding the body would take
// the bodies held at once past BodyBuffers.TotalLimit. It is no fault of
// the client's request: answer 503 with Retry-After.
var ErrBodyBudget = errors.New("phpreq: the request body buffers are full")

// reserveStep is how much budget a body of unknown length takes at a time.
const reserveStep = 64 << 10

func (bb *BodyBuffers) reserve(n int64) bool {
	if bb.TotalLimit <= 0 {
		bb.used.Add(n)
		return true
	}
	for {
		used := bb.used.Load()
		if used+n > bb.TotalLimit {
			return false
		}
		if bb.used.CompareAndSwap(used, used+n) {
			return true
		}
	}
}

func (bb *BodyBuffers) release(n int64) { bb.used.Add(-n) }

// InUse reports the bytes bodies hold now (for metrics and tests).
func (bb *BodyBuffers) InUse() int64 { return bb.used.Load() }

// Receive reads r's body to its end. A request without a body gives an
// empty Body. The error of reading r.Body (e.g. *http.MaxBytesError from
// the server's limit, a timeout, the client gone) is returned as is; an
// error of the temporary file is wrapped; ErrBodyBudget when the budget
// is exhausted. On error nothing needs closing.
func (bb *BodyBuffers) Receive(r *http.Request) (*Body, error) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return &emptyBody, nil
	}
	b := &Body{budget: bb}
	step := int64(reserveStep)
	if r.ContentLength > 0 {
		step = r.ContentLength // declared: take it all at once, or refuse at once
	}
	if !bb.reserve(step) {
		return nil, ErrBodyBudget
	}
	b.reserved = step
	err := b.fill(r.Body, bb, r.ContentLength)
	if err != nil {
		b.Close()
		return nil, err
	}
	// Give back what a declared length over-reserved (a short body is
	// an error above, so this only trims a chunked body's last step).
	if extra := b.reserved - b.Length; extra > 0 {
		bb.release(extra)
		b.reserved = b.Length
	}
	return b, nil
}

// fill reads src into memory up to the limit, then into a file.
func (b *Body) fill(src io.Reader, bb *BodyBuffers, declared int64) error {
	var pending []byte // read past the memory part, for the file
	memLimit := bb.MemLimit
	if declared > 0 && declared < memLimit {
		memLimit = declared
	}
	if memLimit > 0 {
		b.mem = getMem(memLimit)
		n, err := readUpTo(src, b.mem[:memLimit])
		b.mem = b.mem[:n]
		b.Length = int64(n)
		if err == io.EOF {
			return b.checkLength(declared)
		}
		ov, ok := err.(*overflow)
		if !ok {
			return err
		}
		pending = append(pending, ov.b)
	}
	// More than fits in memory (or nothing is kept in memory): spool.
	f, err := os.CreateTemp(bb.TempDir, "fe-php-body-*")
	if err != nil {
		return fmt.Errorf("phpreq: spooling the request body: %w", err)
	}
	b.file = f
	if err := os.Remove(f.Name()); err != nil {
		return fmt.Errorf("phpreq: spooling the request body: %w", err)
	}
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	buf := *bp
	for {
		var n int
		var rerr error
		if len(pending) > 0 {
			n = copy(buf, pending)
			pending = nil
		} else {
			n, rerr = src.Read(buf)
		}
		if n > 0 {
			b.Length += int64(n)
			if err := b.grow(bb, declared); err != nil {
				return err
			}
			if _, err := f.Write(buf[:n]); err != nil {
				return fmt.Errorf("phpreq: spooling the request body: %w", err)
			}
			bb.spooled.Add(int64(n))
		}
		if rerr == io.EOF {
			return b.checkLength(declared)
		}
		if rerr != nil {
			return rerr
		}
	}
}

// grow takes more budget for a body of unknown length once it has
// outgrown its reservation.
func (b *Body) grow(bb *BodyBuffers, declared int64) error {
	if declared > 0 && b.Length > declared {
		return errors.New("phpreq: request body longer than its Content-Length")
	}
	for b.Length > b.reserved {
		if !bb.reserve(reserveStep) {
			return ErrBodyBudget
		}
		b.reserved += reserveStep
	}
	return nil
}

func (b *Body) checkLength(declared int64) error {
	if declared > 0 && b.Length != declared {
		return io.ErrUnexpectedEOF // the client sent less than it declared
	}
	return nil
}

// readUpTo reads until p is full, the reader ends (io.EOF, also when p
// is exactly full at the end) or fails. A full p with more to come
// returns nil.
func readUpTo(r io.Reader, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := r.Read(p[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	// Full: peek for the end, so that a body of exactly the limit stays
	// in memory.
	var one [1]byte
	for {
		m, err := r.Read(one[:])
		if m > 0 {
			return n, &overflow{b: one[0]}
		}
		if err != nil {
			return n, err
		}
	}
}

// overflow carries the byte readUpTo read past a full buffer. fill
// treats it as "more to come" and writes the byte first.
type overflow struct{ b byte }

func (o *overflow) Error() string { return "phpreq: more body than the buffer" }

// memPool keeps body and output buffers of the common small sizes.
var memPool = sync.Pool{New: func() any { b := make([]byte, 0, memPoolCap); return &b }}

const memPoolCap = 64 << 10

// getMem returns a buffer of length n (from the pool when n is small).
func getMem(n int64) []byte {
	if n <= memPoolCap {
		return (*memPool.Get().(*[]byte))[:n]
	}
	return make([]byte, n)
}

func putMem(b []byte) {
	if cap(b) == memPoolCap {
		b = b[:0]
		memPool.Put(&b)
	}
}

var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// BodyStatus is the status for a request body that could not be
// received: 413 past the server's max_body_size, 408 when the client was
// too slow, 503 when the body buffers are full, 400 otherwise (a body
// shorter than its Content-Length, the client gone, a broken chunked
// encoding).
func BodyStatus(err error) int {
	var mbe *http.MaxBytesError
	var te interface{ Timeout() bool }
	switch {
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrBodyBudget):
		return http.StatusServiceUnavailable
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &te) && te.Timeout():
		return http.StatusRequestTimeout
	}
	return http.StatusBadRequest
}
