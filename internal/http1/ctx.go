package http1

import (
	"context"
	"sync/atomic"
	"time"
)

// watchAfter is how long a request runs before the read that notices
// its client leaving starts, once someone cares (Done, Err,
// context.AfterFunc): most requests end sooner, and never pay for it.
// The watch costs two goroutines and their wake-ups; at 1 ms, a server
// whose requests queue for a FastCGI connection or a PHP slot paid that
// for nearly every request (page.php on fastcgi, 32 clients: 1.5-3
// context switches and 60-90 us of CPU a request, bench/README.md
// "session 12"). 50 ms is still well under anything a client that left
// would notice.
const watchAfter = 50 * time.Millisecond

// reqCtx is a request's context: net/http's, cancelled when the client
// leaves, when writing to it fails, or when the handler returns; but the
// read that notices the client leaving runs only for requests that last
// (see watchAfter) and whose context somebody looks at.
type reqCtx struct {
	context.Context // a cancelCtx of the connection's values
	stop            context.CancelFunc
	c               *conn
	start           time.Time
	watching        atomic.Bool
	live            bool        // the handler runs; under c.r.mu
	timer           *time.Timer // starts the watch; under c.r.mu
}

func newReqCtx(c *conn) *reqCtx {
	ctx, stop := context.WithCancel(c.base)
	return &reqCtx{Context: ctx, stop: stop, c: c, start: time.Now(), live: true}
}

// Done arranges the watch: whoever waits for the end wants to hear of the
// client leaving.
func (x *reqCtx) Done() <-chan struct{} {
	x.watchSoon()
	return x.Context.Done()
}

func (x *reqCtx) Err() error {
	if !x.watching.Load() && time.Since(x.start) >= watchAfter {
		x.watchSoon()
	}
	return x.Context.Err()
}

// watchSoon starts the watch watchAfter into the request, once.
func (x *reqCtx) watchSoon() {
	if !x.watching.CompareAndSwap(false, true) {
		return
	}
	cr := &x.c.r
	wait := watchAfter - time.Since(x.start)
	if wait <= 0 {
		cr.startWatch(x)
		return
	}
	cr.mu.Lock()
	if x.live {
		x.timer = time.AfterFunc(wait, func() { cr.startWatch(x) })
	}
	cr.mu.Unlock()
}

func (x *reqCtx) cancel() { x.stop() }

// end is the handler's return: no watch starts any more, and the context
// is cancelled, as net/http's.
func (x *reqCtx) end() {
	cr := &x.c.r
	cr.mu.Lock()
	x.live = false
	t := x.timer
	x.timer = nil
	cr.mu.Unlock()
	if t != nil {
		t.Stop()
	}
	x.stop()
}
