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
// (0.5 ms of PHP) cost 120 us a request and doubled p99. So a script runs
// inline when at least a quarter of its recent runs (a moving share,
// weighing about the last eight) were shorter than inlineMax; the others,
// and scripts not seen yet, run on the slot's PHP thread.
//
// A share of short runs, not the average: a run's wall time counts the time
// the kernel gave its CPU to another thread, which only ever adds. On a
// busy 2-core AMD EPYC VM (system calls of about 3 us) a "Hello, World!"
// ran 20-60 us, some runs 160: its average sat on inlineMax and sent it
// to the PHP threads most of the time, at 0.7x the throughput of running
// it inline. A page of 15 table rows ran 150-400 us there, never under
// inlineMax, and stays on the threads, where it is faster.
const inlineMax = 50 * time.Microsecond

// scriptClockMax bounds the scripts remembered. Reaching it forgets them
// all, to be learnt again: the keys are paths under the release root,
// and every symlink deploy brings a new set.
const scriptClockMax = 4096

// shortOne is the share of a script's runs that were short when all were
// (fixed point).
const shortOne = 1 << 16

// scriptClock keeps, for each script, a moving average of how often its
// runs are shorter than inlineMax.
type scriptClock struct {
	scripts sync.Map // SCRIPT_FILENAME -> *atomic.Int64 (share of short runs, of shortOne)
	n       atomic.Int64
}

// lookup returns script's share of short runs, nil if the script has not
// run yet. Run looks it up once, for short and observe.
func (c *scriptClock) lookup(script string) *atomic.Int64 {
	v, ok := c.scripts.Load(script)
	if !ok {
		return nil
	}
	return v.(*atomic.Int64)
}

// short reports whether a share from lookup is at least a quarter.
func short(share *atomic.Int64) bool {
	return share != nil && share.Load() >= shortOne/4
}

// observe adds one run of script that took d; share is what lookup gave.
// (A share the bound has just forgotten takes the run harmlessly.)
func (c *scriptClock) observe(script string, share *atomic.Int64, d time.Duration) {
	var was int64
	if d < inlineMax {
		was = shortOne
	}
	if share == nil {
		if c.n.Load() >= scriptClockMax {
			c.scripts.Clear()
			c.n.Store(0)
		}
		a := new(atomic.Int64)
		a.Store(was)
		v, loaded := c.scripts.LoadOrStore(script, a)
		if !loaded {
			c.n.Add(1)
			return
		}
		share = v.(*atomic.Int64)
	}
	old := share.Load()
	share.Store(old + (was-old)/8) // races lose an update, no more
}

// maxContexts bounds the PHP contexts kept at rest: the PHP threads'
// (one a slot) and those of the Go threads that run short scripts
// inline. Go runs a request on whichever thread it is on: the threads
// that take turns are about the slots plus GOMAXPROCS (measured: 7
// threads for 4 slots on 2 CPUs under wrk). A context made beyond the
// bound is freed after its request, so that contexts (their memory,
// persistent connections) cannot grow with the threads Go creates.
func maxContexts(workers int) int { return 2*workers + 2*runtime.GOMAXPROCS(0) }
