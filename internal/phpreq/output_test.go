package phpreq

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

func newTestOutput(t *testing.T, method string, mem, file int64) (*Output, *httptest.ResponseRecorder) {
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(method, "/x.php", nil)
	return newOutput(rec, r, &OutputLimits{MemLimit: mem, FileLimit: file, TempDir: t.TempDir()}, func(*Output, string) {}), rec
}

// Without a flush, the whole response is taken in (memory, then a file)
// without the client reading anything, and sent with its length.
func TestOutputBuffersWholeResponse(t *testing.T) {
	o, rec := newTestOutput(t, "GET", 64<<10, 8<<20)
	if err := o.Head(200, []byte("Content-Type: text/plain\nX-A: 1")); err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	for p := want; len(p) > 0; p = p[min(len(p), 8192):] {
		if _, err := o.Write(p[:min(len(p), 8192)]); err != nil {
			t.Fatal(err)
		}
	}
	if rec.Body.Len() != 0 || o.streaming {
		t.Fatal("output reached the client before the script ended")
	}
	if o.file == nil {
		t.Error("1 MiB over a 64 KiB memory limit: no temporary file")
	}
	if got := o.lim.Spooled(); got != int64(len(want))-64<<10 {
		t.Errorf("Spooled() = %d, want the %d bytes past the memory limit", got, len(want)-64<<10)
	}
	sent, err, abort := o.end(nil)
	if !sent || err != nil || abort {
		t.Fatalf("end: %v %v %v", sent, err, abort)
	}
	if !bytes.Equal(rec.Body.Bytes(), want) {
		t.Errorf("body differs: %d bytes", rec.Body.Len())
	}
	if got := rec.Header().Get("Content-Length"); got != "1048576" {
		t.Errorf("Content-Length %q", got)
	}
}

// lockedRecorder is a ResponseRecorder the test may read while the
// delivery goroutine writes.
type lockedRecorder struct {
	*httptest.ResponseRecorder
	mu sync.Mutex
}

func (l *lockedRecorder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ResponseRecorder.Write(p)
}

func (l *lockedRecorder) body() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.Body.String()
}

// A flush passes the output on at once, before the script ends.
func TestOutputFlushStreams(t *testing.T) {
	rec := &lockedRecorder{ResponseRecorder: httptest.NewRecorder()}
	o := newOutput(rec, httptest.NewRequest("GET", "/x.php", nil), &OutputLimits{MemLimit: 64 << 10}, func(*Output, string) {})
	o.Head(200, nil)
	o.Write([]byte("first"))
	o.Flush()
	deadline := time.Now().Add(5 * time.Second)
	for rec.body() != "first" {
		if time.Now().After(deadline) {
			t.Fatalf("flushed output not sent: %q", rec.body())
		}
		time.Sleep(time.Millisecond)
	}
	o.Write([]byte("-second"))
	if _, err, _ := o.end(nil); err != nil {
		t.Fatal(err)
	}
	if rec.body() != "first-second" || rec.Header().Get("Content-Length") != "" {
		t.Errorf("%q, Content-Length %q", rec.body(), rec.Header().Get("Content-Length"))
	}
}

// Past both buffers the producer waits for the client, never drops.
func TestOutputFullBuffersWait(t *testing.T) {
	o, rec := newTestOutput(t, "GET", 4<<10, 8<<10)
	o.Head(200, nil)
	want := bytes.Repeat([]byte("x"), 100*1000)
	for p := want; len(p) > 0; p = p[1000:] {
		if _, err := o.Write(p[:1000]); err != nil {
			t.Fatal(err)
		}
		if len(p) == 1000 {
			break
		}
	}
	o.end(nil)
	if rec.Body.Len() != len(want) {
		t.Errorf("%d bytes, want %d", rec.Body.Len(), len(want))
	}
}

