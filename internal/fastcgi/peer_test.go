package fastcgi

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Tests against a fake FastCGI peer: a goroutine speaking the protocol on a
// net.Pipe, a Unix socket pair, or a Unix listener for pools.

// peerRecord reads one record (no t.Fatal: it runs in the peer goroutine).
func peerRecord(r io.Reader) (record, error) {
	var h [8]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return record{}, err
	}
	if h[0] != 1 {
		return record{}, fmt.Errorf("peer: version %d", h[0])
	}
	n := int(binary.BigEndian.Uint16(h[4:6]))
	b := make([]byte, n+int(h[6]))
	if _, err := io.ReadFull(r, b); err != nil {
		return record{}, err
	}
	return record{h[1], binary.BigEndian.Uint16(h[2:4]), b[:n]}, nil
}

// peerRequest is one request as the peer read it.
type peerRequest struct {
	id    uint16
	ids   []uint16 // the id of every record, in order
	stdin []byte
}

// peerReadRequest reads a whole request: FCGI_BEGIN_REQUEST, the params up to
// the empty record, stdin up to the empty record.
func peerReadRequest(r io.Reader) (*peerRequest, error) {
	begin, err := peerRecord(r)
	if err != nil {
		return nil, err
	}
	if begin.typ != typeBeginRequest {
		return nil, fmt.Errorf("peer: record type %d, want FCGI_BEGIN_REQUEST", begin.typ)
	}
	req := &peerRequest{id: begin.id, ids: []uint16{begin.id}}
	for _, typ := range []uint8{typeParams, typeStdin} {
		for {
			rec, err := peerRecord(r)
			if err != nil {
				return nil, err
			}
			if rec.typ != typ {
				return nil, fmt.Errorf("peer: record type %d, want %d", rec.typ, typ)
			}
			req.ids = append(req.ids, rec.id)
			if typ == typeStdin {
				req.stdin = append(req.stdin, rec.content...)
			}
			if len(rec.content) == 0 {
				break
			}
		}
	}
	return req, nil
}

// peerRespond writes a complete response for id.
func peerRespond(w io.Writer, id uint16, body string) {
	writeRecord(w, typeStdout, id, []byte("Content-Type: text/plain\r\n\r\n"+body), 0)
	writeRecord(w, typeStdout, id, nil, 0)
	writeRecord(w, typeEndRequest, id, make([]byte, 8), 0)
}

// unixPair returns both ends of a connected Unix stream socket pair: real
// sockets, so that the liveness check (MSG_PEEK) and EPIPE behave as with FPM.
func unixPair(t *testing.T) (client, server *net.UnixConn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int, name string) *net.UnixConn {
		f := os.NewFile(uintptr(fd), name)
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c.(*net.UnixConn)
	}
	return conn(fds[0], "client"), conn(fds[1], "server")
}

// fakeServer listens on a Unix socket and runs serve for each connection.
func fakeServer(t *testing.T, serve func(n int, c net.Conn)) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "fcgi") // t.TempDir() can exceed the socket path limit
	if err != nil {
		t.Fatal(err)
	}
	addr := filepath.Join(dir, "s.sock")
	l, err := net.Listen("unix", addr)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
		os.RemoveAll(dir)
	})
	wg.Go(func() {
		for n := 0; ; n++ {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				serve(n, c)
			})
		}
	})
	return addr
}

func readAllString(t *testing.T, resp *Response) string {
	t.Helper()
	b, err := io.ReadAll(resp)
	if err != nil {
		t.Fatalf("read response: %v (got %q)", err, b)
	}
	return string(b)
}

func TestRequestIDs(t *testing.T) {
	cli, srv := net.Pipe()
	defer srv.Close()
	c := NewConn(cli)
	defer c.Close()
	got := make(chan *peerRequest, 10)
	go func() {
		for {
			req, err := peerReadRequest(srv)
			if err != nil {
				close(got)
				return
			}
			got <- req
			peerRespond(srv, req.id, "ok")
		}
	}()
	do := func(body io.Reader) uint16 {
		t.Helper()
		// Over 64 KiB of params: several PARAMS records.
		resp, err := c.Do(&Request{Params: pairs("A", "1", "B", strings.Repeat("b", 40000), "C", strings.Repeat("c", 40000)), Body: body})
		if err != nil {
			t.Fatal(err)
		}
		if out := readAllString(t, resp); !strings.HasSuffix(out, "ok") {
			t.Fatalf("response %q", out)
		}
		req := <-got
		for _, id := range req.ids {
			if id != req.id {
				t.Fatalf("request %d has records with ids %v", req.id, req.ids)
			}
		}
		return req.id
	}
	var ids []uint16
	for i := range 4 {
		var body io.Reader
		if i%2 == 1 {
			body = bytes.NewReader(make([]byte, 100000))
		}
		ids = append(ids, do(body))
	}
	if fmt.Sprint(ids) != "[1 2 3 4]" {
		t.Errorf("request ids %v, want [1 2 3 4]", ids)
	}
	// The id wraps to 1, never 0 (the id of management records).
	c.id.Store(65534)
	ids = ids[:0]
	for range 2 {
		ids = append(ids, do(nil))
	}
	if fmt.Sprint(ids) != "[65535 1]" {
		t.Errorf("request ids %v, want [65535 1]", ids)
	}
}

