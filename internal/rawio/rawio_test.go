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

	"golang.org/x/sys/unix"
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

func TestFstatat(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f.php")
	if err := os.WriteFile(file, []byte("<?php echo 1;"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("f.php", filepath.Join(dir, "link.php")); err != nil {
		t.Fatal(err)
	}
	var want, got unix.Stat_t
	if err := unix.Stat(file, &want); err != nil {
		t.Fatal(err)
	}
	if err := Fstatat(unix.AT_FDCWD, file, &got, 0); err != nil || got.Ino != want.Ino || got.Mode != want.Mode || got.Size != want.Size {
		t.Fatalf("Fstatat(%s) = %v, ino %d mode %o size %d; want ino %d mode %o size %d",
			file, err, got.Ino, got.Mode, got.Size, want.Ino, want.Mode, want.Size)
	}
	dirfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dirfd)
	got = unix.Stat_t{}
	if err := Fstatat(dirfd, "link.php", &got, 0); err != nil || got.Ino != want.Ino {
		t.Fatalf("Fstatat(dir, link.php) = %v, ino %d; want the link followed to ino %d", err, got.Ino, want.Ino)
	}
	if err := Fstatat(dirfd, "link.php", &got, unix.AT_SYMLINK_NOFOLLOW); err != nil || got.Mode&unix.S_IFMT != unix.S_IFLNK {
		t.Fatalf("Fstatat(dir, link.php, AT_SYMLINK_NOFOLLOW) = %v, mode %o; want the link itself", err, got.Mode)
	}
	if err := Fstatat(dirfd, "missing.php", &got, 0); err != unix.ENOENT {
		t.Fatalf("Fstatat(missing) = %v; want ENOENT", err)
	}
	if err := Fstatat(unix.AT_FDCWD, "a\x00b", &got, 0); err == nil {
		t.Fatal("Fstatat of a path with a NUL byte succeeded")
	}
}

func TestLocalMounts(t *testing.T) {
	const local = `22 28 0:21 / /proc rw,nosuid shared:12 - proc proc rw
28 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 28 0:25 / /dev/shm rw shared:3 - tmpfs tmpfs rw
31 28 0:26 / /mnt/my\040disk rw - xfs /dev/vdb rw
`
	if !localMounts(local) {
		t.Errorf("localMounts(ext4, proc, tmpfs, xfs) = false")
	}
	for _, remote := range []string{
		"40 28 0:50 / /srv/uploads rw,relatime shared:20 - nfs4 fs:/uploads rw,vers=4.2\n",
		"41 28 0:51 / /mnt/share rw - cifs //nas/share rw\n",
		"42 28 0:52 / /mnt/ssh rw - fuse.sshfs me@host: rw\n",
		"43 28 0:53 / /net rw - autofs /etc/auto.net rw\n",
		"44 28 0:54 / /x rw - somethingnew dev rw\n",
	} {
		if localMounts(local + remote) {
			t.Errorf("localMounts with %q = true", remote)
		}
	}
	if localMounts("") || localMounts("garbage without a separator\n") {
		t.Error("localMounts of an empty or malformed mountinfo = true")
	}
	// This machine's own answer, for the log.
	t.Logf("LocalFS() here: %v", LocalFS())
}
