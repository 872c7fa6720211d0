package fpm

import (
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fe-php/fe-php/internal/fastcgi"
	"github.com/fe-php/fe-php/internal/phpreq"
)

// fakeFPM is a FastCGI responder on a Unix socket that answers each
// request with a fixed response, except that it can drop a kept
// connection the way a PHP-FPM child at its pm.max_requests does: read
// the next request, then close without a byte of answer.
type fakeFPM struct {
	ln       net.Listener
	received atomic.Int32 // requests read in full
	// dropAfter: a connection is dropped (after reading its next
	// request) once it has answered this many; 0 never.
	dropAfter int
	wg        sync.WaitGroup
}

func startFakeFPM(t *testing.T, dropAfter int) *fakeFPM {
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "fpm.sock"))
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeFPM{ln: ln, dropAfter: dropAfter}
	f.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.wg.Go(func() { f.serve(c) })
		}
	})
	t.Cleanup(func() { ln.Close(); f.wg.Wait() })
	return f
}

// serve answers requests on one connection.
func (f *fakeFPM) serve(c net.Conn) {
	defer c.Close()
	for answered := 0; ; answered++ {
		id, ok := readRequest(c)
		if !ok {
			return
		}
		f.received.Add(1)
		if f.dropAfter > 0 && answered == f.dropAfter {
			return // the child exits: the request is read and dropped
		}
		out := "Content-Type: text/plain\r\n\r\nhello"
		var b []byte
		b = appendRecord(b, 6, id, []byte(out))
		b = appendRecord(b, 6, id, nil)
		b = appendRecord(b, 3, id, make([]byte, 8))
		if _, err := c.Write(b); err != nil {
			return
		}
	}
}

// readRequest reads records up to the empty FCGI_STDIN that ends a
// request and returns its id.
func readRequest(c net.Conn) (uint16, bool) {
	var h [8]byte
	for {
		if _, err := io.ReadFull(c, h[:]); err != nil {
			return 0, false
		}
		n := int(binary.BigEndian.Uint16(h[4:6])) + int(h[6])
		if _, err := io.CopyN(io.Discard, c, int64(n)); err != nil {
			return 0, false
		}
		if h[1] == 5 && binary.BigEndian.Uint16(h[4:6]) == 0 {
			return binary.BigEndian.Uint16(h[2:4]), true
		}
	}
}

func appendRecord(b []byte, typ byte, id uint16, content []byte) []byte {
	b = append(b, 1, typ, byte(id>>8), byte(id), byte(len(content)>>8), byte(len(content)), 0, 0)
	return append(b, content...)
}

// serveOn is the PHP pipeline with the fastcgi runner on f.
func serveOn(t *testing.T, f *fakeFPM) *httptest.Server {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "index.php"), []byte("<?php"), 0o644); err != nil {
		t.Fatal(err)
	}
	rs, err := phpreq.NewResolver(phpreq.Options{DocumentRoot: root, FrontController: "/index.php"})
	if err != nil {
		t.Fatal(err)
	}
	b := New(Options{
		Pool:        fastcgi.PoolConfig{Network: "unix", Address: f.ln.Addr().String(), MaxSize: 1, KeepAlive: time.Minute},
		ReadTimeout: 5 * time.Second,
		Logger:      slog.New(slog.DiscardHandler),
	})
	t.Cleanup(func() { b.Close() })
	h := &phpreq.Handler{Resolver: rs, Static: http.NotFoundHandler(), Runner: b,
		Bodies: &phpreq.BodyBuffers{MemLimit: 64 << 10}, Output: &phpreq.OutputLimits{MemLimit: 64 << 10},
		Log: slog.New(slog.DiscardHandler), Backend: "fastcgi"}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func call(t *testing.T, srv *httptest.Server, method string) int {
	t.Helper()
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader("amount=10")
	}
	req, _ := http.NewRequest(method, srv.URL+"/index.php", body)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// A kept connection that FPM drops after reading the request (a child at
// its pm.max_requests): a GET is sent once more on a new connection, and
// the client never sees the drop.
func TestRetrySafeMethodOnDroppedConnection(t *testing.T) {
	f := startFakeFPM(t, 1)
	srv := serveOn(t, f)
	if st := call(t, srv, http.MethodGet); st != 200 {
		t.Fatalf("first GET: %d", st)
	}
	if st := call(t, srv, http.MethodGet); st != 200 {
		t.Errorf("GET on the dropped connection: %d, want 200 (sent again)", st)
	}
	if n := f.received.Load(); n != 3 {
		t.Errorf("FPM received %d requests, want 3 (the dropped one sent again)", n)
	}
}

// The same drop for a POST: never sent twice (it may have run), a 502.
func TestNoRetryUnsafeMethodOnDroppedConnection(t *testing.T) {
	f := startFakeFPM(t, 1)
	srv := serveOn(t, f)
	if st := call(t, srv, http.MethodPost); st != 200 {
		t.Fatalf("first POST: %d", st)
	}
	if st := call(t, srv, http.MethodPost); st != http.StatusBadGateway {
		t.Errorf("POST on the dropped connection: %d, want 502", st)
	}
	if n := f.received.Load(); n != 2 {
		t.Errorf("FPM received %d requests, want 2: the POST must not be sent twice", n)
	}
}
