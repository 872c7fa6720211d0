package http1

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// handler answers by path, covering what the response side must agree on
// with net/http: lengths, chunking, sniffing, bodiless statuses,
// informational heads, keep-alive, files, hijacking.
func handler(t *testing.T) http.Handler {
	file := filepath.Join(t.TempDir(), "f.txt")
	if err := os.WriteFile(file, bytes.Repeat([]byte("0123456789abcdef"), 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		switch r.URL.Path {
		case "/small":
			h.Set("Content-Type", "text/plain")
			io.WriteString(w, "hello")
		case "/sniff":
			io.WriteString(w, "<html><body>hi</body></html>")
		case "/big":
			h.Set("Content-Type", "text/plain")
			w.Write(bytes.Repeat([]byte("x"), 5000))
		case "/cl":
			h.Set("Content-Length", "5")
			io.WriteString(w, "hello")
		case "/cl-big":
			// The head buffered, then a body larger than the buffer in
			// one write (one writev on the fast path).
			h.Set("Content-Length", "20000")
			w.Write(bytes.Repeat([]byte("b"), 20000))
			io.WriteString(w, "more")
		case "/cl-over":
			h.Set("Content-Length", "3")
			_, err := io.WriteString(w, "hello")
			fmt.Fprintf(w, "%v", err)
		case "/cl-short":
			h.Set("Content-Length", "10")
			io.WriteString(w, "hello")
		case "/cl-bad":
			h.Set("Content-Length", "x1")
			io.WriteString(w, "hello")
		case "/204":
			h.Set("Content-Length", "5")
			w.WriteHeader(http.StatusNoContent)
			if _, err := io.WriteString(w, "hello"); !errors.Is(err, http.ErrBodyNotAllowed) {
				panic("204 took a body")
			}
		case "/304":
			h.Set("Content-Type", "text/plain")
			h.Set("Content-Length", "5")
			h.Set("Etag", `"x"`)
			w.WriteHeader(http.StatusNotModified)
		case "/flush":
			io.WriteString(w, "a")
			w.(http.Flusher).Flush()
			io.WriteString(w, "b")
		case "/close":
			h.Set("Connection", "close")
			io.WriteString(w, "bye")
		case "/keep":
			h.Set("Connection", "keep-alive")
			io.WriteString(w, "hi")
		case "/103":
			h.Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			h.Del("Link")
			io.WriteString(w, "after hints")
		case "/te-identity":
			h.Set("Transfer-Encoding", "identity")
			io.WriteString(w, "raw")
		case "/te-chunked":
			h.Set("Transfer-Encoding", "chunked")
			io.WriteString(w, "chunks")
		case "/date":
			h.Set("Date", "Mon, 02 Jan 2006 15:04:05 GMT")
			io.WriteString(w, "dated")
		case "/empty":
		case "/999":
			w.WriteHeader(999)
			io.WriteString(w, "odd")
		case "/badheader":
			h["Bad Key"] = []string{"v"}
			h.Set("X-Split", "a\r\nInjected: yes")
			io.WriteString(w, "ok")
		case "/late-header":
			w.WriteHeader(http.StatusAccepted)
			h.Set("X-Late", "ignored")
			io.WriteString(w, "late")
		case "/file", "/file-nolen":
			f, err := os.Open(file)
			if err != nil {
				panic(err)
			}
			defer f.Close()
			if r.URL.Path == "/file" {
				h.Set("Content-Type", "text/plain")
				h.Set("Content-Length", "65536")
			}
			io.Copy(w, f) // ReadFrom: sendfile once the head is out
		case "/hijack":
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, "dropped")
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				panic(err)
			}
			brw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nhijacked")
			brw.Flush()
			conn.Close()
		case "/panic":
			panic("on purpose")
		case "/trailer":
			h.Set("Trailer", "X-T, Content-Length")
			io.WriteString(w, "body")
			w.(http.Flusher).Flush()
			h.Set("X-T", "tv")
			h.Set(http.TrailerPrefix+"X-Late", "late")
		case "/trailer-late":
			io.WriteString(w, "body")
			w.(http.Flusher).Flush()
			h.Set(http.TrailerPrefix+"X-Late", "late")
		case "/te-cl":
			h.Set("Transfer-Encoding", "chunked")
			h.Set("Content-Length", "5")
			_, err := io.WriteString(w, "0123456789")
			fmt.Fprintf(w, "%v", err)
		case "/conn-token":
			h.Set("Connection", "foo close")
			io.WriteString(w, "token")
		default:
			// echo: what the handler sees of the request
			keys := make([]string, 0, len(r.Header))
			for k := range r.Header {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			tlsInfo := "none"
			if r.TLS != nil {
				tlsInfo = fmt.Sprintf("%x/%q", r.TLS.Version, r.TLS.NegotiatedProtocol)
			}
			fmt.Fprintf(w, "%s %q %q %s host=%q close=%v cl=%d local=%v tls=%s\n", r.Method, r.RequestURI, r.URL.String(), r.Proto,
				r.Host, r.Close, r.ContentLength, r.Context().Value(http.LocalAddrContextKey) != nil, tlsInfo)
			for _, k := range keys {
				fmt.Fprintf(w, "%s=%q\n", k, r.Header[k])
			}
			b, err := io.ReadAll(r.Body)
			fmt.Fprintf(w, "body=%q err=%v\n", b, err)
		}
	})
}

