package phpreq

import (
	"fmt"
	"log/slog"
)

// Fault says whose fault a failed PHP request is. It decides the log
// level, and what may count against PHP-FPM's circuit breaker (only
// FaultUpstream).
type Fault int

const (
	// FaultClient: the client sent something unusable, was too slow, or
	// went away. Logged at debug level; never counts against FPM.
	FaultClient Fault = iota + 1
	// FaultPHP: the script's own doing (an invalid status or header, a
	// crash of its PHP context). PHP answered; its transport is fine.
	FaultPHP
	// FaultUpstream: PHP could not be reached or stopped answering
	// (refused, reset, timed out, a broken FastCGI stream).
	FaultUpstream
	// FaultCapacity: no PHP worker or connection free in time, or the
	// circuit breaker open. Answered 503 with Retry-After.
	FaultCapacity
)

var faultNames = [...]string{FaultClient: "client", FaultPHP: "php", FaultUpstream: "upstream", FaultCapacity: "capacity"}

func (f Fault) String() string {
	if f > 0 && int(f) < len(faultNames) {
		return faultNames[f]
	}
	return fmt.Sprintf("Fault(%d)", int(f))
}

// Error is a failed PHP request: the status the client gets when no
// response has started yet, and whose fault it was.
type Error struct {
	Status int
	Fault  Fault
	Err    error
	// RetryAfter, when set, is sent as Retry-After with the status.
	RetryAfter string
	// Quiet logs the failure at debug level only: one of many alike whose
	// cause is logged once elsewhere (refused while the circuit breaker
	// is open: the breaker logs its change of state).
	Quiet bool
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// level is the log level of a failure of this fault.
func (f Fault) level() slog.Level {
	switch f {
	case FaultClient:
		return slog.LevelDebug
	case FaultPHP, FaultCapacity:
		return slog.LevelWarn
	}
	return slog.LevelError
}
