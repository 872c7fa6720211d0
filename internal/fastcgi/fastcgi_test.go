package fastcgi

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fe-php/fe-php/internal/testutil/fpmtest"
)

func TestGetParams(t *testing.T) {
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			f := startFPM(t, fpmtest.Options{Listen: network, Children: 1})
			c := dial(t, f)
			long := strings.Repeat("v", 300)               // 4-byte value length
			longName := "HTTP_" + strings.Repeat("N", 200) // 4-byte name length
			res := roundTrip(t, c, &Request{Params: params(f, "GET", "env.php", "a=1&b=%C3%A9",
				"HTTP_X_TEST", "hello world",
				"HTTP_X_LONG", long,
				longName, "x",
				"HTTP_X_EMPTY", "",
				"HTTP_X_UNICODE", "héllo ✓",
			)})
			if ct := res.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			var env map[string]any
			if err := json.Unmarshal(res.body, &env); err != nil {
				t.Fatalf("%v in %q", err, truncate(res.body))
			}
			want := map[string]string{
				"REQUEST_METHOD":  "GET",
				"QUERY_STRING":    "a=1&b=%C3%A9",
				"SCRIPT_NAME":     "/env.php",
				"HTTP_X_TEST":     "hello world",
				"HTTP_X_LONG":     long,
				longName:          "x",
				"HTTP_X_EMPTY":    "",
				"HTTP_X_UNICODE":  "héllo ✓",
				"SERVER_SOFTWARE": "fe-php-test",
				"PHP_SELF":        "/env.php",
			}
			for k, v := range want {
				if got, _ := env[k].(string); got != v {
					t.Errorf("$_SERVER[%s] = %q, want %q", k, got, v)
				}
			}
			if res.resp.AppStatus() != 0 || res.resp.ProtocolStatus() != StatusRequestComplete {
				t.Errorf("app status %d, protocol status %d", res.resp.AppStatus(), res.resp.ProtocolStatus())
			}
			if len(res.stderr) != 0 {
				t.Errorf("stderr: %q", res.stderr)
			}
		})
	}
}

func TestManyParamsSpanRecords(t *testing.T) {
	// More than 64 KiB of params: several FCGI_PARAMS records, no pair split.
	f := startFPM(t, fpmtest.Options{Children: 1})
	c := dial(t, f)
	var extra []string
	for i := range 200 {
		extra = append(extra, fmt.Sprintf("HTTP_X_P%03d", i), strings.Repeat(string(rune('a'+i%26)), 1000))
	}
	extra = append(extra, "HTTP_X_BIG", strings.Repeat("B", 65000))
	res := roundTrip(t, c, &Request{Params: params(f, "GET", "env.php", "", extra...)})
	var env map[string]any
	if err := json.Unmarshal(res.body, &env); err != nil {
		t.Fatalf("%v in %q", err, truncate(res.body))
	}
	for i := 0; i < len(extra); i += 2 {
		if got, _ := env[extra[i]].(string); got != extra[i+1] {
			t.Fatalf("$_SERVER[%s]: got %d bytes, want %d", extra[i], len(got), len(extra[i+1]))
		}
	}
}

func TestParamTooLong(t *testing.T) {
	f := startFPM(t, fpmtest.Options{Children: 1})
	c := dial(t, f)
	_, err := c.Do(&Request{Params: params(f, "GET", "hello.php", "", "HTTP_COOKIE", strings.Repeat("c", 70000))})
	var pe *ParamTooLongError
	if !errors.As(err, &pe) || pe.Name != "HTTP_COOKIE" {
		t.Fatalf("err = %v, want ParamTooLongError for HTTP_COOKIE", err)
	}
	// Nothing was sent: the connection still works.
	res := roundTrip(t, c, &Request{Params: params(f, "GET", "hello.php", "")})
	if string(res.body) != "Hello, world!\n" {
		t.Fatalf("body %q", res.body)
	}
	if c.Reused() {
		t.Error("Reused after a request that was never sent")
	}
}