// pair starts the fast path and plain net/http with the same handler.
func pair(t *testing.T, h http.Handler) (fast, std string) {
	return startPair(t, h, nil)
}

// pairTLS is pair over TLS: the fast path's handshake against net/http's
// ServeTLS, both offering h2 and http/1.1. The addresses it returns start
// with "tls:", for exchange.
func pairTLS(t *testing.T, h http.Handler) (fast, std string) {
	certs := testCerts(t)
	return startPair(t, h, func() *tls.Config {
		return &tls.Config{Certificates: certs, NextProtos: []string{"h2", "http/1.1"}}
	})
}

// startPair starts the fast path and net/http with h, over TLS if config
// is set (each server its own copy).
func startPair(t *testing.T, h http.Handler, config func() *tls.Config) (fast, std string) {
	t.Helper()
	quiet := func() *http.Server {
		s := &http.Server{Handler: h, ReadHeaderTimeout: 2 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
		if config != nil {
			s.TLSConfig = config()
		}
		return s
	}
	var lns [2]net.Listener
	for i := range lns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i] = ln
	}
	fs, ss := &Server{Handler: h, Fallback: quiet()}, quiet()
	prefix := ""
	if config != nil {
		fs.TLSConfig = config()
		prefix = "tls:"
		go ss.ServeTLS(lns[1], "", "")
	} else {
		go ss.Serve(lns[1])
	}
	go fs.Serve(lns[0])
	t.Cleanup(func() { fs.Close(); ss.Close() })
	return prefix + lns[0].Addr().String(), prefix + lns[1].Addr().String()
}

// serve starts s on a loopback port and returns its address.
func serve(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return ln.Addr().String()
}

// testCerts is a certificate for 127.0.0.1 and example.com (httptest's).
func testCerts(t *testing.T) []tls.Certificate {
	ts := httptest.NewUnstartedServer(nil)
	ts.StartTLS()
	defer ts.Close()
	return ts.TLS.Certificates
}

