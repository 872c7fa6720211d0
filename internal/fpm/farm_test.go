package fpm

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/fe-php/fe-php/internal/config"
	"github.com/fe-php/fe-php/internal/fastcgi"
	"github.com/fe-php/fe-php/internal/phpreq"
)

// farm is a Backend over addrs, for the balancing tests.
func farm(t *testing.T, balance string, addrs ...string) *Backend {
	b := New(Options{Upstreams: addrs, Balance: balance, ReadTimeout: 5 * time.Second,
		Breaker: config.CircuitBreaker{Enable: true, FailureThreshold: 1, SuccessThreshold: 1, TimeoutSeconds: 60}})
	t.Cleanup(func() { b.Close() })
	return b
}

func reqFrom(remote string) *phpreq.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = remote
	return &phpreq.Request{HTTP: r}
}

func TestRoundRobin(t *testing.T) {
	b := farm(t, config.BalanceRoundRobin, "/a", "/b", "/c")
	count := map[int]int{}
	for range 30 {
		count[b.pick(reqFrom("127.0.0.1:1"))]++
	}
	if count[0] != 10 || count[1] != 10 || count[2] != 10 {
		t.Errorf("round robin: %v, want 10 each", count)
	}
}

func TestLeastConn(t *testing.T) {
	b := farm(t, config.BalanceLeastConn, "/a", "/b", "/c")
	b.ups[0].inflight.Store(3)
	b.ups[1].inflight.Store(1)
	b.ups[2].inflight.Store(2)
	for range 10 {
		if i := b.pick(reqFrom("127.0.0.1:1")); i != 1 {
			t.Fatalf("least_conn picked %d, want 1 (fewest in flight)", i)
		}
	}
	// Ties spread: sequential requests (nothing in flight) go everywhere.
	for _, u := range b.ups {
		u.inflight.Store(0)
	}
	count := map[int]int{}
	for range 30 {
		count[b.pick(reqFrom("127.0.0.1:1"))]++
	}
	if len(count) != 3 {
		t.Errorf("least_conn with ties: %v, want all three used", count)
	}
	// Out of rotation: never picked while another is in.
	b.ups[1].down.Store(true)
	for range 10 {
		if i := b.pick(reqFrom("127.0.0.1:1")); i == 1 {
			t.Fatal("least_conn picked an upstream out of rotation")
		}
	}
}

func TestClientHash(t *testing.T) {
	b := farm(t, config.BalanceClientHash, "/a", "/b", "/c")
	count := map[int]int{}
	home := map[string]int{}
	for i := range 300 {
		ip := "10.0." + itoa(i/256) + "." + itoa(i%256)
		u := b.pick(reqFrom(ip + ":" + itoa(1000+i)))
		home[ip] = u
		count[u]++
		// Sticky: another connection (port) of the same client.
		if v := b.pick(reqFrom(ip + ":55555")); v != u {
			t.Fatalf("client %s went to %d then %d", ip, u, v)
		}
	}
	for i := range 3 {
		if count[i] < 60 {
			t.Errorf("client_hash distribution %v: upstream %d under 60 of 300", count, i)
		}
	}
	// An upstream out of rotation: its clients move, the others stay.
	b.ups[0].down.Store(true)
	for ip, u := range home {
		v := b.pick(reqFrom(ip + ":1"))
		if u != 0 && v != u || v == 0 {
			t.Fatalf("client %s: home %d, now %d", ip, u, v)
		}
	}
	b.ups[0].down.Store(false)
	for ip, u := range home {
		if v := b.pick(reqFrom(ip + ":1")); v != u {
			t.Fatalf("client %s back: %d, want its home %d", ip, v, u)
		}
	}
	if clientHash("[::1]:80") != clientHash("[::1]:81") || clientHash("[::1]:80") == clientHash("[::2]:80") {
		t.Error("clientHash ignores IPv6 addresses")
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// serveFarm is the PHP pipeline with the fastcgi runner on addrs.
func serveFarm(t *testing.T, addrs ...string) (*httptest.Server, *Backend) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "index.php"), []byte("<?php"), 0o644); err != nil {
		t.Fatal(err)
	}
	rs, err := phpreq.NewResolver(phpreq.Options{DocumentRoot: root, FrontController: "/index.php"})
	if err != nil {
		t.Fatal(err)
	}
	b := New(Options{Upstreams: addrs, Balance: config.BalanceRoundRobin, ReadTimeout: 5 * time.Second,
		Pool:    fastcgi.PoolConfig{MaxSize: 1, KeepAlive: time.Minute},
		Breaker: config.CircuitBreaker{Enable: true, FailureThreshold: 2, SuccessThreshold: 1, TimeoutSeconds: 60},
		Logger:  slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { b.Close() })
	h := &phpreq.Handler{Resolver: rs, Static: http.NotFoundHandler(), Runner: b,
		Bodies: &phpreq.BodyBuffers{MemLimit: 64 << 10}, Output: &phpreq.OutputLimits{MemLimit: 64 << 10},
		Log: slog.New(slog.DiscardHandler), Backend: "fastcgi"}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, b
}

