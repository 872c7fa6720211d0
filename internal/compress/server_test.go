package compress

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestStreaming: a flush pushes what was written through the encoder to
// the client at once, though it is shorter than MinLength; the handler
// goes on only once the client has decoded it.
func TestStreaming(t *testing.T) {
	c := mustNew(t, Options{})
	flushes := map[string]func(http.ResponseWriter) error{
		"Flusher": func(w http.ResponseWriter) error { w.(http.Flusher).Flush(); return nil },
		"ResponseController": func(w http.ResponseWriter) error {
			return http.NewResponseController(w).Flush()
		},
	}
	for _, alg := range algorithms {
		for how, flush := range flushes {
			t.Run(alg+"/"+how, func(t *testing.T) {
				received := make(chan struct{})
				srv := httptest.NewServer(c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "text/html")
					io.WriteString(w, "first part;")
					if err := flush(w); err != nil {
						t.Errorf("flush: %v", err)
					}
					select {
					case <-received:
					case <-time.After(5 * time.Second):
						t.Error("the client did not get the first part")
					}
					io.WriteString(w, "second part")
				})))
				defer srv.Close()
				req, _ := http.NewRequest("GET", srv.URL, nil)
				req.Header.Set("Accept-Encoding", alg)
				res, err := srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				if ce := res.Header.Get("Content-Encoding"); ce != alg {
					t.Fatalf("Content-Encoding = %q", ce)
				}
				dec, err := decoder(alg, res.Body)
				if err != nil {
					t.Fatal(err)
				}
				defer dec.Close()
				first := make([]byte, len("first part;"))
				if _, err := io.ReadFull(dec, first); err != nil || string(first) != "first part;" {
					t.Fatalf("first part: %q, %v", first, err)
				}
				close(received)
				rest, err := io.ReadAll(dec)
				if err != nil || string(rest) != "second part" {
					t.Errorf("second part: %q, %v", rest, err)
				}
			})
		}
	}
}

// TestHijack: a handler that hijacks the connection after its response
// (fastcgi_finish_request, see phpreq's endFinished) finds the
// compressed body complete and flushed. A chunked one it then ends
// itself, unless it had set a Content-Length (then it expects its body
// to end with its last byte, and Hijack writes the last chunk). The
// client gets the whole body and nothing after it.
func TestHijack(t *testing.T) {
	c := mustNew(t, Options{})
	page := testHTML(20 << 10)
	tests := []struct {
		name  string
		sized bool // sets a Content-Length, ends nothing itself
		flush bool // flushes before Hijack, as phpreq does
		body  []byte
		plain bool // too short to compress
	}{
		{name: "streamed", flush: true, body: page},
		{name: "unflushed", body: page},
		{name: "sized", sized: true, flush: true, body: page},
		{name: "sized unflushed", sized: true, body: page},
		{name: "short", flush: true, body: page[:100]}, // a flush decides: compressed
		// Held back when Hijack comes: sent as it is. (Without a coding,
		// the response is net/http's own, which drops what was not flushed.)
		{name: "short unflushed", body: page[:100], plain: true},
	}
	for _, alg := range append(algorithms, "-") {
		for _, tt := range tests {
			if alg == "-" && tt.name == "short unflushed" {
				continue
			}
			t.Run(alg+"/"+tt.name, func(t *testing.T) {
				srv := httptest.NewServer(c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "text/html")
					if tt.sized {
						w.Header().Set("Content-Length", fmt.Sprint(len(tt.body)))
					}
					w.Write(tt.body)
					rc := http.NewResponseController(w)
					if tt.flush {
						if err := rc.Flush(); err != nil {
							t.Error(err)
						}
					}
					conn, brw, err := rc.Hijack()
					if err != nil {
						t.Error(err)
						return
					}
					defer conn.Close()
					if _, err := w.Write([]byte("x")); !errors.Is(err, http.ErrHijacked) {
						t.Errorf("Write after Hijack: %v", err)
					}
					if !tt.sized {
						brw.WriteString("0\r\n\r\n")
						brw.Flush()
					}
				})))
				defer srv.Close()

				res, body, trailing := rawGet(t, srv.Listener.Addr().String(), alg)
				want := alg
				if alg == "-" || tt.plain {
					want = ""
				}
				if ce := res.Header.Get("Content-Encoding"); ce != want {
					t.Errorf("Content-Encoding = %q, want %q", ce, want)
				}
				if got := decode(t, want, body); !bytes.Equal(got, tt.body) {
					t.Errorf("body: %d bytes, want %d", len(got), len(tt.body))
				}
				if trailing != "" {
					t.Errorf("%q after the response", trailing)
				}
			})
		}
	}
}

