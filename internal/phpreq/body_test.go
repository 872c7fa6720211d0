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

func dirEntries(t *testing.T, dir string) int {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

func receive(r *http.Request, memLimit int64, tmp string) (*Body, error) {
	bb := &BodyBuffers{MemLimit: memLimit, TempDir: tmp}
	return bb.Receive(r)
}

func readAllBody(t *testing.T, b *Body) []byte {
	t.Helper()
	got, err := io.ReadAll(b.Reader())
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(got)) != b.Length {
		t.Fatalf("read %d bytes, Length %d", len(got), b.Length)
	}
	return got
}

// A body of known length is received in full too (PHP gets no thread
// while a client trickles it), and can be read more than once.
func TestReceiveKnownLength(t *testing.T) {
	r := httptest.NewRequest("POST", "/a.php", strings.NewReader("hello"))
	b, err := receive(r, 1<<20, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Length != 5 || string(b.Bytes()) != "hello" || b.file != nil {
		t.Errorf("got %d %q", b.Length, b.Bytes())
	}
	for range 2 {
		if got := readAllBody(t, b); string(got) != "hello" {
			t.Errorf("read %q", got)
		}
	}
}

func TestReceiveShortBody(t *testing.T) {
	r := httptest.NewRequest("POST", "/a.php", strings.NewReader("hel"))
	r.ContentLength = 5
	if b, err := receive(r, 1<<20, t.TempDir()); err == nil || BodyStatus(err) != http.StatusBadRequest {
		t.Errorf("short body: %v %v", b, err)
	}
}

func TestReceiveEmpty(t *testing.T) {
	for _, r := range []*http.Request{
		httptest.NewRequest("GET", "/", nil),
		chunkedRequest(strings.NewReader("")),
	} {
		b, err := receive(r, 1<<20, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if got := readAllBody(t, b); len(got) != 0 || b.Length != 0 {
			t.Errorf("%d bytes", len(got))
		}
		b.Close()
	}
}

func TestReceiveChunkedSmall(t *testing.T) {
	tmp := t.TempDir()
	for _, size := range []int{1, 1000, 1 << 20} { // up to exactly the limit
		data := bytes.Repeat([]byte("x"), size)
		b, err := receive(chunkedRequest(bytes.NewReader(data)), 1<<20, tmp)
		if err != nil {
			t.Fatal(err)
		}
		if b.file != nil || dirEntries(t, tmp) != 0 {
			t.Errorf("%d bytes: spooled to a file", size)
		}
		if got := readAllBody(t, b); !bytes.Equal(got, data) {
			t.Errorf("%d bytes: body differs", size)
		}
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	}
}

func TestReceiveLarge(t *testing.T) {
	tmp := t.TempDir()
	data := make([]byte, 3<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for _, limit := range []int64{1 << 20, 0} {
		for _, declared := range []bool{false, true} {
			r := chunkedRequest(bytes.NewReader(data))
			if declared {
				r = httptest.NewRequest("POST", "/up.php", bytes.NewReader(data))
			}
			b, err := receive(r, limit, tmp)
			if err != nil {
				t.Fatal(err)
			}
			if b.file == nil {
				t.Fatalf("limit %d: not spooled", limit)
			}
			// Unlinked at once: nothing in tmpDir even before Close.
			if n := dirEntries(t, tmp); n != 0 {
				t.Errorf("limit %d: %d files in tmpDir", limit, n)
			}
			if got := readAllBody(t, b); !bytes.Equal(got, data) {
				t.Errorf("limit %d declared %v: body differs", limit, declared)
			}
			f := b.file
			if err := b.Close(); err != nil {
				t.Error(err)
			}
			if _, err := f.Stat(); err == nil {
				t.Error("file still open after Close")
			}
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

func TestReceiveErrors(t *testing.T) {
	tmp := t.TempDir()
	// The server's limit: *http.MaxBytesError comes back as is, from
	// memory and from the spooling phase.
	for _, size := range []int{100, 3 << 20} {
		r := chunkedRequest(bytes.NewReader(make([]byte, size)))
		r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, int64(size-1))
		b, err := receive(r, 1<<20, tmp)
		var mbe *http.MaxBytesError
		if b != nil || !errors.As(err, &mbe) || BodyStatus(err) != http.StatusRequestEntityTooLarge {
			t.Errorf("size %d: %v %T", size, b, err)
		}
	}
	// A reader error, e.g. the client gone.
	boom := errors.New("connection reset")
	for _, n := range []int{10, 2 << 20} {
		b, err := receive(chunkedRequest(&failAfter{n, boom}), 1<<20, tmp)
		if b != nil || err != boom {
			t.Errorf("after %d bytes: %v %v", n, b, err)
		}
	}
	if n := dirEntries(t, tmp); n != 0 {
		t.Errorf("%d files left after errors", n)
	}
	// No usable tmpDir: wrapped.
	_, err := receive(chunkedRequest(bytes.NewReader(make([]byte, 100))), 10, tmp+"/missing")
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "spooling") {
		t.Errorf("missing tmpDir: %v", err)
	}
}

// The budget bounds the bytes all bodies hold at once: a declared body
// over what is left is refused before a byte is read, a chunked one as
// soon as it outgrows it, and Close gives the bytes back.
func TestReceiveBudget(t *testing.T) {
	bb := &BodyBuffers{MemLimit: 64 << 10, TotalLimit: 1 << 20, TempDir: t.TempDir()}
	held, err := bb.Receive(httptest.NewRequest("POST", "/a.php", bytes.NewReader(make([]byte, 700<<10))))
	if err != nil {
		t.Fatal(err)
	}
	if bb.InUse() != 700<<10 {
		t.Errorf("in use %d", bb.InUse())
	}
	if _, err := bb.Receive(httptest.NewRequest("POST", "/a.php", bytes.NewReader(make([]byte, 400<<10)))); !errors.Is(err, ErrBodyBudget) || BodyStatus(err) != http.StatusServiceUnavailable {
		t.Errorf("declared over budget: %v", err)
	}
	if _, err := bb.Receive(chunkedRequest(bytes.NewReader(make([]byte, 400<<10)))); !errors.Is(err, ErrBodyBudget) {
		t.Errorf("chunked over budget: %v", err)
	}
	small, err := bb.Receive(chunkedRequest(bytes.NewReader(make([]byte, 1000))))
	if err != nil {
		t.Fatalf("small body within budget: %v", err)
	}
	small.Close()
	held.Close()
	if bb.InUse() != 0 {
		t.Errorf("in use after Close: %d", bb.InUse())
	}
}

// Spooled counts the body bytes written to temporary files.
func TestReceiveSpooledCount(t *testing.T) {
	bb := &BodyBuffers{MemLimit: 1 << 10, TempDir: t.TempDir()}
	for _, n := range []int{100, 5000} {
		b, err := bb.Receive(httptest.NewRequest("POST", "/up.php", bytes.NewReader(make([]byte, n))))
		if err != nil {
			t.Fatal(err)
		}
		b.Close()
	}
	if got := bb.Spooled(); got != 5000-1<<10 {
		t.Errorf("Spooled() = %d, want %d (what the larger body has past the memory limit)", got, 5000-1<<10)
	}
}
