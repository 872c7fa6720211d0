package server

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"
)

// freshConns are the connections an http.Server accepted that have not
// sent their first request yet. net/http's Shutdown answers no request it
// reads after shutdown began: it closes the connection instead, and on a
// connection that never had a response the client cannot tell that the
// request did not run, so it does not retry it (TestReloadUnderLoad lost
// one in 1 of 10 to 20 runs). So shutdown first stops accepting, then gives these
// connections a moment to present their request, and only then calls
// Shutdown, which lets the requests it finds running finish.
//
// The hook runs at every request's start and end: a connection that has
// left StateNew costs a miss in a sync.Map, not a turn at a mutex every
// connection shares.
type freshConns struct {
	conns sync.Map // net.Conn -> struct{}
}

// track is the server's ConnState hook.
func (f *freshConns) track(c net.Conn, st http.ConnState) {
	if st == http.StateNew {
		f.conns.Store(c, struct{}{})
		return
	}
	f.conns.Delete(c)
}

func (f *freshConns) len() int {
	n := 0
	f.conns.Range(func(any, any) bool { n++; return true })
	return n
}

// freshWait bounds the wait for fresh connections' first requests: a
// client that connected and sends nothing for this long gets the close.
const freshWait = time.Second

// acceptor is an HTTP server's listener, its fresh connections, and a
// channel closed when its Serve has returned.
type acceptor struct {
	ln     net.Listener
	fresh  *freshConns
	served <-chan struct{}
}

// stopAccepting closes the listeners, waits for their Serve loops to
// return (a connection accepted just before the close is in its server's
// StateNew by then), then until every fresh connection has presented its
// request (or freshWait, or ctx, is over).
func stopAccepting(ctx context.Context, as []acceptor) {
	for _, a := range as {
		a.ln.Close() // Serve returns; Shutdown's close of it again is harmless
	}
	for _, a := range as {
		select {
		case <-a.served:
		case <-ctx.Done():
			return
		}
	}
	deadline := time.Now().Add(freshWait)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		n := 0
		for _, a := range as {
			n += a.fresh.len()
		}
		if n == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}