// dial connects to addr, over TLS with ALPN http/1.1 if it starts with
// "tls:".
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	if a, ok := strings.CutPrefix(addr, "tls:"); ok {
		c, err := tls.Dial("tcp", a, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// exchange sends raw on a new connection and reads the responses to its
// n requests, then whether the connection is still usable.
func exchange(t *testing.T, addr, raw string, n int, method string) string {
	t.Helper()
	c := dial(t, addr)
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var out strings.Builder
	for i := 0; i < n; i++ {
		req := &http.Request{Method: method}
		res, err := http.ReadResponse(br, req)
		if err != nil {
			fmt.Fprintf(&out, "response %d: %v\n", i, errors.Unwrap(err) != nil || err != nil)
			return out.String()
		}
		for res.StatusCode >= 100 && res.StatusCode < 200 && res.StatusCode != 101 {
			fmt.Fprintf(&out, "%s %v\n", res.Status, res.Header)
			if res, err = http.ReadResponse(br, req); err != nil {
				fmt.Fprintf(&out, "after 1xx: error\n")
				return out.String()
			}
		}
		body, err := io.ReadAll(res.Body)
		_, hasDate := res.Header["Date"]
		res.Header.Del("Date")
		fmt.Fprintf(&out, "%s te=%v cl=%d close=%v date=%v %v\nbody=%q err=%v trailer=%v\n", res.Status, res.TransferEncoding,
			res.ContentLength, res.Close, hasDate, res.Header, body, err, res.Trailer)
	}
	// Still open? Another request answers only if so.
	io.WriteString(c, "GET /small HTTP/1.1\r\nHost: x\r\n\r\n")
	if res, err := http.ReadResponse(br, nil); err == nil && res.StatusCode == 200 {
		out.WriteString("open\n")
	} else {
		out.WriteString("closed\n")
	}
	return out.String()
}

func TestSameAsNetHTTP(t *testing.T) {
	fast, std := pair(t, handler(t))
	sameAsNetHTTP(t, fast, std)
}

// TestSameAsNetHTTPOverTLS: the same exchanges over TLS (ALPN http/1.1),
// the fast path's handshake and loop against net/http's ServeTLS; the
// requests it hands over see their Request.TLS too.
func TestSameAsNetHTTPOverTLS(t *testing.T) {
	fast, std := pairTLS(t, handler(t))
	sameAsNetHTTP(t, fast, std)
}

func sameAsNetHTTP(t *testing.T, fast, std string) {
	get := func(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: example.com\r\n\r\n" }
	cases := []struct {
		name string
		raw  string
		n    int
	}{
		{"small", get("/small"), 1},
		{"sniff", get("/sniff"), 1},
		{"big", get("/big"), 1},
		{"cl", get("/cl"), 1},
		{"cl-big", get("/cl-big"), 1},
		{"cl-big pipelined", get("/cl-big") + get("/small") + get("/cl-big"), 3},
		{"cl-over", get("/cl-over"), 1},
		{"cl-short", get("/cl-short"), 1},
		{"cl-bad", get("/cl-bad"), 1},
		{"204", get("/204"), 1},
		{"304", get("/304"), 1},
		{"flush", get("/flush"), 1},
		{"close", get("/close"), 1},
		{"keep", get("/keep"), 1},
		{"103", get("/103"), 1},
		{"te-identity", get("/te-identity"), 1},
		{"te-chunked", get("/te-chunked"), 1},
		{"date", get("/date"), 1},
		{"empty", get("/empty"), 1},
		{"999", get("/999"), 1},
		{"badheader", get("/badheader"), 1},
		{"late-header", get("/late-header"), 1},
		{"file", get("/file"), 1},
		{"file-nolen", get("/file-nolen"), 1},
		{"hijack", get("/hijack"), 1},
		{"panic", get("/panic"), 1},
		{"trailer", get("/trailer"), 1},
		{"trailer late", get("/trailer-late"), 1},
		{"te-cl", get("/te-cl"), 1},
		{"conn-token", get("/conn-token"), 1},
		{"conn-token close", "GET /conn-token HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 1},
		{"echo", get("/echo?a=1&b=%20c#frag"), 1},
		{"echo headers", "GET /e HTTP/1.1\r\nhost: Example.COM:8080\r\nx-lower: 1\r\nX-Dup: a\r\nx-dup: b\r\nAccept:  spaced \t\r\nEmpty:\r\nx_under: u\r\n\r\n", 1},
		{"pragma", "GET /e HTTP/1.1\r\nHost: x\r\nPragma: no-cache\r\n\r\n", 1},
		{"request close", "GET /e HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, close\r\n\r\n", 1},
		{"pipelined", get("/small") + get("/big") + get("/e"), 3},
		{"head small", "HEAD /small HTTP/1.1\r\nHost: x\r\n\r\n", 1},
		{"head big", "HEAD /big HTTP/1.1\r\nHost: x\r\n\r\n", 1},
		{"head file", "HEAD /file HTTP/1.1\r\nHost: x\r\n\r\n", 1},
		{"head empty", "HEAD /empty HTTP/1.1\r\nHost: x\r\n\r\n", 1},
		// Requests the fast path hands over: net/http answers them.
		{"post body", "POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 1},
		{"get body", "GET /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 1},
		{"get chunked", "GET /e HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 1},
		{"cl and te", "GET /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 1},
		{"expect", "POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nhi", 1},
		{"expect bad", "GET /e HTTP/1.1\r\nHost: x\r\nExpect: nonsense\r\n\r\n", 1},
		{"http/1.0", "GET /e HTTP/1.0\r\n\r\n", 1},
		{"http/1.0 keep-alive", "GET /small HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 1},
		{"absolute", "GET http://other.example/e HTTP/1.1\r\nHost: x\r\n\r\n", 1},
		{"options *", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 1},
		{"no host", "GET /e HTTP/1.1\r\n\r\n", 1},
		{"two hosts", "GET /e HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 1},
		{"bad host", "GET /e HTTP/1.1\r\nHost: a b\r\n\r\n", 1},
		{"bare lf", "GET /e HTTP/1.1\nHost: x\n\n", 1},
		{"obs-fold", "GET /e HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 1},
		{"space before colon", "GET /e HTTP/1.1\r\nHost: x\r\nX-A : a\r\n\r\n", 1},
		{"nul in value", "GET /e HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 1},
		{"ctl in target", "GET /e\x01 HTTP/1.1\r\nHost: x\r\n\r\n", 1},
		{"bad version", "GET /e HTTP/1.2\r\nHost: x\r\n\r\n", 1},
		{"lower method", "get /e HTTP/1.1\r\nHost: x\r\n\r\n", 1},
		{"double space", "GET  /e HTTP/1.1\r\nHost: x\r\n\r\n", 1},
		{"leading crlf", "\r\nGET /e HTTP/1.1\r\nHost: x\r\n\r\n", 1},
		{"big head", "GET /e HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 6000) + "\r\n\r\n", 1},
		{"too big head", "GET /e HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 2<<20) + "\r\n\r\n", 1},
		{"upgrade", "GET /e HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 1},
		{"h2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 1},
		{"fast then slow", get("/small") + "POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi" + get("/small"), 3},
		{"partial then end", "GET /e HTTP/1.1\r\nHost: x\r\n", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method := "GET"
			if strings.HasPrefix(tc.raw, "HEAD") {
				method = "HEAD"
			}
			want := exchange(t, std, tc.raw, tc.n, method)
			got := exchange(t, fast, tc.raw, tc.n, method)
			if got != want {
				t.Errorf("fast path:\n%s\nnet/http:\n%s", got, want)
			}
		})
	}
}

// TestContextCancelledWhenClientLeaves: a handler waiting on its context
// hears of the client's leaving, as under net/http.
func TestContextCancelledWhenClientLeaves(t *testing.T) {
	gone := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			gone <- r.Context().Err()
		case <-time.After(5 * time.Second):
			gone <- errors.New("no cancellation within 5 s")
		}
	})
	fast, _ := pair(t, h)
	c, err := net.Dial("tcp", fast)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(50 * time.Millisecond)
	c.Close()
	if err := <-gone; !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

// TestErrNoticesClientAfterWatchAfter: a handler that only polls Err (as
// PHP's output does) learns of the client leaving too.
func TestErrNoticesClientAfterWatchAfter(t *testing.T) {
	gone := make(chan bool, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if r.Context().Err() != nil {
				gone <- true
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		gone <- false
	})
	fast, _ := pair(t, h)
	c, err := net.Dial("tcp", fast)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(50 * time.Millisecond)
	c.Close()
	if !<-gone {
		t.Fatal("Err never reported the client gone")
	}
}

// TestPipelinedRequestDuringWatch: a byte of the next request read by the
// watch is not lost, and is not taken for the client leaving.
func TestPipelinedRequestDuringWatch(t *testing.T) {
	var cancelled atomic.Int32
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/wait" {
			<-time.After(100 * time.Millisecond)
			select {
			case <-r.Context().Done():
				cancelled.Add(1)
			default:
			}
		}
		io.WriteString(w, r.URL.Path)
	})
	fast, _ := pair(t, h)
	c, err := net.Dial("tcp", fast)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(20 * time.Millisecond)
	io.WriteString(c, "GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	for _, want := range []string{"/wait", "/next"} {
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		if string(b) != want {
			t.Fatalf("got %q, want %q", b, want)
		}
	}
	if cancelled.Load() != 0 {
		t.Fatal("the pipelined request cancelled the first one")
	}
}

// TestShutdownWaitsForRequest: Shutdown closes idle connections and waits
// for a request in flight, which ends with Connection: close.
func TestShutdownWaitsForRequest(t *testing.T) {
	started := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(started)
			time.Sleep(200 * time.Millisecond)
		}
		io.WriteString(w, "done")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Handler: h, Fallback: &http.Server{Handler: h}}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	idle, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	io.WriteString(idle, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	ibr := bufio.NewReader(idle)
	if res, err := http.ReadResponse(ibr, nil); err != nil {
		t.Fatal(err)
	} else {
		io.ReadAll(res.Body)
	}
	busy, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve returned %v", err)
	}
	res, err := http.ReadResponse(bufio.NewReader(busy), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	if string(b) != "done" || !res.Close {
		t.Fatalf("in-flight response: %q, close %v", b, res.Close)
	}
	idle.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := ibr.ReadByte(); err == nil {
		t.Fatal("idle connection still open after Shutdown")
	}
}

// TestShutdownLeavesHijacked: a handler that hijacked its connection
// (fastcgi_finish_request) and runs on does not hold Shutdown, as under
// net/http.
func TestShutdownLeavesHijacked(t *testing.T) {
	hijacked := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		conn.Close()
		close(hijacked)
		time.Sleep(2 * time.Second)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Handler: h, Fallback: &http.Server{Handler: h}}
	go s.Serve(ln)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	<-hijacked
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown waited for a hijacked connection: %v", err)
	}
}

// TestHandOffConnState: a connection handed to net/http is reported new
// there before the fast path lets go of it, so a count of connections
// that have not sent a request yet never drops to zero in between.
func TestHandOffConnState(t *testing.T) {
	var mu sync.Mutex
	var events []string
	fresh := map[net.Conn]bool{}
	emptied := false
	hook := func(c net.Conn, st http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		_, handed := c.(*handedConn)
		events = append(events, fmt.Sprintf("%v:%v", handed, st))
		if st == http.StateNew {
			fresh[c] = true
		} else if fresh[c] {
			delete(fresh, c)
			if len(fresh) == 0 && !handed {
				emptied = true // the fast path's end before net/http's start
			}
		}
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	s := &Server{Handler: h, Fallback: &http.Server{Handler: h, ConnState: hook}}
	c, err := net.Dial("tcp", serve(t, s))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
	if _, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if emptied {
		t.Fatalf("no connection was fresh between the fast path and net/http: %v", events)
	}
	if served, handed := s.Stats(); served != 0 || handed != 1 {
		t.Fatalf("Stats: served %d, handed over %d", served, handed)
	}
}

// TestTLSHandsOverHTTP2: a client that negotiates h2 is served by
// net/http's HTTP/2 server, on the connection the fast path's handshake
// made; the fast path serves none of its requests and counts no
// hand-over.
func TestTLSHandsOverHTTP2(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s tls=%v alpn=%q", r.Proto, r.TLS != nil, r.TLS.NegotiatedProtocol)
	})
	certs := testCerts(t)
	config := func() *tls.Config {
		return &tls.Config{Certificates: certs, NextProtos: []string{"h2", "http/1.1"}}
	}
	s := &Server{Handler: h, Fallback: &http.Server{Handler: h, TLSConfig: config()}, TLSConfig: config()}
	addr := serve(t, s)
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	for _, want := range []string{"HTTP/2.0 tls=true alpn=\"h2\"", "HTTP/2.0 tls=true alpn=\"h2\""} {
		res, err := (&http.Client{Transport: tr}).Get("https://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if string(body) != want {
			t.Fatalf("got %q, want %q", body, want)
		}
	}
	if served, handed := s.Stats(); served != 0 || handed != 0 {
		t.Fatalf("Stats: served %d, handed over %d; want 0, 0", served, handed)
	}
}

// TestTLSPlainClient: plain HTTP sent to the TLS port gets net/http's
// answer, byte for byte.
func TestTLSPlainClient(t *testing.T) {
	fast, std := pairTLS(t, handler(t))
	read := func(addr string) string {
		c, err := net.Dial("tcp", strings.TrimPrefix(addr, "tls:"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		b, err := io.ReadAll(c)
		return fmt.Sprintf("%q %v", b, err)
	}
	got, want := read(fast), read(std)
	if got != want || !strings.Contains(got, "400 Bad Request") {
		t.Fatalf("fast path: %s\nnet/http: %s", got, want)
	}
}

// TestTLSHandshakeTimeout: a client that connects and never finishes its
// handshake is closed after the server's shortest timeout, as by
// net/http.
func TestTLSHandshakeTimeout(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	cfg := &tls.Config{Certificates: testCerts(t)}
	fb := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 200 * time.Millisecond, ErrorLog: log.New(io.Discard, "", 0)}
	c, err := net.Dial("tcp", serve(t, &Server{Handler: h, Fallback: fb, TLSConfig: cfg}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read %d bytes, %v; want the server's close (EOF) within 5 s", n, err)
	}
}

// TestTLSReadFromChecksLength: a handler that copies more than its
// Content-Length through ReadFrom is stopped at the length over TLS, on
// the fast path and on a connection handed over mid-way, as by net/http's
// ServeTLS (there is no sendfile to bypass the check for).
func TestTLSReadFromChecksLength(t *testing.T) {
	errs := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "600")
		// Not a WriterTo: io.Copy goes through w's ReadFrom.
		_, err := io.Copy(w, struct{ io.Reader }{strings.NewReader(strings.Repeat("r", 2000))})
		errs <- err
	})
	fast, std := pairTLS(t, h)
	for _, addr := range []string{std, fast} {
		for _, raw := range []string{
			"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
			"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi", // handed over
		} {
			exchange(t, addr, raw, 1, "GET")
			if err := <-errs; !errors.Is(err, http.ErrContentLength) {
				t.Errorf("%s %q: the copy ended with %v, want %v", addr, raw[:4], err, http.ErrContentLength)
			}
		}
	}
}