func TestPostBody(t *testing.T) {
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			f := startFPM(t, fpmtest.Options{Listen: network, Children: 1})
			c := dial(t, f)
			for _, size := range []int{0, 1, 100, 65535, 65536, 10 << 20} {
				body := make([]byte, size)
				rand.Read(body)
				sum := sha256.Sum256(body)
				res := roundTrip(t, c, &Request{
					Params: params(f, "POST", "post.php", "",
						"CONTENT_LENGTH", itoa(size),
						"CONTENT_TYPE", "application/octet-stream"),
					Body: bytes.NewReader(body),
				})
				want := fmt.Sprintf("%d %s", size, hex.EncodeToString(sum[:]))
				if string(res.body) != want {
					t.Fatalf("size %d: got %q, want %q", size, res.body, want)
				}
				if err := res.resp.BodyErr(); err != nil {
					t.Fatalf("BodyErr: %v", err)
				}
			}
			if c.Requests() != 6 {
				t.Errorf("Requests() = %d, want 6 on one connection", c.Requests())
			}
		})
	}
}

// trickleReader returns its data a few bytes per Read.
type trickleReader struct{ data []byte }

func (r *trickleReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 7)], r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestPostShortReads(t *testing.T) {
	f := startFPM(t, fpmtest.Options{Children: 1})
	c := dial(t, f)
	body := bytes.Repeat([]byte("0123456789"), 20000)
	sum := sha256.Sum256(body)
	res := roundTrip(t, c, &Request{
		Params: params(f, "POST", "post.php", "", "CONTENT_LENGTH", itoa(len(body)), "CONTENT_TYPE", "text/plain"),
		Body:   &trickleReader{data: body},
	})
	if want := fmt.Sprintf("%d %s", len(body), hex.EncodeToString(sum[:])); string(res.body) != want {
		t.Fatalf("got %q, want %q", res.body, want)
	}
}

type failingReader struct {
	n   int
	err error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, r.err
	}
	n := min(len(p), r.n)
	r.n -= n
	return n, nil
}

