package fastcgi

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
)

// Protocol tests against a scripted in-process server (no FPM).

type record struct {
	typ     uint8
	id      uint16
	content []byte
}

func readRecord(t *testing.T, r io.Reader) record {
	t.Helper()
	var h [8]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		t.Fatalf("server: read header: %v", err)
	}
	if h[0] != 1 {
		t.Fatalf("server: version %d", h[0])
	}
	n := int(binary.BigEndian.Uint16(h[4:6]))
	b := make([]byte, n+int(h[6]))
	if _, err := io.ReadFull(r, b); err != nil {
		t.Fatalf("server: read content: %v", err)
	}
	return record{h[1], binary.BigEndian.Uint16(h[2:4]), b[:n]}
}

// skipRecord reads one record (in a server goroutine, where t.Fatal is not allowed).
func skipRecord(r io.Reader) {
	var h [8]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return
	}
	io.CopyN(io.Discard, r, int64(binary.BigEndian.Uint16(h[4:6]))+int64(h[6]))
}

func writeRecord(w io.Writer, typ uint8, id uint16, content []byte, pad int) {
	h := []byte{1, typ, byte(id >> 8), byte(id), byte(len(content) >> 8), byte(len(content)), byte(pad), 0}
	w.Write(append(append(h, content...), make([]byte, pad)...))
}

// decodePairs decodes one PARAMS record's content; it fails on a pair that
// does not end inside the record (PHP-FPM parses records one by one).
func decodePairs(t *testing.T, b []byte, into map[string]string) {
	t.Helper()
	readLen := func() int {
		if len(b) == 0 {
			t.Fatal("server: truncated pair")
		}
		if b[0] < 0x80 {
			n := int(b[0])
			b = b[1:]
			return n
		}
		if len(b) < 4 {
			t.Fatal("server: truncated length")
		}
		n := int(binary.BigEndian.Uint32(b) & 0x7fffffff)
		b = b[4:]
		return n
	}
	for len(b) > 0 {
		nl := readLen()
		vl := readLen()
		if len(b) < nl+vl {
			t.Fatalf("server: pair spans records (%d+%d bytes, %d left)", nl, vl, len(b))
		}
		into[string(b[:nl])] = string(b[nl : nl+vl])
		b = b[nl+vl:]
	}
}

func TestProtocolRequestEncoding(t *testing.T) {
	cli, srv := net.Pipe()
	defer srv.Close()
	c := NewConn(cli)
	defer c.Close()
	want := map[string]string{
		"SHORT":                  "v",
		strings.Repeat("N", 127): strings.Repeat("v", 127),
		strings.Repeat("M", 128): strings.Repeat("w", 128),
		"EMPTY":                  "",
		"BIG1":                   strings.Repeat("a", 40000),
		"BIG2":                   strings.Repeat("b", 40000), // must start a new record
	}
	var kv []string
	for k, v := range want {
		kv = append(kv, k, v)
	}
	body := bytes.Repeat([]byte("x"), 70000)
	errc := make(chan error, 1)
	go func() {
		resp, err := c.Do(&Request{Params: pairs(kv...), Body: bytes.NewReader(body)})
		if err != nil {
			errc <- err
			return
		}
		_, err = io.ReadAll(resp)
		errc <- err
	}()

	begin := readRecord(t, srv)
	if begin.typ != typeBeginRequest || begin.id != 1 || !bytes.Equal(begin.content, []byte{0, 1, 1, 0, 0, 0, 0, 0}) {
		t.Fatalf("begin request %+v", begin)
	}
	got := map[string]string{}
	nparams := 0
	for {
		r := readRecord(t, srv)
		if r.typ != typeParams {
			t.Fatalf("record type %d among params", r.typ)
		}
		if len(r.content) == 0 {
			break
		}
		nparams++
		decodePairs(t, r.content, got)
	}
	if nparams < 2 {
		t.Errorf("%d PARAMS records for > 64 KiB of params", nparams)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("param %.20s: %d bytes, want %d", k, len(got[k]), len(v))
		}
	}
	var stdin []byte
	nstdin := 0
	for {
		r := readRecord(t, srv)
		if r.typ != typeStdin {
			t.Fatalf("record type %d among stdin", r.typ)
		}
		if len(r.content) == 0 {
			break
		}
		nstdin++
		stdin = append(stdin, r.content...)
	}
	if !bytes.Equal(stdin, body) || nstdin != 2 {
		t.Errorf("stdin: %d bytes in %d records, want %d in 2", len(stdin), nstdin, len(body))
	}
	writeRecord(srv, typeStdout, 1, []byte("Status: 200\r\n\r\nok"), 0)
	writeRecord(srv, typeEndRequest, 1, make([]byte, 8), 0)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestProtocolResponseRecords(t *testing.T) {
	cli, srv := net.Pipe()
	defer srv.Close()
	c := NewConn(cli)
	defer c.Close()
	go func() {
		skipRecord(srv) // begin
		skipRecord(srv) // empty params
		skipRecord(srv) // empty stdin
		writeRecord(srv, typeStdout, 1, []byte("Content-Type: text/plain\r\n\r\n"), 4)
		writeRecord(srv, typeGetValuesResult, 0, []byte{3, 1, 'F', 'C', 'G', '1'}, 2) // management: skipped, taints
		writeRecord(srv, typeStderr, 1, []byte("warning one"), 5)
		writeRecord(srv, typeStdout, 1, nil, 0) // empty stdout: skipped
		writeRecord(srv, typeStdout, 1, []byte("hello"), 3)
		writeRecord(srv, typeUnknownType, 1, make([]byte, 8), 0)
		writeRecord(srv, typeStdout, 1, []byte(" world"), 0)
		writeRecord(srv, typeEndRequest, 1, []byte{0, 0, 1, 2, StatusOverloaded, 0, 0, 0}, 0)
	}()
	var stderr []string
	resp, err := c.Do(&Request{Stderr: func(p []byte) { stderr = append(stderr, string(p)) }})
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(resp)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "Content-Type: text/plain\r\n\r\nhello world" {
		t.Errorf("stdout %q", out)
	}
	if len(stderr) != 1 || stderr[0] != "warning one" {
		t.Errorf("stderr %q", stderr)
	}
	if resp.AppStatus() != 258 || resp.ProtocolStatus() != StatusOverloaded {
		t.Errorf("app status %d, protocol status %d", resp.AppStatus(), resp.ProtocolStatus())
	}
	// FPM sends no management record unasked: the connection is not reused.
	if !c.Tainted() || c.reusable() {
		t.Errorf("after a stray management record: Tainted %v, reusable %v", c.Tainted(), c.reusable())
	}
}

func TestProtocolTruncated(t *testing.T) {
	cli, srv := net.Pipe()
	c := NewConn(cli)
	defer c.Close()
	go func() {
		skipRecord(srv)
		skipRecord(srv)
		skipRecord(srv)
		writeRecord(srv, typeStdout, 1, []byte("partial"), 0)
		srv.Close()
	}()
	resp, err := c.Do(&Request{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(resp)
	if string(out) != "partial" || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("got %q, %v; want the partial output and io.ErrUnexpectedEOF", out, err)
	}
	if !resp.Received() || c.reusable() {
		t.Errorf("Received %v, reusable %v", resp.Received(), c.reusable())
	}
	if _, err := c.Do(&Request{}); !errors.Is(err, ErrConnBroken) {
		t.Errorf("Do on a broken conn: %v", err)
	}
}
