package phpreq

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
)

// Body is a request body ready to send with a known length. Close it when
// done.
type Body struct {
	io.Reader
	Length int64

	buf  *bytes.Buffer // a chunked body held in memory
	file *os.File      // a chunked body spooled to disk
}

// maxPooledBuf bounds the buffers kept for reuse: a buffer grown for a
// large body is left to the garbage collector.
const maxPooledBuf = 256 << 10

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// PrepareBody returns r's body with its length known, as FPM needs
// CONTENT_LENGTH.
//
// A body with a known r.ContentLength is passed through as is (streamed;
// r.ContentLength 0 or no body gives an empty Body of Length 0). A body of
// unknown length (ContentLength -1: chunked, or HTTP/2 without
// content-length) is read fully: in memory up to memLimit bytes, beyond
// that spooled to a temporary file in tmpDir (os.TempDir() if ""). The
// file is unlinked as soon as it is created, so nothing is left on disk
// even if the process dies; its space is freed on Close. memLimit <= 0
// spools every such body.
//
// An error from reading r.Body (e.g. *http.MaxBytesError from the
// server's limit, or the client going away) is returned as is; an error
// creating or writing the temporary file is wrapped. On error nothing
// needs closing.
func PrepareBody(r *http.Request, memLimit int64, tmpDir string) (*Body, error) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return &Body{Reader: http.NoBody}, nil
	}
	if r.ContentLength > 0 {
		return &Body{Reader: r.Body, Length: r.ContentLength}, nil
	}

	b := &Body{}
	if memLimit > 0 {
		buf := bufPool.Get().(*bytes.Buffer)
		// Read one byte over the limit to tell "exactly memLimit" from
		// "more".
		n, err := buf.ReadFrom(io.LimitReader(r.Body, memLimit+1))
		if err != nil {
			putBuf(buf)
			return nil, err
		}
		if n <= memLimit {
			b.buf, b.Reader, b.Length = buf, bytes.NewReader(buf.Bytes()), n
			return b, nil
		}
		b.buf = buf
	}

	f, err := os.CreateTemp(tmpDir, "fe-php-body-*")
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("phpreq: spooling request body: %w", err)
	}
	b.file = f
	if err := os.Remove(f.Name()); err != nil {
		b.Close()
		return nil, fmt.Errorf("phpreq: spooling request body: %w", err)
	}
	var n int64
	if b.buf != nil {
		if n, err = b.buf.WriteTo(f); err != nil {
			b.Close()
			return nil, fmt.Errorf("phpreq: spooling request body: %w", err)
		}
		putBuf(b.buf)
		b.buf = nil
	}
	m, err := copyBody(f, r.Body)
	if err != nil {
		b.Close()
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		b.Close()
		return nil, fmt.Errorf("phpreq: spooling request body: %w", err)
	}
	b.Reader, b.Length = f, n+m
	return b, nil
}

var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// copyBody copies src to f. A read error is returned as is, a write error
// wrapped.
func copyBody(f *os.File, src io.Reader) (int64, error) {
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	buf := *bp
	var n int64
	for {
		m, rerr := src.Read(buf)
		if m > 0 {
			if _, werr := f.Write(buf[:m]); werr != nil {
				return n, fmt.Errorf("phpreq: spooling request body: %w", werr)
			}
			n += int64(m)
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

// Close releases the memory or the temporary file. It does not close the
// request body (the server does).
func (b *Body) Close() error {
	var err error
	if b.file != nil {
		err = b.file.Close()
		b.file = nil
	}
	if b.buf != nil {
		putBuf(b.buf)
		b.buf = nil
	}
	b.Reader = http.NoBody
	return err
}

func putBuf(buf *bytes.Buffer) {
	if buf.Cap() > maxPooledBuf {
		return
	}
	buf.Reset()
	bufPool.Put(buf)
}

// ReadBody is PrepareBody for a backend: when the body cannot be had it
// answers the client itself, 413 past the server's max_body_size, 400
// when reading failed, and returns ok = false.
func ReadBody(w http.ResponseWriter, r *http.Request) (b *Body, ok bool) {
	b, err := PrepareBody(r, 1<<20, "")
	if err == nil {
		return b, true
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		http.Error(w, "413 request entity too large", http.StatusRequestEntityTooLarge)
	} else {
		http.Error(w, "400 bad request: cannot read the request body", http.StatusBadRequest)
	}
	return nil, false
}