func TestPostBodyReadError(t *testing.T) {
	f := startFPM(t, fpmtest.Options{Children: 1})
	c := dial(t, f)
	clientGone := errors.New("client went away")
	resp, err := c.Do(&Request{
		Params: params(f, "POST", "post.php", "", "CONTENT_LENGTH", "1000000", "CONTENT_TYPE", "text/plain"),
		Body:   &failingReader{n: 100000, err: clientGone},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(resp)
	var be *BodyError
	if !errors.As(err, &be) || !errors.Is(err, clientGone) {
		t.Fatalf("Read error = %v, want a BodyError wrapping the reader's error", err)
	}
	if !errors.Is(resp.BodyErr(), clientGone) {
		t.Errorf("BodyErr = %v", resp.BodyErr())
	}
	if _, err := c.Do(&Request{Params: params(f, "GET", "hello.php", "")}); err == nil {
		t.Error("Do on the failed connection succeeded")
	}
	// The child is freed: a new connection works.
	res := roundTrip(t, dial(t, f), &Request{Params: params(f, "GET", "hello.php", "")})
	if string(res.body) != "Hello, world!\n" {
		t.Fatalf("body %q", res.body)
	}
}

func TestLargeResponse(t *testing.T) {
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			f := startFPM(t, fpmtest.Options{Listen: network, Children: 1})
			c := dial(t, f)
			const size = 10 << 20
			resp, err := c.Do(&Request{Params: params(f, "GET", "big.php", "n="+itoa(size))})
			if err != nil {
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			buf := make([]byte, 32<<10)
			h := sha256.New()
			total := 0
			for {
				n, err := resp.Read(buf)
				total += n
				h.Write(buf[:n])
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			runtime.ReadMemStats(&after)
			// The CGI header ("X-Powered-By: ...\r\nContent-type: ...\r\n\r\n") precedes the body.
			if total < size || total > size+200 {
				t.Fatalf("read %d bytes, want %d + header", total, size)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 2<<20 {
				t.Errorf("reading %d bytes allocated %d bytes: not streamed", size, alloc)
			}
			if !c.reusable() {
				t.Error("connection not reusable after a complete response")
			}
		})
	}
}

func TestStderr(t *testing.T) {
	// Default pool: no error_log set in php.ini, log_errors = On,
	// fastcgi.logging = 1 (default).
	f := startFPM(t, fpmtest.Options{Children: 1})
	c := dial(t, f)
	res := roundTrip(t, c, &Request{Params: params(f, "GET", "stderr.php", "")})
	if string(res.body) != "no STDERR constant\ndone" {
		t.Fatalf("body %q", res.body)
	}
	t.Logf("FCGI_STDERR records: %q", res.stderr)
	// PHP's own log channel (error_log() and error messages) goes to FCGI_STDERR.
	if !contains(res.stderr, "marker-error_log") {
		t.Errorf("error_log() not in FCGI_STDERR: %q", res.stderr)
	}
	if !contains(res.stderr, "PHP Warning:  marker-trigger_error") {
		t.Errorf("warning not in FCGI_STDERR: %q", res.stderr)
	}
	// Writes to the process's stderr (php://stderr) go to the FPM log
	// (catch_workers_output), not to the client.
	if contains(res.stderr, "marker-php-stderr") {
		t.Errorf("fd 2 output in FCGI_STDERR: %q", res.stderr)
	}
	if !eventually(5*time.Second, func() bool { return strings.Contains(f.Log(), "marker-php-stderr") }) {
		t.Errorf("fd 2 output not in the FPM log:\n%s", f.Log())
	}

	// With error_log set, error_log() and warnings go to that file instead.
	logFile := t.TempDir() + "/php-error.log"
	f2 := startFPM(t, fpmtest.Options{Children: 1, ExtraINI: map[string]string{"error_log": logFile}})
	res = roundTrip(t, dial(t, f2), &Request{Params: params(f2, "GET", "stderr.php", "")})
	if contains(res.stderr, "marker-error_log") {
		t.Errorf("with error_log set, FCGI_STDERR still has: %q", res.stderr)
	}
	data, _ := os.ReadFile(logFile)
	if !strings.Contains(string(data), "marker-error_log") {
		t.Errorf("error_log file: %q", data)
	}
}

func TestStderrInterleaved(t *testing.T) {
	// FPM collects the request's log messages and sends them as one
	// FCGI_STDERR record ahead of the next stdout flush, joined with "; ".
	f := startFPM(t, fpmtest.Options{Children: 1})
	c := dial(t, f)
	type rec struct {
		at  int
		msg string
	}
	var recs []rec
	total := 0
	resp, err := c.Do(&Request{
		Params: params(f, "GET", "stderr_order.php", ""),
		Stderr: func(p []byte) { recs = append(recs, rec{total, string(p)}) },
	})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1000)
	for {
		n, err := resp.Read(buf)
		total += n
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("stderr records (at stdout offset): %+v", recs)
	if len(recs) != 2 {
		t.Fatalf("%d stderr records, want 2: %+v", len(recs), recs)
	}
	if recs[0].at != 0 || recs[0].msg != "PHP message: first-message; PHP message: second-message" {
		t.Errorf("first record %q at %d", recs[0].msg, recs[0].at)
	}
	if recs[1].at < 100000 || recs[1].msg != "; PHP message: after-flush" {
		t.Errorf("second record %q at %d", recs[1].msg, recs[1].at)
	}
}

func TestExitStatus(t *testing.T) {
	f := startFPM(t, fpmtest.Options{Children: 1})
	c := dial(t, f)
	res := roundTrip(t, c, &Request{Params: params(f, "GET", "exit.php", "")})
	if string(res.body) != "bye" {
		t.Fatalf("body %q", res.body)
	}
	t.Logf("exit(3): AppStatus %d, ProtocolStatus %d", res.resp.AppStatus(), res.resp.ProtocolStatus())
	if res.resp.ProtocolStatus() != StatusRequestComplete {
		t.Errorf("ProtocolStatus = %d", res.resp.ProtocolStatus())
	}
	// A missing script: FPM answers 404 "File not found." itself.
	res = roundTrip(t, c, &Request{Params: params(f, "GET", "missing.php", "")})
	if res.header.Get("Status") != "404 Not Found" {
		t.Errorf("missing script: Status %q, body %q", res.header.Get("Status"), res.body)
	}
	if !contains(res.stderr, "Primary script unknown") {
		t.Errorf("missing script: stderr %q", res.stderr)
	}
}

func TestKeepAlive(t *testing.T) {
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			f := startFPM(t, fpmtest.Options{Listen: network, Children: 2})
			c := dial(t, f)
			pid := func(res *result) any {
				var env map[string]any
				if err := json.Unmarshal(res.body, &env); err != nil {
					t.Fatal(err)
				}
				return env["__pid"]
			}
			r1 := roundTrip(t, c, &Request{Params: params(f, "GET", "env.php", "")})
			if c.Reused() {
				t.Error("first request: Reused() = true")
			}
			r2 := roundTrip(t, c, &Request{Params: params(f, "GET", "env.php", "")})
			if !c.Reused() {
				t.Error("second request: Reused() = false")
			}
			if pid(r1) != pid(r2) {
				t.Errorf("requests served by children %v and %v: connection not kept", pid(r1), pid(r2))
			}
			if n := f.ConnCount(t); n != 1 {
				t.Errorf("FPM has %d connections, want 1", n)
			}
		})
	}
}

