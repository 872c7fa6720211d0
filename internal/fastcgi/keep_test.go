package fastcgi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fe-php/fe-php/internal/testutil/fpmtest"
)

// Tests against real PHP-FPM of request ids, ErrNotSent, keep-alive and the
// accept backlog.

// poolDo does one request on a connection from p and returns its output.
func poolDo(p *Pool, f *fpmtest.FPM, script, query string) (string, error) {
	c, err := p.Get(context.Background())
	if err != nil {
		return "", err
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	resp, err := c.Do(&Request{Params: params(f, "GET", script, query)})
	if err != nil {
		c.Close()
		return "", err
	}
	b, err := io.ReadAll(resp)
	if err != nil {
		c.Close()
		return string(b), err
	}
	p.Put(c)
	return string(b), nil
}

func TestFinishRequestLateOutput(t *testing.T) {
	// A script writes after fastcgi_finish_request(); FPM sends that output
	// after FCGI_END_REQUEST, while the next request on the kept connection
	// is read. The next user must never see it.
	for _, tc := range []struct {
		network string
		n       int
	}{{"unix", 50}, {"tcp", 15}} {
		t.Run(tc.network, func(t *testing.T) {
			t.Parallel()
			f := startFPM(t, fpmtest.Options{Listen: tc.network, Children: 1})
			p := NewPool(PoolConfig{Network: f.Network, Address: f.Address, MaxSize: 1, KeepAlive: time.Minute})
			defer p.Close()
			for i := range tc.n {
				out, err := poolDo(p, f, "late.php", "")
				if err != nil {
					t.Fatalf("iteration %d: late.php: %v", i, err)
				}
				if !strings.HasSuffix(out, "\r\n\r\nearly") {
					t.Fatalf("iteration %d: late.php answered %q", i, out)
				}
				out, err = poolDo(p, f, "hello.php", "")
				if err != nil {
					t.Fatalf("iteration %d: hello.php: %v", i, err)
				}
				if strings.Contains(out, "LATE-SECRET") || !strings.HasSuffix(out, "\r\n\r\nHello, world!\n") {
					t.Fatalf("iteration %d: the next request got %q", i, out)
				}
			}
			s := p.Stats()
			t.Logf("stats %+v", s)
			// Each late output tainted the connection it came on (or was
			// found while it was idle): closed, never reused.
			if s.Stray != uint64(tc.n) || s.Dials < uint64(tc.n) {
				t.Errorf("stats %+v: want %d stray connections and as many dials", s, tc.n)
			}
		})
	}
}

func TestKilledChildIsNotNotSent(t *testing.T) {
	// The child dies (SIGKILL) after it read the request, before any output:
	// the script ran, whatever happened to the response.
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			f := startFPM(t, fpmtest.Options{Listen: network, Children: 1})
			for _, tc := range []struct {
				name  string
				query string
				body  int
			}{
				{"get", "", 0},
				{"post-read", "body=1", 100000},
				{"post-unread", "", 1 << 20},
			} {
				c := dial(t, f)
				c.SetDeadline(time.Now().Add(10 * time.Second))
				roundTrip(t, c, &Request{Params: params(f, "GET", "hello.php", "")}) // a reused connection
				req := &Request{Params: params(f, "GET", "kill.php", tc.query)}
				if tc.body > 0 {
					req.Params = params(f, "POST", "kill.php", tc.query, "CONTENT_LENGTH", itoa(tc.body), "CONTENT_TYPE", "application/octet-stream")
					req.Body = bytes.NewReader(make([]byte, tc.body))
				}
				resp, err := c.Do(req)
				if err == nil {
					var out []byte
					out, err = io.ReadAll(resp)
					if len(out) > 0 || resp.Received() {
						t.Errorf("%s: received %q", tc.name, out)
					}
					if errors.Is(resp.BodyErr(), ErrNotSent) {
						t.Errorf("%s: BodyErr %v matches ErrNotSent", tc.name, resp.BodyErr())
					}
				}
				t.Logf("%s: %v", tc.name, err)
				if err == nil || errors.Is(err, ErrNotSent) {
					t.Errorf("%s: err = %v, want an error that is not ErrNotSent", tc.name, err)
				}
				c.Close()
				// FPM replaces the child.
				if !eventually(5*time.Second, func() bool { return len(f.ChildPids()) == 1 }) {
					t.Fatalf("child not replaced: %v", f.ChildPids())
				}
			}
		})
	}
}