// One write larger than both buffers, once delivery runs: the delivery
// goroutine is woken for what the write buffered, never left asleep while
// the writer waits for it (a deadlock found by review).
func TestOutputOneWriteOverBothBuffers(t *testing.T) {
	for _, file := range []int64{0, 8 << 10} {
		o, rec := newTestOutput(t, "GET", 4<<10, file)
		o.Head(200, nil)
		o.Write([]byte("start"))
		o.Flush() // delivery starts, sends "start", then sleeps: nothing buffered
		want := bytes.Repeat([]byte("y"), 100*1000)
		done := make(chan error, 1)
		go func() {
			_, err := o.Write(want)
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("file limit %d: a write larger than both buffers never returned", file)
		}
		o.end(nil)
		if rec.Body.Len() != len("start")+len(want) {
			t.Errorf("file limit %d: %d bytes, want %d", file, rec.Body.Len(), len("start")+len(want))
		}
	}
}

// fastcgi_finish_request(): the response is complete with its length;
// later output is dropped.
func TestOutputFinish(t *testing.T) {
	o, rec := newTestOutput(t, "GET", 64<<10, 0)
	o.Head(200, nil)
	o.Write([]byte("done"))
	if err := o.Finish(); err != nil {
		t.Fatal(err)
	}
	if n, err := o.Write([]byte("LATE")); n != 4 || err != nil {
		t.Errorf("write after finish: %d %v", n, err)
	}
	o.end(errors.New("the script failed later"))
	if rec.Body.String() != "done" || rec.Header().Get("Content-Length") != "4" {
		t.Errorf("%q, Content-Length %q", rec.Body.String(), rec.Header().Get("Content-Length"))
	}
}

// A failure before anything was sent leaves the client untouched (the
// pipeline sends the error status); after streaming began it aborts.
func TestOutputFailure(t *testing.T) {
	o, rec := newTestOutput(t, "GET", 64<<10, 0)
	o.Head(200, []byte("Set-Cookie: a=b"))
	o.Write([]byte("partial"))
	boom := &Error{Status: 502, Fault: FaultUpstream, Err: errors.New("reset")}
	sent, err, abort := o.end(boom)
	if sent || err != boom || abort || rec.Body.Len() != 0 || rec.Header().Get("Set-Cookie") != "" {
		t.Errorf("before streaming: sent %v err %v abort %v body %q", sent, err, abort, rec.Body.String())
	}

	o, _ = newTestOutput(t, "GET", 64<<10, 0)
	o.Head(200, nil)
	o.Write([]byte("partial"))
	o.Flush()
	if sent, err, abort := o.end(boom); !sent || err != boom || !abort {
		t.Errorf("while streaming: sent %v err %v abort %v", sent, err, abort)
	}
}

// An invalid head is the response's error: PHP's output never goes out.
func TestOutputInvalidHead(t *testing.T) {
	o, rec := newTestOutput(t, "GET", 64<<10, 0)
	if err := o.Head(1000, nil); err == nil {
		t.Fatal("status 1000 accepted")
	}
	if _, err := o.Write([]byte("x")); err == nil {
		t.Error("write after an invalid head accepted")
	}
	var pe *Error
	if sent, err, _ := o.end(nil); sent || !errors.As(err, &pe) || pe.Status != http.StatusInternalServerError || rec.Body.Len() != 0 {
		t.Errorf("sent %v err %v", sent, err)
	}
}

// PHP's Content-Length is checked against its output when the whole
// response is in hand: the true length goes out.
func TestOutputLengthMismatch(t *testing.T) {
	o, rec := newTestOutput(t, "GET", 64<<10, 0)
	o.Head(200, []byte("Content-Length: 100"))
	o.Write([]byte("short"))
	o.end(nil)
	if rec.Header().Get("Content-Length") != "5" || rec.Body.String() != "short" {
		t.Errorf("Content-Length %q body %q", rec.Header().Get("Content-Length"), rec.Body.String())
	}
}
