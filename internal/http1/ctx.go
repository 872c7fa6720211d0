package http1

import (
	"context"
	"sync/atomic"
	"time"
)

// watchAfter is how long a request runs before asking its context's
// error starts watching the connection for the client's leaving. Waiting
// on the context (Done, context.AfterFunc) starts it at once.
const watchAfter = time.Millisecond

// reqCtx is a request's context: net/http's, cancelled when the client
// leaves, when writing to it fails, or when the handler returns; but the
// read that notices the client leaving starts only once someone cares
// (see watchAfter), not for every request.
type reqCtx struct {
	context.Context // a cancelCtx of the connection's values
	stop            context.CancelFunc
	c               *conn
	start           time.Time
	watching        atomic.Bool
	live            bool // the handler runs; under c.r.mu
}

func newReqCtx(c *conn) *reqCtx {
	ctx, stop := context.WithCancel(c.base)
	return &reqCtx{Context: ctx, stop: stop, c: c, start: time.Now(), live: true}
}

// Done starts the watch: whoever waits for the end wants to hear of the
// client leaving.
func (x *reqCtx) Done() <-chan struct{} {
	x.watch()
	return x.Context.Done()
}

func (x *reqCtx) Err() error {
	if !x.watching.Load() && time.Since(x.start) >= watchAfter {
		x.watch()
	}
	return x.Context.Err()
}

func (x *reqCtx) watch() {
	if x.watching.CompareAndSwap(false, true) {
		x.c.r.startWatch(x)
	}
}

func (x *reqCtx) cancel() { x.stop() }

// end is the handler's return: no watch starts any more, and the context
// is cancelled, as net/http's.
func (x *reqCtx) end() {
	x.c.r.mu.Lock()
	x.live = false
	x.c.r.mu.Unlock()
	x.stop()
}
