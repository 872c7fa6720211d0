package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fe-php/fe-php/internal/config"
)

// newTestServer builds a Server for a static site and lets the test put
// its own handler behind the default route.
func newTestServer(t *testing.T, h http.Handler, edit func(*config.Config)) (*Server, *bytes.Buffer) {
	t.Helper()
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "index.html"), []byte("<h1>home</h1>"), 0o644)
	cfg := config.Default()
	cfg.Backend.DefaultBackend = config.BackendStatic
	cfg.Backend.StaticFiles.Root = root
	cfg.Server.AccessLog.Output = "off"
	if edit != nil {
		edit(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	s, err := New(&cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if h != nil {
		s.fallback.handler = h
	}
	return s, &logs
}

func TestPanicBecomes500(t *testing.T) {
	s, logs := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/boom" {
			panic("boom")
		}
		io.WriteString(w, "fine")
	}), nil)
	ts := httptest.NewServer(s)
	defer ts.Close()

	resp, err := http.Get(ts.URL + "/boom")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("status = %d, want 500", resp.StatusCode)
	}
	if !strings.Contains(logs.String(), "panic serving request") || !strings.Contains(logs.String(), "boom") {
		t.Errorf("panic not logged: %s", logs)
	}
	// The server lives on.
	resp, err = http.Get(ts.URL + "/ok")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "fine" {
		t.Errorf("after a panic: %q", body)
	}
}

func TestPanicAfterHeadersCutsTheConnection(t *testing.T) {
	s, _ := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		panic("late boom")
	}), nil)
	ts := httptest.NewServer(s)
	defer ts.Close()
	ts.Config.ErrorLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)

	resp, err := http.Get(ts.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || err == nil {
		t.Fatalf("a response whose handler panicked mid-body read completely (status %d, err %v)", resp.StatusCode, err)
	}
}

func TestRequestID(t *testing.T) {
	var seen string
	s, _ := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Get("X-Request-Id")
	}), nil)
	ts := httptest.NewServer(s)
	defer ts.Close()

	get := func(id string) string {
		req, _ := http.NewRequest("GET", ts.URL+"/", nil)
		if id != "" {
			req.Header.Set("X-Request-Id", id)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("X-Request-Id"); got != seen {
			t.Errorf("response id %q, backend saw %q", got, seen)
		}
		return seen
	}
	a, b := get(""), get("")
	if a == "" || a == b {
		t.Errorf("generated ids %q and %q should be non-empty and distinct", a, b)
	}
	if got := get("req-123.abc"); got != "req-123.abc" {
		t.Errorf("sane incoming id replaced: %q", got)
	}
	if got := get("bad id\"with quotes"); got == "bad id\"with quotes" {
		t.Error("insane incoming id kept")
	}
}

func TestBodyLimits(t *testing.T) {
	var readErr error
	s, _ := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, readErr = io.ReadAll(r.Body)
		var mbe *http.MaxBytesError
		if errors.As(readErr, &mbe) {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
		}
	}), func(c *config.Config) { c.Server.MaxBodySize = 1024 })
	ts := httptest.NewServer(s)
	defer ts.Close()

	// Declared too large: refused before the backend runs.
	resp, err := http.Post(ts.URL+"/", "text/plain", bytes.NewReader(make([]byte, 2048)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("declared 2048 bytes: status %d, want 413", resp.StatusCode)
	}
	// Chunked, too large: the backend's read fails.
	resp, err = http.Post(ts.URL+"/", "text/plain", io.MultiReader(strings.NewReader(strings.Repeat("x", 2048))))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || readErr == nil {
		t.Errorf("chunked 2048 bytes: status %d, read error %v; want 413 and an error", resp.StatusCode, readErr)
	}
	// Within the limit: read whole.
	resp, err = http.Post(ts.URL+"/", "text/plain", strings.NewReader("small"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || readErr != nil {
		t.Errorf("small body: status %d, read error %v", resp.StatusCode, readErr)
	}
}

// A response that stalls longer than write_timeout in total, but never
// longer than it between writes, completes: the timeout is per stall.
func TestWriteTimeoutIsPerStall(t *testing.T) {
	s, _ := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < 6; i++ {
			io.WriteString(w, "tick\n")
			w.(http.Flusher).Flush()
			time.Sleep(100 * time.Millisecond)
		}
	}), func(c *config.Config) { c.Server.WriteTimeout.Duration = 300 * time.Millisecond })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, &Listeners{HTTP: ln}) }()
	defer func() { cancel(); <-done }()

	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || strings.Count(string(body), "tick") != 6 {
		t.Fatalf("body %q, err %v; want 6 ticks", body, err)
	}
}

// Graceful shutdown lets an in-flight request finish and refuses new
// connections.
func TestGracefulShutdown(t *testing.T) {
	started := make(chan struct{})
	s, _ := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, "finished")
	}), nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, &Listeners{HTTP: ln}) }()

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	<-started
	cancel()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "finished" {
		t.Errorf("in-flight request got %q", body)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Error("a new connection was accepted after shutdown")
	}
}