func TestBuffered(t *testing.T) {
	f := startFPM(t, fpmtest.Options{Children: 1})
	c := dial(t, f)
	resp, err := c.Do(&Request{Params: params(f, "GET", "flush.php", "")})
	if err != nil {
		t.Fatal(err)
	}
	// Read up to and including "first"; then nothing is buffered while the
	// script sleeps.
	var got []byte
	buf := make([]byte, 1)
	for !bytes.HasSuffix(got, []byte("first")) {
		if _, err := resp.Read(buf); err != nil {
			t.Fatalf("%v after %q", err, got)
		}
		got = append(got, buf[0])
		if !bytes.HasSuffix(got, []byte("first")) && resp.Buffered() == 0 {
			t.Fatalf("Buffered() = 0 in the middle of the first flush (%q)", got)
		}
	}
	if n := resp.Buffered(); n != 0 {
		t.Errorf("Buffered() = %d after the first flush's content", n)
	}
	rest, err := io.ReadAll(resp)
	if err != nil || string(rest) != "second" {
		t.Fatalf("rest %q, %v", rest, err)
	}
	if resp.Buffered() != 0 {
		t.Error("Buffered() != 0 after EOF")
	}
}

func TestPoolMaxSize(t *testing.T) {
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			// More children than MaxSize: an extra connection would be served,
			// so ConnCount would see it.
			f := startFPM(t, fpmtest.Options{Listen: network, Children: 5})
			p := NewPool(PoolConfig{Network: f.Network, Address: f.Address, MaxSize: 3, ConnectTimeout: time.Second, WaitTimeout: 10 * time.Second, KeepAlive: time.Minute})
			defer p.Close()

			stop := make(chan struct{})
			var maxConn, maxOpen, maxWaiting atomic.Int64
			var sampler sync.WaitGroup
			sampler.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if n := int64(f.ConnCount(t)); n > maxConn.Load() {
						maxConn.Store(n)
					}
					s := p.Stats()
					if int64(s.Open) > maxOpen.Load() {
						maxOpen.Store(int64(s.Open))
					}
					if int64(s.Waiting) > maxWaiting.Load() {
						maxWaiting.Store(int64(s.Waiting))
					}
					time.Sleep(time.Millisecond)
				}
			})

			var wg sync.WaitGroup
			errs := make(chan error, 100)
			for range 20 {
				wg.Go(func() {
					for range 5 {
						c, err := p.Get(context.Background())
						if err != nil {
							errs <- err
							return
						}
						resp, err := c.Do(&Request{Params: params(f, "GET", "slow.php", "lines=2&ms=5")})
						if err != nil {
							c.Close()
							errs <- err
							return
						}
						b, err := io.ReadAll(resp)
						if err != nil || !bytes.Contains(b, []byte("line 1 ")) {
							c.Close()
							errs <- fmt.Errorf("response %q, %v", b, err)
							return
						}
						p.Put(c)
					}
				})
			}
			wg.Wait()
			close(stop)
			sampler.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			s := p.Stats()
			t.Logf("max FPM connections %d, max open %d, max waiting %d; final %+v", maxConn.Load(), maxOpen.Load(), maxWaiting.Load(), s)
			if maxConn.Load() > 3 || maxOpen.Load() > 3 {
				t.Errorf("MaxSize 3 exceeded: FPM saw %d connections, pool had %d open", maxConn.Load(), maxOpen.Load())
			}
			if maxWaiting.Load() == 0 {
				t.Error("no Get ever waited: the test did not exercise the limit")
			}
			if s.Open > 3 || s.Idle != s.Open || s.InUse != 0 || s.Waiting != 0 {
				t.Errorf("final stats %+v", s)
			}
			if s.Dials > 3 {
				t.Errorf("%d dials for 3 connections: idle connections not reused", s.Dials)
			}
			if n := f.ConnCount(t); n != s.Open {
				t.Errorf("FPM has %d connections, pool %d open", n, s.Open)
			}
			p.Close()
			if !eventually(5*time.Second, func() bool { return f.ConnCount(t) == 0 }) {
				t.Errorf("after Close, FPM still has %d connections", f.ConnCount(t))
			}
		})
	}
}

