//go:build !linux

package rawio

import (
	"errors"
	"net"
)

// Conn is Linux-only; New returns nil elsewhere, and callers use the
// net.Conn.
type Conn struct{}

// New returns nil: raw socket calls are used on Linux only.
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
