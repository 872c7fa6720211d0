package embed

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Where a request runs.
//
// Each slot has a PHP thread of its own (loader.c), which keeps its PHP
// context. A request handed to it costs two thread wake-ups (the PHP
// thread's, then the waiting goroutine's through Go's poller), about
// 25 us of CPU on a 2-core VM: more than a "Hello, World!" costs PHP.
// Run inline instead, in a cgo call on the goroutine's own thread, a
// script costs nothing extra while it is short; once it runs longer than
// a tick of Go's sysmon (20 us), the scheduler takes the P away from the
// call and the goroutine must win one back afterwards, which on page.php
// (0.5 ms of PHP) cost 120 us a request and doubled p99. So scripts that
// have run shorter than inlineMax run inline; the others, and scripts
// not seen yet, run on the slot's PHP thread.
const inlineMax = 50 * time.Microsecond

// scriptClockMax bounds the scripts remembered. Reaching it forgets them
// all, to be learnt again: the keys are paths under the release root,
// and every symlink deploy brings a new set.
const scriptClockMax = 4096

// scriptClock keeps a moving average of each script's run time.
type scriptClock struct {
	scripts sync.Map // SCRIPT_FILENAME -> *atomic.Int64 (nanoseconds)
	n       atomic.Int64
}

// lookup returns script's average run time (nanoseconds), nil if the
// script has not run yet. Run looks it up once, for short and observe.
func (c *scriptClock) lookup(script string) *atomic.Int64 {
	v, ok := c.scripts.Load(script)
	if !ok {
		return nil
	}
	return v.(*atomic.Int64)
}

// short reports whether an average from lookup is under inlineMax.
func short(avg *atomic.Int64) bool {
	return avg != nil && time.Duration(avg.Load()) < inlineMax
}

// observe adds one run of script that took d; avg is what lookup gave.
// (An average the bound has just forgotten takes the run harmlessly.)
func (c *scriptClock) observe(script string, avg *atomic.Int64, d time.Duration) {
	if avg == nil {
		if c.n.Load() >= scriptClockMax {
			c.scripts.Clear()
			c.n.Store(0)
		}
		a := new(atomic.Int64)
		a.Store(int64(d))
		v, loaded := c.scripts.LoadOrStore(script, a)
		if !loaded {
			c.n.Add(1)
			return
		}
		avg = v.(*atomic.Int64)
	}
	old := avg.Load()
	avg.Store(old + (int64(d)-old)/8) // races lose an update, no more
}

// maxContexts bounds the PHP contexts kept at rest: the PHP threads'
// (one a slot) and those of the Go threads that run short scripts
// inline. Go runs a request on whichever thread it is on: the threads
// that take turns are about the slots plus GOMAXPROCS (measured: 7
// threads for 4 slots on 2 CPUs under wrk). A context made beyond the
// bound is freed after its request, so that contexts (their memory,
// persistent connections) cannot grow with the threads Go creates.
func maxContexts(workers int) int { return 2*workers + 2*runtime.GOMAXPROCS(0) }