// rawGet sends a GET over a new connection and reads until the server
// closes it: the response, its body (an error if the chunked body does
// not end) and what came after it.
func rawGet(t *testing.T, addr, acceptEncoding string) (*http.Response, []byte, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	ae := ""
	if acceptEncoding != "-" {
		ae = "Accept-Encoding: " + acceptEncoding + "\r\n"
	}
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: test\r\n%s\r\n", ae)
	raw, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("reading: %v (after %d bytes)", err, len(raw))
	}
	br := bufio.NewReader(bytes.NewReader(raw))
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("body: %v (chunked: %v)", err, res.TransferEncoding)
	}
	rest, _ := io.ReadAll(br)
	return res, body, string(rest)
}

// TestHijackHTTP2: where the connection cannot be hijacked, the
// response is left as it was, and goes on.
func TestHijackHTTP2(t *testing.T) {
	c := mustNew(t, Options{})
	page := testHTML(20 << 10)
	srv := httptest.NewUnstartedServer(c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write(page[:10000])
		if _, _, err := http.NewResponseController(w).Hijack(); !errors.Is(err, http.ErrNotSupported) {
			t.Errorf("Hijack over HTTP/2: %v", err)
		}
		w.Write(page[10000:])
	})))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("Accept-Encoding", "zstd")
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil || res.ProtoMajor != 2 || res.Header.Get("Content-Encoding") != "zstd" {
		t.Fatalf("%s, Content-Encoding %q, %v", res.Proto, res.Header.Get("Content-Encoding"), err)
	}
	if got := decode(t, "zstd", body); !bytes.Equal(got, page) {
		t.Errorf("body: %d bytes, want %d", len(got), len(page))
	}
}

// TestInformational: a 1xx goes out as it is, and the final response is
// still compressed.
func TestInformational(t *testing.T) {
	c := mustNew(t, Options{})
	page := testHTML(5000)
	srv := httptest.NewServer(c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</app.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Set("Content-Type", "text/html")
		w.Write(page)
	})))
	defer srv.Close()
	var got1xx []int
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		if h.Get("Content-Encoding") != "" || h.Get("Link") == "" {
			t.Errorf("%d: %v", code, h)
		}
		got1xx = append(got1xx, code)
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), "GET", srv.URL, nil)
	req.Header.Set("Accept-Encoding", "br")
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if len(got1xx) != 1 || got1xx[0] != 103 || res.StatusCode != 200 || res.Header.Get("Content-Encoding") != "br" {
		t.Fatalf("1xx %v, then %d with Content-Encoding %q", got1xx, res.StatusCode, res.Header.Get("Content-Encoding"))
	}
	if !bytes.Equal(decode(t, "br", body), page) {
		t.Error("body differs")
	}
}

// TestResponseController: http.ResponseController reaches the
// connection's writer through Unwrap.
func TestResponseController(t *testing.T) {
	c := mustNew(t, Options{})
	srv := httptest.NewServer(c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if err := rc.SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
			t.Errorf("SetWriteDeadline: %v", err)
		}
		if err := rc.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
			t.Errorf("SetReadDeadline: %v", err)
		}
		if err := rc.EnableFullDuplex(); err != nil {
			t.Errorf("EnableFullDuplex: %v", err)
		}
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, strings.Repeat("ok ", 1000))
	})))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(decode(t, res.Header.Get("Content-Encoding"), body)) != strings.Repeat("ok ", 1000) {
		t.Error("body differs")
	}
}

// TestConcurrent runs many responses at once, of every kind, for the
// race detector and the pools.
func TestConcurrent(t *testing.T) {
	c := mustNew(t, Options{})
	page := testHTML(30 << 10)
	srv := httptest.NewServer(c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n int
		fmt.Sscan(r.URL.Query().Get("n"), &n)
		w.Header().Set("Content-Type", "text/html")
		for p := page[:n]; len(p) > 0; p = p[min(len(p), 700):] {
			w.Write(p[:min(len(p), 700)])
			if r.URL.Query().Has("flush") {
				w.(http.Flusher).Flush()
			}
		}
	})))
	defer srv.Close()
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			alg := append(algorithms, "-")[i%4]
			n := []int{0, 100, 1023, 1024, 5000, 30 << 10}[i%6]
			url := fmt.Sprintf("%s/?n=%d", srv.URL, n)
			if i%3 == 0 {
				url += "&flush"
			}
			req, _ := http.NewRequest("GET", url, nil)
			if alg != "-" {
				req.Header.Set("Accept-Encoding", alg)
			}
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			if err != nil {
				t.Error(err)
				return
			}
			ce := res.Header.Get("Content-Encoding")
			if out, err := decodeErr(ce, body); ce != "" && (err != nil || !bytes.Equal(out, page[:n])) {
				t.Errorf("%s, %d bytes: %v", alg, n, err)
			} else if ce == "" && !bytes.Equal(body, page[:n]) {
				t.Errorf("%s, %d bytes: body differs", alg, n)
			}
		})
	}
	wg.Wait()
}