func TestPoolExhausted(t *testing.T) {
	f := startFPM(t, fpmtest.Options{Children: 2})
	p := NewPool(PoolConfig{Network: f.Network, Address: f.Address, MaxSize: 2, WaitTimeout: 200 * time.Millisecond, KeepAlive: time.Minute})
	defer p.Close()
	ctx := context.Background()
	c1, err := p.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := p.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := p.Get(ctx); !errors.Is(err, ErrPoolExhausted) {
		t.Fatalf("third Get: %v, want ErrPoolExhausted", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > 2*time.Second {
		t.Errorf("ErrPoolExhausted after %v, want about WaitTimeout (200ms)", d)
	}
	if s := p.Stats(); s.Open != 2 || s.InUse != 2 || s.Waiting != 0 || s.Timeouts != 1 {
		t.Errorf("stats %+v", s)
	}

	// A canceled context ends the wait with its error.
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := p.Get(cctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Get with expiring context: %v", err)
	}

	// A waiter gets the connection returned by Put.
	got := make(chan *Conn)
	go func() {
		c, err := p.Get(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- c
	}()
	if !eventually(time.Second, func() bool { return p.Stats().Waiting == 1 }) {
		t.Fatal("Get did not wait")
	}
	roundTrip(t, c1, &Request{Params: params(f, "GET", "hello.php", "")})
	p.Put(c1)
	if c := <-got; c != c1 {
		t.Errorf("waiter got %p, want the returned connection %p", c, c1)
	}

	// A waiter gets the slot of a closed connection and dials.
	go func() {
		c, err := p.Get(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- c
	}()
	if !eventually(time.Second, func() bool { return p.Stats().Waiting == 1 }) {
		t.Fatal("Get did not wait")
	}
	c2.Close()
	c3 := <-got
	if c3 == nil || c3 == c2 {
		t.Fatalf("waiter got %p", c3)
	}
	roundTrip(t, c3, &Request{Params: params(f, "GET", "hello.php", "")})
	if s := p.Stats(); s.Open != 2 || s.Dials != 3 {
		t.Errorf("stats %+v", s)
	}
	p.Put(c1)
	p.Put(c3)
	if s := p.Stats(); s.Open != 2 || s.Idle != 2 {
		t.Errorf("stats %+v", s)
	}
}

func TestPoolPutUnfinished(t *testing.T) {
	f := startFPM(t, fpmtest.Options{Children: 2})
	p := NewPool(PoolConfig{Network: f.Network, Address: f.Address, MaxSize: 2, KeepAlive: time.Minute})
	defer p.Close()
	c, err := p.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(&Request{Params: params(f, "GET", "big.php", "n=1000000")})
	if err != nil {
		t.Fatal(err)
	}
	resp.Read(make([]byte, 100))
	p.Put(c) // response not read to its end: closed, not pooled
	if s := p.Stats(); s.Open != 0 || s.Idle != 0 {
		t.Errorf("stats after Put of an unfinished conn: %+v", s)
	}
	if _, err := c.Do(&Request{Params: params(f, "GET", "hello.php", "")}); !errors.Is(err, ErrConnClosed) {
		t.Errorf("Do after Put closed it: %v", err)
	}
}

func TestPoolIdleTimeout(t *testing.T) {
	f := startFPM(t, fpmtest.Options{Children: 2})
	// KeepAlive < 0: MaxIdleTime alone limits the idle time.
	p := NewPool(PoolConfig{Network: f.Network, Address: f.Address, MaxSize: 2, MaxIdleTime: 100 * time.Millisecond, KeepAlive: -1})
	defer p.Close()
	c, err := p.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, &Request{Params: params(f, "GET", "hello.php", "")})
	p.Put(c)
	if s := p.Stats(); s.Idle != 1 {
		t.Fatalf("stats %+v", s)
	}
	if !eventually(2*time.Second, func() bool { return p.Stats().Open == 0 }) {
		t.Fatalf("idle connection not closed: %+v", p.Stats())
	}
	if !eventually(2*time.Second, func() bool { return f.ConnCount(t) == 0 }) {
		t.Errorf("FPM still has %d connections", f.ConnCount(t))
	}
}

func TestPoolMaxLifetime(t *testing.T) {
	f := startFPM(t, fpmtest.Options{Children: 2})
	p := NewPool(PoolConfig{Network: f.Network, Address: f.Address, MaxSize: 2, MaxLifetime: 150 * time.Millisecond, KeepAlive: time.Minute})
	defer p.Close()
	c, err := p.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	roundTrip(t, c, &Request{Params: params(f, "GET", "hello.php", "")})
	p.Put(c) // too old: closed
	if s := p.Stats(); s.Open != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestPoolClose(t *testing.T) {
	f := startFPM(t, fpmtest.Options{Children: 2})
	p := NewPool(PoolConfig{Network: f.Network, Address: f.Address, MaxSize: 1, KeepAlive: time.Minute})
	c, err := p.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	waitErr := make(chan error)
	go func() {
		_, err := p.Get(context.Background())
		waitErr <- err
	}()
	if !eventually(time.Second, func() bool { return p.Stats().Waiting == 1 }) {
		t.Fatal("Get did not wait")
	}
	p.Close()
	if err := <-waitErr; !errors.Is(err, ErrPoolClosed) {
		t.Errorf("waiting Get: %v", err)
	}
	if _, err := p.Get(context.Background()); !errors.Is(err, ErrPoolClosed) {
		t.Errorf("Get after Close: %v", err)
	}
	roundTrip(t, c, &Request{Params: params(f, "GET", "hello.php", "")})
	p.Put(c)
	if s := p.Stats(); s.Open != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestMaxRequests(t *testing.T) {
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			f := startFPM(t, fpmtest.Options{Listen: network, Children: 1, MaxRequests: 2})
			c := dial(t, f)
			for i := range 2 {
				res := roundTrip(t, c, &Request{Params: params(f, "GET", "hello.php", "")})
				if string(res.body) != "Hello, world!\n" {
					t.Fatalf("request %d: %q", i, res.body)
				}
			}
			// After the child's last request FPM half-closes the kept
			// connection (shutdown SHUT_WR) and waits for us to close ours.
			if !eventually(5*time.Second, func() bool { return !c.alive() }) {
				t.Fatal("alive() stays true on a connection FPM closed")
			}
			children := f.ChildPids()
			resp, err := c.Do(&Request{Params: params(f, "GET", "hello.php", "")})
			if err == nil {
				var n int
				n, err = resp.Read(make([]byte, 100))
				if n != 0 {
					t.Fatalf("read %d bytes on a closed connection", n)
				}
				if resp.Received() {
					t.Error("Received() = true")
				}
			}
			if err == nil || err == io.EOF {
				t.Fatalf("third request on the recycled connection: err = %v", err)
			}
			t.Logf("third request on the recycled connection: %v", err)
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("err = %v, want io.ErrUnexpectedEOF", err)
			}
			// FPM half-closed and drains: the write succeeded, and EOF
			// after a written request proves nothing (see ErrNotSent).
			if errors.Is(err, ErrNotSent) {
				t.Errorf("err = %v matches ErrNotSent", err)
			}
			if !c.Reused() {
				t.Error("Reused() = false")
			}
			// The child exits (and is replaced) only once we close.
			time.Sleep(50 * time.Millisecond)
			if got := f.ChildPids(); fmt.Sprint(got) != fmt.Sprint(children) {
				t.Errorf("children %v became %v before the client closed", children, got)
			}
			c.Close()
			if !eventually(5*time.Second, func() bool {
				got := f.ChildPids()
				return len(got) == 1 && got[0] != children[0]
			}) {
				t.Errorf("child %v not replaced after close: %v", children, f.ChildPids())
			}

			// The pool finds such connections dead on Get (or the janitor does), closes
			// them, and dials anew: no request fails.
			p := NewPool(PoolConfig{Network: f.Network, Address: f.Address, MaxSize: 1, KeepAlive: time.Minute})
			defer p.Close()
			for i := range 6 {
				pc, err := p.Get(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				pc.SetDeadline(time.Now().Add(5 * time.Second))
				res := roundTrip(t, pc, &Request{Params: params(f, "GET", "hello.php", "")})
				if string(res.body) != "Hello, world!\n" {
					t.Fatalf("pool request %d: %q", i, res.body)
				}
				if i%2 == 1 {
					// Let the FIN arrive: a request crossing it fails (and is
					// not retried, see ErrNotSent).
					eventually(time.Second, func() bool { return !pc.alive() })
				}
				p.Put(pc)
			}
			// The last one is found by the next Get.
			pc, err := p.Get(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			p.Put(pc)
			s := p.Stats()
			t.Logf("pool stats %+v", s)
			if s.Dials != 4 || s.Dead != 3 {
				t.Errorf("stats %+v: want 4 dials, 3 dead connections found", s)
			}
		})
	}
}

func TestDialRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = Dial(context.Background(), "tcp", addr, time.Second)
	if err == nil {
		t.Fatal("no error")
	}
	want := "fastcgi: dial tcp " + addr + ": connect: connection refused"
	if err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}

	sock := t.TempDir() + "/none.sock"
	_, err = Dial(context.Background(), "unix", sock, time.Second)
	if err == nil || !strings.Contains(err.Error(), sock) || !strings.Contains(err.Error(), "no such file or directory") {
		t.Errorf("unix: err = %v", err)
	}

	p := NewPool(PoolConfig{Network: "tcp", Address: addr, MaxSize: 1})
	defer p.Close()
	if _, err := p.Get(context.Background()); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("pool: %v", err)
	}
	if s := p.Stats(); s.Open != 0 || s.DialFails != 1 {
		t.Errorf("pool stats after failed dial: %+v", s)
	}
}

