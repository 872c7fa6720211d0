package phpreq

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

// chunkedRequest is a request whose body has no declared length, as the
// server gives for "Transfer-Encoding: chunked" (the reader hides any
// Len method httptest would measure).
func chunkedRequest(body io.Reader) *http.Request {
	r := httptest.NewRequest("POST", "/upload.php", struct{ io.Reader }{body})
	r.ContentLength = -1
	r.TransferEncoding = []string{"chunked"}
	r.Header.Del("Content-Length")
	return r
}

func readAll(t *testing.T, b *Body) []byte {
	t.Helper()
	got, err := io.ReadAll(b)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(got)) != b.Length {
		t.Fatalf("read %d bytes, Length %d", len(got), b.Length)
	}
	return got
}

func dirEntries(t *testing.T, dir string) int {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

func TestPrepareBodyKnownLength(t *testing.T) {
	r := httptest.NewRequest("POST", "/a.php", strings.NewReader("hello"))
	orig := r.Body
	b, err := PrepareBody(r, 1<<20, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Length != 5 || b.Reader != orig {
		t.Errorf("not passed through: %d %T", b.Length, b.Reader)
	}
	if b.buf != nil || b.file != nil {
		t.Error("buffered a body of known length")
	}
}

func TestPrepareBodyEmpty(t *testing.T) {
	for _, r := range []*http.Request{
		httptest.NewRequest("GET", "/", nil),
		chunkedRequest(strings.NewReader("")),
	} {
		b, err := PrepareBody(r, 1<<20, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, b); len(got) != 0 || b.Length != 0 {
			t.Errorf("%d bytes", len(got))
		}
		b.Close()
	}
}

func TestPrepareBodyChunkedSmall(t *testing.T) {
	tmp := t.TempDir()
	for _, size := range []int{1, 1000, 1 << 20} { // up to exactly the limit
		data := bytes.Repeat([]byte("x"), size)
		b, err := PrepareBody(chunkedRequest(bytes.NewReader(data)), 1<<20, tmp)
		if err != nil {
			t.Fatal(err)
		}
		if b.file != nil || dirEntries(t, tmp) != 0 {
			t.Errorf("%d bytes: spooled to a file", size)
		}
		if got := readAll(t, b); !bytes.Equal(got, data) {
			t.Errorf("%d bytes: body differs", size)
		}
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	}
}

func TestPrepareBodyChunkedLarge(t *testing.T) {
	tmp := t.TempDir()
	data := make([]byte, 3<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for _, limit := range []int64{1 << 20, 0} {
		b, err := PrepareBody(chunkedRequest(bytes.NewReader(data)), limit, tmp)
		if err != nil {
			t.Fatal(err)
		}
		if b.file == nil {
			t.Fatalf("limit %d: not spooled", limit)
		}
		if b.buf != nil {
			t.Errorf("limit %d: memory kept after spooling", limit)
		}
		// Unlinked at once: nothing in tmpDir even before Close.
		if n := dirEntries(t, tmp); n != 0 {
			t.Errorf("limit %d: %d files in tmpDir", limit, n)
		}
		if b.Length != int64(len(data)) {
			t.Errorf("limit %d: Length %d", limit, b.Length)
		}
		if got := readAll(t, b); !bytes.Equal(got, data) {
			t.Errorf("limit %d: body differs", limit)
		}
		f := b.file
		if err := b.Close(); err != nil {
			t.Error(err)
		}
		if _, err := f.Stat(); err == nil {
			t.Error("file still open after Close")
		}
		if n := dirEntries(t, tmp); n != 0 {
			t.Errorf("%d files left in tmpDir", n)
		}
	}
}

// failAfter yields n bytes, then err.
type failAfter struct {
	n   int
	err error
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, f.err
	}
	m := min(len(p), f.n)
	for i := range p[:m] {
		p[i] = 'y'
	}
	f.n -= m
	return m, nil
}

func TestPrepareBodyErrors(t *testing.T) {
	tmp := t.TempDir()
	// The server's limit: *http.MaxBytesError comes back as is, from
	// memory and from the spooling phase.
	for _, size := range []int{100, 3 << 20} {
		r := chunkedRequest(bytes.NewReader(make([]byte, size)))
		r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, int64(size-1))
		b, err := PrepareBody(r, 1<<20, tmp)
		var mbe *http.MaxBytesError
		if b != nil || !errors.As(err, &mbe) || err != error(mbe) {
			t.Errorf("size %d: %v %T", size, b, err)
		}
	}
	// A reader error, e.g. the client gone.
	boom := errors.New("connection reset")
	for _, n := range []int{10, 2 << 20} {
		b, err := PrepareBody(chunkedRequest(&failAfter{n, boom}), 1<<20, tmp)
		if b != nil || err != boom {
			t.Errorf("after %d bytes: %v %v", n, b, err)
		}
	}
	if n := dirEntries(t, tmp); n != 0 {
		t.Errorf("%d files left after errors", n)
	}
	// No usable tmpDir: wrapped.
	_, err := PrepareBody(chunkedRequest(bytes.NewReader(make([]byte, 100))), 10, tmp+"/missing")
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "spooling") {
		t.Errorf("missing tmpDir: %v", err)
	}
}
