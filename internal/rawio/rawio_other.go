//go:build !(linux && (amd64 || arm64))

package rawio

import (
	"errors"
	"net"
)

// Conn is for Linux on amd64 and arm64; New returns nil elsewhere, and
// callers use the net.Conn.
type Conn struct{}

// New returns nil: raw socket calls are used on Linux (amd64, arm64) only.
func New(net.Conn) *Conn { return nil }

var errUnsupported = errors.New("rawio: not supported on this system")

// Read is never called: New returns nil.
func (*Conn) Read([]byte) (int, error) { return 0, errUnsupported }

// Write is never called: New returns nil.
func (*Conn) Write([]byte) (int, error) { return 0, errUnsupported }

// Writev is never called: New returns nil.
func (*Conn) Writev(_, _ []byte) (int, error) { return 0, errUnsupported }

// Peek is never called: New returns nil.
func (*Conn) Peek() (int, error) { return 0, errUnsupported }