func TestAbort(t *testing.T) {
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			f := startFPM(t, fpmtest.Options{Listen: network, Children: 1})
			c := dial(t, f)
			resp, err := c.Do(&Request{Params: params(f, "GET", "slow.php", "lines=100000&ms=1")})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := resp.Read(make([]byte, 10)); err != nil {
				t.Fatal(err)
			}
			c.Abort()
			if _, err := io.ReadAll(resp); err == nil {
				t.Error("Read after Abort: no error")
			}
			if _, err := c.Do(&Request{Params: params(f, "GET", "hello.php", "")}); !errors.Is(err, ErrConnClosed) {
				t.Errorf("Do after Abort: %v", err)
			}
			// The only child gives up the aborted script and serves again.
			c2 := dial(t, f)
			c2.SetDeadline(time.Now().Add(10 * time.Second))
			res := roundTrip(t, c2, &Request{Params: params(f, "GET", "hello.php", "")})
			if string(res.body) != "Hello, world!\n" {
				t.Fatalf("after abort: %q", res.body)
			}
			if n := f.ConnCount(t); n != 1 {
				t.Errorf("FPM has %d connections, want 1", n)
			}
		})
	}
}

func TestAbortFromOtherGoroutine(t *testing.T) {
	f := startFPM(t, fpmtest.Options{Children: 1})
	c := dial(t, f)
	body := make([]byte, 8<<20)
	resp, err := c.Do(&Request{
		Params: params(f, "POST", "slow.php", "lines=100000&ms=1", "CONTENT_LENGTH", itoa(len(body)), "CONTENT_TYPE", "text/plain"),
		Body:   bytes.NewReader(body),
	})
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(100*time.Millisecond, c.Abort)
	done := make(chan error)
	go func() {
		_, err := io.Copy(io.Discard, resp)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Error("no error after Abort")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read not ended by Abort")
	}
}