// latePeer serves two requests the way PHP-FPM does when the first script
// writes after fastcgi_finish_request(): the first request's FCGI_END_REQUEST,
// then, once the next request was read, more FCGI_STDOUT of the first request
// (here a forged header and a body), then the second response.
func latePeer(srv net.Conn) {
	req, err := peerReadRequest(srv)
	if err != nil {
		return
	}
	peerRespond(srv, req.id, "first")
	next, err := peerReadRequest(srv)
	if err != nil {
		return
	}
	writeRecord(srv, typeStdout, req.id, []byte("Set-Cookie: session=stolen\r\n\r\nLATE-SECRET"), 5)
	writeRecord(srv, typeStdout, req.id, nil, 0)
	writeRecord(srv, typeEndRequest, req.id, make([]byte, 8), 0) // FPM sends none; an old client would end here
	peerRespond(srv, next.id, "second")
}

func TestLateOutputOfEarlierRequest(t *testing.T) {
	cli, srv := unixPair(t)
	go latePeer(srv)
	c := NewConn(cli)
	defer c.Close()
	resp, err := c.Do(&Request{})
	if err != nil {
		t.Fatal(err)
	}
	if out := readAllString(t, resp); out != "Content-Type: text/plain\r\n\r\nfirst" {
		t.Fatalf("first response %q", out)
	}
	resp, err = c.Do(&Request{})
	if err != nil {
		t.Fatal(err)
	}
	out := readAllString(t, resp)
	if out != "Content-Type: text/plain\r\n\r\nsecond" {
		t.Errorf("second response %q, want only its own output", out)
	}
	if !c.Tainted() || c.reusable() {
		t.Errorf("Tainted %v, reusable %v: want a connection never reused", c.Tainted(), c.reusable())
	}
	if _, err := c.Do(&Request{}); !errors.Is(err, ErrConnBroken) {
		t.Errorf("Do on a tainted connection: %v, want ErrConnBroken", err)
	}
}

func TestPoolLateOutputOfEarlierRequest(t *testing.T) {
	addr := fakeServer(t, func(_ int, c net.Conn) { latePeer(c) })
	p := NewPool(PoolConfig{Network: "unix", Address: addr, MaxSize: 1, KeepAlive: time.Minute})
	defer p.Close()
	ctx := context.Background()
	var bodies []string
	var conns []*Conn
	for range 3 {
		c, err := p.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		resp, err := c.Do(&Request{})
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, readAllString(t, resp))
		conns = append(conns, c)
		p.Put(c)
	}
	want := []string{"first", "second", "first"} // the third on a new connection
	for i, b := range bodies {
		if b != "Content-Type: text/plain\r\n\r\n"+want[i] {
			t.Errorf("response %d: %q, want %q", i, b, want[i])
		}
	}
	if conns[0] != conns[1] || conns[2] == conns[1] {
		t.Errorf("connections %p %p %p: want the first reused once, then a new one", conns[0], conns[1], conns[2])
	}
	if s := p.Stats(); s.Stray != 1 || s.Dials != 2 || s.Pending != 0 {
		t.Errorf("stats %+v: want 1 stray, 2 dials", s)
	}
}

func TestPoolUnsolicitedBytesWhileIdle(t *testing.T) {
	// Late output that arrives while the connection is idle: the liveness
	// check on Get (or the janitor) closes it.
	sent := make(chan struct{})
	addr := fakeServer(t, func(n int, c net.Conn) {
		req, err := peerReadRequest(c)
		if err != nil {
			return
		}
		peerRespond(c, req.id, fmt.Sprint("conn ", n))
		if n == 0 {
			time.Sleep(20 * time.Millisecond) // after Put
			writeRecord(c, typeStdout, req.id, []byte("LATE-SECRET"), 0)
			close(sent)
		}
		io.Copy(io.Discard, c)
	})
	p := NewPool(PoolConfig{Network: "unix", Address: addr, MaxSize: 1, KeepAlive: time.Minute})
	defer p.Close()
	get := func() string {
		c, err := p.Get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		resp, err := c.Do(&Request{})
		if err != nil {
			t.Fatal(err)
		}
		out := readAllString(t, resp)
		p.Put(c)
		return out
	}
	if out := get(); !strings.HasSuffix(out, "conn 0") {
		t.Fatalf("first response %q", out)
	}
	if s := p.Stats(); s.Idle != 1 {
		t.Fatalf("stats %+v: connection not kept", s)
	}
	<-sent
	time.Sleep(10 * time.Millisecond)
	if out := get(); !strings.HasSuffix(out, "conn 1") {
		t.Errorf("second response %q, want a new connection's", out)
	}
	if s := p.Stats(); s.Stray != 1 || s.Dials != 2 || s.Dead != 0 {
		t.Errorf("stats %+v: want 1 stray, 2 dials", s)
	}
}

