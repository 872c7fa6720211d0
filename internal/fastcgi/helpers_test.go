package fastcgi

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"iter"
	"net/textproto"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fe-php/fe-php/internal/testutil/fpmtest"
)

var networks = []string{"unix", "tcp"}

func startFPM(t testing.TB, opts fpmtest.Options) *fpmtest.FPM {
	t.Helper()
	if opts.DocRoot == "" {
		opts.DocRoot = "testdata"
	}
	return fpmtest.Start(t, opts)
}

// params builds the CGI environment for script (relative to the FPM's
// document root) plus extra name, value pairs.
func params(f *fpmtest.FPM, method, script, query string, extra ...string) iter.Seq2[string, string] {
	kv := []string{
		"GATEWAY_INTERFACE", "CGI/1.1",
		"SERVER_SOFTWARE", "fe-php-test",
		"SERVER_PROTOCOL", "HTTP/1.1",
		"SERVER_NAME", "localhost",
		"SERVER_PORT", "80",
		"REMOTE_ADDR", "127.0.0.1",
		"REQUEST_METHOD", method,
		"SCRIPT_FILENAME", filepath.Join(f.DocRoot, script),
		"SCRIPT_NAME", "/" + script,
		"DOCUMENT_ROOT", f.DocRoot,
		"REQUEST_URI", "/" + script + "?" + query,
		"QUERY_STRING", query,
	}
	kv = append(kv, extra...)
	return pairs(kv...)
}

func pairs(kv ...string) iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		for i := 0; i+1 < len(kv); i += 2 {
			if !yield(kv[i], kv[i+1]) {
				return
			}
		}
	}
}

type result struct {
	header textproto.MIMEHeader
	body   []byte
	stderr []string
	resp   *Response
}

// roundTrip does one request on c and reads the whole response.
func roundTrip(t testing.TB, c *Conn, req *Request) *result {
	t.Helper()
	res := &result{}
	if req.Stderr == nil {
		req.Stderr = func(p []byte) { res.stderr = append(res.stderr, string(p)) }
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	raw, err := io.ReadAll(resp)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	res.resp = resp
	res.header, res.body = parseCGI(t, raw)
	return res
}

func parseCGI(t testing.TB, raw []byte) (textproto.MIMEHeader, []byte) {
	t.Helper()
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(raw)))
	h, err := tp.ReadMIMEHeader()
	if err != nil {
		t.Fatalf("CGI header: %v in %q", err, truncate(raw))
	}
	i := bytes.Index(raw, []byte("\r\n\r\n"))
	if i < 0 {
		t.Fatalf("no end of CGI header in %q", truncate(raw))
	}
	return h, raw[i+4:]
}

func truncate(b []byte) []byte {
	if len(b) > 300 {
		return b[:300]
	}
	return b
}

func dial(t testing.TB, f *fpmtest.FPM) *Conn {
	t.Helper()
	c, err := Dial(context.Background(), f.Network, f.Address, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// eventually polls cond every 10ms until it holds or d passes.
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func contains(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