func TestEchoBeforeReadNoDeadlock(t *testing.T) {
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			f := startFPM(t, fpmtest.Options{Listen: network, Children: 1})
			c := dial(t, f)
			c.SetDeadline(time.Now().Add(30 * time.Second))
			body := make([]byte, 5<<20)
			rand.Read(body)
			sum := sha256.Sum256(body)
			res := roundTrip(t, c, &Request{
				Params: params(f, "POST", "echo_then_read.php", "", "CONTENT_LENGTH", itoa(len(body)), "CONTENT_TYPE", "application/octet-stream"),
				Body:   bytes.NewReader(body),
			})
			want := fmt.Sprintf("%s\n%d %s", strings.Repeat("x", 1<<20), len(body), hex.EncodeToString(sum[:]))
			if string(res.body) != want {
				t.Fatalf("got %d bytes ending %q", len(res.body), res.body[max(0, len(res.body)-80):])
			}
		})
	}
}

func TestRestartedFPM(t *testing.T) {
	// Every pooled connection dies with FPM; Get finds them dead and dials anew.
	f := startFPM(t, fpmtest.Options{Listen: "tcp", Children: 2})
	p := NewPool(PoolConfig{Network: f.Network, Address: f.Address, MaxSize: 2, KeepAlive: time.Minute})
	defer p.Close()
	do := func() string {
		c, err := p.Get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		res := roundTrip(t, c, &Request{Params: params(f, "GET", "hello.php", "")})
		p.Put(c)
		return string(res.body)
	}
	do()
	f.Restart(t)
	if got := do(); got != "Hello, world!\n" {
		t.Fatalf("after restart: %q", got)
	}
	if s := p.Stats(); s.Dead != 1 || s.Dials != 2 {
		t.Errorf("stats %+v", s)
	}
	f.Kill()
	c, err := p.Get(context.Background())
	if err == nil {
		c.Close()
		t.Fatal("Get succeeded with FPM killed")
	}
	t.Logf("Get with FPM killed: %v", err)
}