func TestPoolPutUnsolicitedBytes(t *testing.T) {
	// Late output right behind FCGI_END_REQUEST (one write): Put finds it
	// in the read buffer and closes the connection.
	addr := fakeServer(t, func(_ int, c net.Conn) {
		req, err := peerReadRequest(c)
		if err != nil {
			return
		}
		var b bytes.Buffer
		peerRespond(&b, req.id, "ok")
		writeRecord(&b, typeStdout, req.id, []byte("LATE-SECRET"), 0)
		c.Write(b.Bytes())
		io.Copy(io.Discard, c)
	})
	p := NewPool(PoolConfig{Network: "unix", Address: addr, MaxSize: 1, KeepAlive: time.Minute})
	defer p.Close()
	c, err := p.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(&Request{})
	if err != nil {
		t.Fatal(err)
	}
	if out := readAllString(t, resp); !strings.HasSuffix(out, "ok") {
		t.Fatalf("response %q", out)
	}
	p.Put(c)
	if s := p.Stats(); s.Open != 0 || s.Stray != 1 {
		t.Errorf("stats %+v: want the connection closed as stray", s)
	}
}

func TestNotSent(t *testing.T) {
	// The peer closed the kept connection before the request: nothing of it
	// was written, on a Unix socket (EPIPE) or a net.Pipe.
	pipes := map[string]func(t *testing.T) (net.Conn, net.Conn){
		"unix": func(t *testing.T) (net.Conn, net.Conn) { c, s := unixPair(t); return c, s },
		"pipe": func(t *testing.T) (net.Conn, net.Conn) { return net.Pipe() },
	}
	for name, pipe := range pipes {
		for _, withBody := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/body=%v", name, withBody), func(t *testing.T) {
				cli, srv := pipe(t)
				closed := make(chan struct{})
				go func() {
					if req, err := peerReadRequest(srv); err == nil {
						peerRespond(srv, req.id, "first")
					}
					srv.Close()
					close(closed)
				}()
				c := NewConn(cli)
				defer c.Close()
				resp, err := c.Do(&Request{})
				if err != nil {
					t.Fatal(err)
				}
				readAllString(t, resp)
				<-closed
				req := &Request{}
				if withBody {
					req.Body = bytes.NewReader(make([]byte, 100))
				}
				resp, err = c.Do(req)
				if err == nil {
					if !withBody {
						t.Fatal("Do succeeded on a closed connection")
					}
					_, err = io.ReadAll(resp)
					if !errors.Is(resp.BodyErr(), ErrNotSent) {
						t.Errorf("BodyErr = %v, want ErrNotSent", resp.BodyErr())
					}
				} else if withBody {
					t.Fatalf("Do with a body: %v (the body writer reports)", err)
				}
				t.Logf("error: %v", err)
				if !errors.Is(err, ErrNotSent) {
					t.Errorf("err = %v, want ErrNotSent", err)
				}
				if !c.Reused() {
					t.Error("Reused() = false")
				}
			})
		}
	}
}

func TestNotSentBeforeBodyWriterWrote(t *testing.T) {
	// FPM half-closed the connection (pm.max_requests) while the body writer
	// waits for the client's body: the read fails first, and the request is
	// then never written.
	cli, srv := unixPair(t)
	received := make(chan int, 1)
	go func() {
		srv.CloseWrite()
		n, _ := io.Copy(io.Discard, srv) // until the client closes
		received <- int(n)
	}()
	c := NewConn(cli)
	defer c.Close()
	pr, pw := io.Pipe()
	resp, err := c.Do(&Request{Body: pr})
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(resp)
	if !errors.Is(err, ErrNotSent) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("err = %v, want ErrNotSent wrapping io.ErrUnexpectedEOF", err)
	}
	pw.Write(make([]byte, 1000)) // the body writer goes on, and must not write
	pw.Close()
	if !c.waitBody(time.Second) {
		t.Fatal("body writer did not finish")
	}
	if !errors.Is(resp.BodyErr(), ErrNotSent) {
		t.Errorf("BodyErr = %v, want ErrNotSent", resp.BodyErr())
	}
	c.Close()
	if n := <-received; n != 0 {
		t.Errorf("the peer received %d bytes of a request reported as not sent", n)
	}
}