func TestRestartedFPMNotSent(t *testing.T) {
	// FPM restarted: its end of a kept Unix socket connection is closed, and
	// the request's first write fails with EPIPE: nothing was sent.
	f := startFPM(t, fpmtest.Options{Listen: "unix", Children: 1})
	for _, withBody := range []bool{false, true} {
		c := dial(t, f)
		roundTrip(t, c, &Request{Params: params(f, "GET", "hello.php", "")})
		f.Restart(t)
		req := &Request{Params: params(f, "GET", "hello.php", "")}
		if withBody {
			req.Params = params(f, "POST", "post.php", "", "CONTENT_LENGTH", "5", "CONTENT_TYPE", "text/plain")
			req.Body = strings.NewReader("hello")
		}
		resp, err := c.Do(req)
		if err == nil {
			_, err = io.ReadAll(resp)
		}
		t.Logf("body %v: %v", withBody, err)
		if !errors.Is(err, ErrNotSent) {
			t.Errorf("body %v: err = %v, want ErrNotSent", withBody, err)
		}
	}
}

func TestPoolBacklog(t *testing.T) {
	// More connections than children: the extra ones wait in FPM's accept
	// backlog while the children stay attached to kept connections. Put
	// closes returned connections while they wait, so every request is
	// served soon.
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			f := startFPM(t, fpmtest.Options{Listen: network, Children: 2})
			p := NewPool(PoolConfig{Network: f.Network, Address: f.Address, MaxSize: 6, KeepAlive: 2 * time.Second})
			defer p.Close()
			for round := range 4 {
				start := time.Now()
				var wg sync.WaitGroup
				errs := make(chan error, 6)
				for range 6 {
					wg.Go(func() {
						t0 := time.Now()
						out, err := poolDo(p, f, "sleep.php", "ms=100")
						if err == nil && !strings.Contains(out, "slept") {
							err = fmt.Errorf("response %q", out)
						}
						if err != nil {
							errs <- fmt.Errorf("after %v: %w", time.Since(t0), err)
						}
					})
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					t.Errorf("round %d: %v", round, err)
				}
				// 3 waves of 100ms on 2 children.
				d := time.Since(start)
				t.Logf("round %d: %v, stats %+v", round, d, p.Stats())
				if d > 3*time.Second {
					t.Errorf("round %d took %v", round, d)
				}
			}
			if s := p.Stats(); s.Backlog == 0 || s.Pending != 0 {
				t.Errorf("stats %+v: want connections closed for the backlog, none pending", s)
			}
		})
	}
}

func TestPoolBacklogIdleClosed(t *testing.T) {
	// Connections returned before a new connection's request has waited
	// long enough to look stuck are kept idle, and hold the children: the
	// pool closes one once the wait passes the threshold.
	f := startFPM(t, fpmtest.Options{Children: 2})
	p := NewPool(PoolConfig{Network: f.Network, Address: f.Address, MaxSize: 3, KeepAlive: time.Minute})
	defer p.Close()
	for round := range 3 {
		conns := make([]*Conn, 3)
		for i := range conns {
			c, err := p.Get(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			conns[i] = c
		}
		start := time.Now()
		var wg sync.WaitGroup
		for _, c := range conns {
			wg.Go(func() {
				c.SetDeadline(time.Now().Add(10 * time.Second))
				resp, err := c.Do(&Request{Params: params(f, "GET", "hello.php", "")})
				if err == nil {
					_, err = io.ReadAll(resp)
				}
				if err != nil {
					t.Errorf("round %d: after %v: %v", round, time.Since(start), err)
					c.Close()
					return
				}
				p.Put(c)
			})
		}
		wg.Wait()
		d := time.Since(start)
		t.Logf("round %d: %v, stats %+v", round, d, p.Stats())
		if d > 2*time.Second {
			t.Errorf("round %d took %v", round, d)
		}
	}

	// A new connection's request that starts while idle connections hold
	// both children.
	conns := make([]*Conn, 3)
	for i := range conns {
		c, err := p.Get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	if conns[2].Requests() != 0 {
		conns[2].Close() // was idle: want a new connection
		c, err := p.Get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		conns[2] = c
	}
	if conns[0].Requests() == 0 || conns[1].Requests() == 0 || conns[2].Requests() != 0 {
		t.Fatalf("want two kept connections and a new one: %d %d %d requests", conns[0].Requests(), conns[1].Requests(), conns[2].Requests())
	}
	p.Put(conns[0])
	p.Put(conns[1])
	start := time.Now()
	conns[2].SetDeadline(time.Now().Add(10 * time.Second))
	roundTrip(t, conns[2], &Request{Params: params(f, "GET", "hello.php", "")})
	t.Logf("new connection served after %v, stats %+v", time.Since(start), p.Stats())
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("new connection served after %v", d)
	}
}

func TestPoolKeepAliveFreesChildren(t *testing.T) {
	// Two clients of one FPM with 2 children: the first keeps both children
	// after a burst; the second's request waits in the backlog until the
	// first one's idle connections reach KeepAlive.
	f := startFPM(t, fpmtest.Options{Children: 2})
	const keepAlive = 300 * time.Millisecond
	a := NewPool(PoolConfig{Network: f.Network, Address: f.Address, MaxSize: 2, KeepAlive: keepAlive})
	defer a.Close()
	b := NewPool(PoolConfig{Network: f.Network, Address: f.Address, MaxSize: 2, KeepAlive: time.Minute})
	defer b.Close()
	var burst []*Conn
	for range 2 {
		c, err := a.Get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, c, &Request{Params: params(f, "GET", "hello.php", "")})
		burst = append(burst, c)
	}
	for _, c := range burst {
		a.Put(c)
	}
	if s := a.Stats(); s.Idle != 2 {
		t.Fatalf("first client: stats %+v, want 2 idle", s)
	}
	start := time.Now()
	out, err := poolDo(b, f, "hello.php", "")
	d := time.Since(start)
	t.Logf("second client served after %v", d)
	if err != nil || !strings.HasSuffix(out, "Hello, world!\n") {
		t.Fatalf("second client: %q, %v", out, err)
	}
	// KeepAlive plus the janitor's period (KeepAlive/2) plus a margin.
	if d > keepAlive+keepAlive/2+time.Second {
		t.Errorf("second client waited %v, want about KeepAlive (%v)", d, keepAlive)
	}
	if !eventually(time.Second, func() bool { return a.Stats().Open == 0 }) {
		t.Errorf("first client: stats %+v, want its idle connections closed", a.Stats())
	}
}