// A request whose connect fails (nothing listens on the socket) goes to
// the next upstream, POSTs too: it never reached PHP.
func TestConnectFailureGoesToNextUpstream(t *testing.T) {
	f := startFakeFPM(t, 0)
	dead := filepath.Join(t.TempDir(), "dead.sock") // no such socket: refused
	srv, b := serveFarm(t, dead, f.ln.Addr().String())
	for i := range 10 {
		method := http.MethodGet
		if i%2 == 1 {
			method = http.MethodPost
		}
		if st := call(t, srv, method); st != 200 {
			t.Fatalf("request %d (%s): %d, want 200 from the live upstream", i, method, st)
		}
	}
	if n := f.received.Load(); n != 10 {
		t.Errorf("live FPM received %d, want 10", n)
	}
	// The dead one's breaker opened (2 failures): it is out of rotation.
	if on, st, _ := b.ups[0].BreakerState(); !on || st != BreakerOpen {
		t.Errorf("dead upstream's breaker: %d, want open", st)
	}
	if b.ups[0].inRotation() {
		t.Error("dead upstream still in rotation")
	}
}

// A request that was sent (FPM read it, then dropped the connection) is
// never sent to another upstream: a POST gets its 502.
func TestSentRequestNeverGoesToNextUpstream(t *testing.T) {
	drop := startFakeFPM(t, 1) // drops a kept connection's second request
	other := startFakeFPM(t, 0)
	srv, b := serveFarm(t, drop.ln.Addr().String(), other.ln.Addr().String())
	b.balance = balanceClientHash // one client: one upstream
	home := b.pick(reqFrom("127.0.0.1:1"))
	if home != 0 {
		b.ups[0], b.ups[1] = b.ups[1], b.ups[0] // make the dropping FPM the client's
	}
	if st := call(t, srv, http.MethodPost); st != 200 {
		t.Fatalf("first POST: %d", st)
	}
	if st := call(t, srv, http.MethodPost); st != http.StatusBadGateway {
		t.Errorf("POST on the dropped connection: %d, want 502 (not sent elsewhere)", st)
	}
	if n, m := drop.received.Load(), other.received.Load(); n != 2 || m != 0 {
		t.Errorf("received %d and %d, want 2 and 0: the POST must not be sent twice", n, m)
	}
}

// The active check takes an upstream whose ping fails out of rotation and
// brings it back when it passes.
func TestHealthCheck(t *testing.T) {
	f := startFakeFPM(t, 0) // answers "hello", status 200
	dead := filepath.Join(t.TempDir(), "dead.sock")
	b := New(Options{Upstreams: []string{dead, f.ln.Addr().String()}, HealthCheckPath: "/ping",
		HealthCheckInterval: 50 * time.Millisecond, ReadTimeout: time.Second})
	defer b.Close()
	deadline := time.Now().Add(5 * time.Second)
	for !b.ups[0].down.Load() || f.received.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("dead upstream down=%v, live pinged %d times", b.ups[0].down.Load(), f.received.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if b.ups[1].down.Load() {
		t.Error("live upstream out of rotation")
	}
}
