//go:build linux && (amd64 || arm64)

package rawio

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// pair returns the two ends of a loopback TCP connection: the server's
// (read and written through a Conn) and the client's, closed at the end.
func pair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return server.(*net.TCPConn), client.(*net.TCPConn)
}

func TestNewOnlyForPlainSockets(t *testing.T) {
	server, _ := pair(t)
	if New(server) == nil {
		t.Fatal("New(*net.TCPConn) = nil")
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if New(a) != nil {
		t.Error("New(net.Pipe()) != nil")
	}
	if New(tls.Server(server, &tls.Config{})) != nil {
		t.Error("New(*tls.Conn) != nil")
	}
	// A wrapper that embeds the socket may do more in Read and Write.
	type counting struct{ *net.TCPConn }
	if New(counting{server}) != nil {
		t.Error("New(a wrapper of a *net.TCPConn) != nil")
	}
	sock := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	uc, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	if New(uc) == nil {
		t.Error("New(*net.UnixConn) = nil")
	}
}

func TestReadWaitsThenReadsThenEOF(t *testing.T) {
	server, client := pair(t)
	c := New(server)
	go func() {
		time.Sleep(20 * time.Millisecond) // Read must wait on the poller
		client.Write([]byte("hello"))
		client.Close()
	}()
	var got []byte
	buf := make([]byte, 3)
	for {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		if n == 0 {
			t.Fatal("Read returned 0 bytes and no error")
		}
	}
	if string(got) != "hello" {
		t.Fatalf("read %q, want %q", got, "hello")
	}
	if n, err := c.Read(nil); n != 0 || err != nil {
		t.Fatalf("Read(nil) = %d, %v; want 0, nil", n, err)
	}
}

func TestReadDeadlineAndClose(t *testing.T) {
	server, _ := pair(t)
	c := New(server)
	server.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := c.Read(make([]byte, 8))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past the deadline: %v; want a timeout", err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "read" {
		t.Fatalf("Read past the deadline: %#v; want a *net.OpError of op read", err)
	}
	server.SetReadDeadline(time.Time{})

	done := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 8))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	server.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Read during Close: %v; want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end a waiting Read")
	}
}

func TestReadReset(t *testing.T) {
	server, client := pair(t)
	client.SetLinger(0) // close with a RST
	client.Close()
	c := New(server)
	_, err := c.Read(make([]byte, 8))
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "read" || !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("Read after a reset: %v; want a read *net.OpError wrapping ECONNRESET", err)
	}
}

// Writev writes everything, in order, even when the socket's buffer fills
// in the middle of either slice and the writer must wait for the reader.
func TestWritevAllOfBoth(t *testing.T) {
	server, client := pair(t)
	c := New(server)
	// More than the kernel's buffers hold (a few MiB on loopback).
	p := bytes.Repeat([]byte("p"), 6<<20)
	q := bytes.Repeat([]byte("q"), 10<<20+1)
	got := make(chan []byte, 1)
	go func() {
		time.Sleep(20 * time.Millisecond) // the buffers fill first
		b, _ := io.ReadAll(client)
		got <- b
	}()
	n, err := c.Writev(p, q)
	if err != nil || n != len(p)+len(q) {
		t.Fatalf("Writev = %d, %v; want %d, nil", n, err, len(p)+len(q))
	}
	if n, err := c.Write([]byte("!")); n != 1 || err != nil {
		t.Fatalf("Write = %d, %v; want 1, nil", n, err)
	}
	if n, err := c.Writev(nil, nil); n != 0 || err != nil {
		t.Fatalf("Writev(nil, nil) = %d, %v; want 0, nil", n, err)
	}
	server.CloseWrite()
	b := <-got
	want := append(append(append([]byte{}, p...), q...), '!')
	if !bytes.Equal(b, want) {
		t.Fatalf("the reader got %d bytes, want %d in order", len(b), len(want))
	}
}

func TestWriteDeadlineAndPeerGone(t *testing.T) {
	server, client := pair(t)
	server.SetWriteBuffer(4096)
	c := New(server)
	server.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	big := make([]byte, 8<<20) // more than the kernel buffers: nobody reads
	n, err := c.Write(big)
	if !errors.Is(err, os.ErrDeadlineExceeded) || n == 0 || n >= len(big) {
		t.Fatalf("Write past the deadline = %d, %v; want part of it and a timeout", n, err)
	}
	server.SetWriteDeadline(time.Time{})

	client.SetLinger(0)
	client.Close()
	time.Sleep(20 * time.Millisecond)
	for range 3 { // the first write after the reset may still succeed
		if _, err = c.Write(big[:1024]); err != nil {
			break
		}
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "write" || !(errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)) {
		t.Fatalf("Write to a peer that reset: %v; want a write *net.OpError wrapping EPIPE or ECONNRESET", err)
	}
}

func TestPeek(t *testing.T) {
	server, client := pair(t)
	c := New(server)
	if n, err := c.Peek(); n != 0 || err != syscall.EAGAIN {
		t.Fatalf("Peek with nothing sent = %d, %v; want 0, EAGAIN", n, err)
	}
	client.Write([]byte("x"))
	time.Sleep(20 * time.Millisecond)
	if n, err := c.Peek(); n != 1 || err != nil {
		t.Fatalf("Peek with a byte sent = %d, %v; want 1, nil", n, err)
	}
	// Peek consumed nothing.
	buf := make([]byte, 4)
	if n, err := c.Read(buf); n != 1 || err != nil || buf[0] != 'x' {
		t.Fatalf("Read after Peek = %d, %v, %q; want the byte", n, err, buf[:n])
	}
	client.Close()
	time.Sleep(20 * time.Millisecond)
	if n, err := c.Peek(); n != 0 || err != nil {
		t.Fatalf("Peek after the peer closed = %d, %v; want 0, nil", n, err)
	}
	server.Close()
	if _, err := c.Peek(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Peek after Close: %v; want net.ErrClosed", err)
	}
}

// Under -race, bytes written through a Conn and read through a net.Conn
// (a test's client) carry the writer's memory with them, as between two
// net.Conns: no race is reported.
func TestRaceDetectorSeesTheSocket(t *testing.T) {
	server, client := pair(t)
	c := New(server)
	var handled string
	done := make(chan struct{})
	go func() {
		defer close(done)
		handled = "yes" // the handler's state, set before its response
		c.Write([]byte("response"))
	}()
	buf := make([]byte, 8)
	if _, err := io.ReadFull(client, buf); err != nil {
		t.Fatal(err)
	}
	if handled != "yes" {
		t.Fatalf("handled = %q after the response", handled)
	}
	<-done

	client.Write([]byte("request"))
	var seen string
	go func() {
		seen = "request sent" // written before the client's write below
		client.Write([]byte("!"))
	}()
	got := 0
	for got < len("request!") {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got += n
	}
	if seen != "request sent" {
		t.Fatalf("seen = %q", seen)
	}
}

func TestNewNotForDatagrams(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "g")
	pc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if New(pc) != nil {
		t.Error("New(a unixgram socket) != nil: an empty datagram would read as EOF")
	}
}