func TestSentThenClosedIsNotNotSent(t *testing.T) {
	// The peer read the whole request (the script may have run), then the
	// connection closed without a record: not ErrNotSent.
	for _, withBody := range []bool{false, true} {
		t.Run(fmt.Sprint("body=", withBody), func(t *testing.T) {
			cli, srv := unixPair(t)
			go func() {
				if req, err := peerReadRequest(srv); err == nil {
					peerRespond(srv, req.id, "first")
				}
				peerReadRequest(srv)
				srv.Close()
			}()
			c := NewConn(cli)
			defer c.Close()
			resp, err := c.Do(&Request{})
			if err != nil {
				t.Fatal(err)
			}
			readAllString(t, resp)
			req := &Request{}
			if withBody {
				req.Body = bytes.NewReader(make([]byte, 200000))
			}
			resp, err = c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.ReadAll(resp)
			t.Logf("error: %v", err)
			if err == nil || errors.Is(err, ErrNotSent) || errors.Is(resp.BodyErr(), ErrNotSent) {
				t.Errorf("err = %v, BodyErr = %v: want an error that is not ErrNotSent", err, resp.BodyErr())
			}
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("err = %v, want io.ErrUnexpectedEOF", err)
			}
			if resp.Received() {
				t.Error("Received() = true")
			}
		})
	}
}

func TestPartialWriteIsNotNotSent(t *testing.T) {
	// The peer took part of the request, then closed: Write returns the
	// bytes written with the error.
	for _, withBody := range []bool{false, true} {
		t.Run(fmt.Sprint("body=", withBody), func(t *testing.T) {
			cli, srv := net.Pipe()
			go func() {
				io.ReadFull(srv, make([]byte, 10))
				srv.Close()
			}()
			c := NewConn(cli)
			defer c.Close()
			req := &Request{Params: pairs("A", "1")}
			if withBody {
				req.Body = bytes.NewReader(make([]byte, 100))
			}
			resp, err := c.Do(req)
			if err == nil {
				_, err = io.ReadAll(resp)
				if errors.Is(resp.BodyErr(), ErrNotSent) {
					t.Errorf("BodyErr = %v matches ErrNotSent", resp.BodyErr())
				}
			}
			t.Logf("error: %v", err)
			if err == nil || errors.Is(err, ErrNotSent) {
				t.Errorf("err = %v: want an error that is not ErrNotSent", err)
			}
		})
	}
}

func TestPoolPendingTracking(t *testing.T) {
	// A new connection's first request is pending until the first record
	// of its response, or until the connection is closed.
	release := make(chan struct{})
	addr := fakeServer(t, func(_ int, c net.Conn) {
		for {
			req, err := peerReadRequest(c)
			if err != nil {
				return
			}
			<-release
			peerRespond(c, req.id, "ok")
		}
	})
	p := NewPool(PoolConfig{Network: "unix", Address: addr, MaxSize: 3, KeepAlive: time.Minute})
	defer p.Close()
	ctx := context.Background()
	c1, _ := p.Get(ctx)
	c2, _ := p.Get(ctx)
	if c1 == nil || c2 == nil {
		t.Fatal("Get failed")
	}
	r1, err := c1.Do(&Request{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Do(&Request{}); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Pending != 2 {
		t.Fatalf("stats %+v: want 2 pending", s)
	}
	c2.Abort()
	if s := p.Stats(); s.Pending != 1 {
		t.Errorf("after Abort: stats %+v, want 1 pending", s)
	}
	close(release)
	readAllString(t, r1)
	if s := p.Stats(); s.Pending != 0 {
		t.Errorf("after the response: stats %+v, want none pending", s)
	}
	// The next request on the kept connection is not tracked.
	r1, err = c1.Do(&Request{})
	if err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Pending != 0 {
		t.Errorf("request on a reused connection: stats %+v, want none pending", s)
	}
	readAllString(t, r1)
	p.Put(c1)
	if s := p.Stats(); s.Idle != 1 || s.Backlog != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestIdleLimit(t *testing.T) {
	for _, tc := range []struct{ keepAlive, maxIdle, want time.Duration }{
		{0, 0, 0},
		{-1, 0, 0},
		{-1, time.Second, time.Second},
		{2 * time.Second, 0, 2 * time.Second},
		{2 * time.Second, time.Second, time.Second},
		{time.Second, 2 * time.Second, time.Second},
	} {
		if got := idleLimit(PoolConfig{KeepAlive: tc.keepAlive, MaxIdleTime: tc.maxIdle}); got != tc.want {
			t.Errorf("KeepAlive %v, MaxIdleTime %v: idle limit %v, want %v", tc.keepAlive, tc.maxIdle, got, tc.want)
		}
	}
}