func BenchmarkHello(b *testing.B) {
	for _, network := range networks {
		b.Run(network, func(b *testing.B) {
			f := startFPM(b, fpmtest.Options{Listen: network, Children: 4})
			p := NewPool(PoolConfig{Network: f.Network, Address: f.Address, MaxSize: 4, ConnectTimeout: time.Second, KeepAlive: 2 * time.Second})
			defer p.Close()
			env := params(f, "GET", "hello.php", "")
			req := &Request{Params: env}
			buf := make([]byte, 4096)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				c, err := p.Get(ctx)
				if err != nil {
					b.Fatal(err)
				}
				resp, err := c.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for {
					m, err := resp.Read(buf[n:])
					n += m
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				if !bytes.HasSuffix(buf[:n], []byte("Hello, world!\n")) {
					b.Fatalf("response %q", buf[:n])
				}
				p.Put(c)
			}
		})
	}
}

func BenchmarkHelloParallel(b *testing.B) {
	f := startFPM(b, fpmtest.Options{Listen: "unix", Children: 4})
	p := NewPool(PoolConfig{Network: f.Network, Address: f.Address, MaxSize: 4, ConnectTimeout: time.Second, KeepAlive: 2 * time.Second})
	defer p.Close()
	env := params(f, "GET", "hello.php", "")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := &Request{Params: env}
		buf := make([]byte, 4096)
		for pb.Next() {
			c, err := p.Get(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			resp, err := c.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			for {
				_, err := resp.Read(buf)
				if err == io.EOF {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			p.Put(c)
		}
	})
}