func TestPoolKeepAliveZero(t *testing.T) {
	// KeepAlive 0: no keep-alive, every connection closed when returned.
	f := startFPM(t, fpmtest.Options{Children: 2})
	p := NewPool(PoolConfig{Network: f.Network, Address: f.Address, MaxSize: 2})
	defer p.Close()
	for i := range 3 {
		out, err := poolDo(p, f, "hello.php", "")
		if err != nil || !strings.HasSuffix(out, "Hello, world!\n") {
			t.Fatalf("request %d: %q, %v", i, out, err)
		}
		if s := p.Stats(); s.Open != 0 || s.Idle != 0 {
			t.Errorf("request %d: stats %+v, want nothing kept", i, s)
		}
	}
	if s := p.Stats(); s.Dials != 3 {
		t.Errorf("stats %+v, want 3 dials", s)
	}
	if !eventually(5*time.Second, func() bool { return f.ConnCount(t) == 0 }) {
		t.Errorf("FPM still has %d connections", f.ConnCount(t))
	}
}

func TestPoolKeepAlive(t *testing.T) {
	// An idle connection is closed after KeepAlive, or MaxIdleTime if
	// smaller.
	for _, tc := range []struct {
		name                 string
		keepAlive, maxIdle   time.Duration
		minClosed, maxClosed time.Duration
	}{
		{"keepalive", 200 * time.Millisecond, 0, 200 * time.Millisecond, 1500 * time.Millisecond},
		{"maxidle-smaller", time.Minute, 200 * time.Millisecond, 200 * time.Millisecond, 1500 * time.Millisecond},
		{"keepalive-smaller", 200 * time.Millisecond, time.Minute, 200 * time.Millisecond, 1500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startFPM(t, fpmtest.Options{Children: 1})
			p := NewPool(PoolConfig{Network: f.Network, Address: f.Address, MaxSize: 1, KeepAlive: tc.keepAlive, MaxIdleTime: tc.maxIdle})
			defer p.Close()
			if _, err := poolDo(p, f, "hello.php", ""); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if s := p.Stats(); s.Idle != 1 {
				t.Fatalf("stats %+v, want the connection kept", s)
			}
			if !eventually(5*time.Second, func() bool { return p.Stats().Open == 0 }) {
				t.Fatal("idle connection never closed")
			}
			d := time.Since(start)
			t.Logf("closed after %v idle", d)
			if d < tc.minClosed-20*time.Millisecond || d > tc.maxClosed {
				t.Errorf("closed after %v idle, want between %v and %v", d, tc.minClosed, tc.maxClosed)
			}
		})
	}
}
