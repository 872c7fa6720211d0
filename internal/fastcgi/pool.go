package fastcgi

import (
	"context"
	"errors"
	"sync"
	"time"
)

var (
	// ErrPoolExhausted is returned by Get when all MaxSize connections stayed
	// busy for WaitTimeout.
	ErrPoolExhausted = errors.New("fastcgi: all connections busy (pool exhausted)")
	// ErrPoolClosed is returned by Get after Close.
	ErrPoolClosed = errors.New("fastcgi: pool closed")
)

// PoolConfig configures a Pool.
//
// Against PHP-FPM, a kept-open connection holds one FPM child: a connection
// dialed while every child is attached to another one waits in FPM's accept
// backlog. The pool limits the damage (KeepAlive; and Put closes a returned
// connection while a new connection's request waits in the backlog), but a
// MaxSize above pm.max_children (of all clients together) still costs
// reconnects under load.
type PoolConfig struct {
	Network, Address string        // "tcp" "127.0.0.1:9000" or "unix" "/run/php/fpm.sock"
	MaxSize          int           // never more open connections than this (idle + in use + dialing); <= 0: no limit
	MaxIdleTime      time.Duration // idle connections unused for longer are closed (0: never; see also KeepAlive)
	MaxLifetime      time.Duration // connections older than this are closed when returned or taken (0: never)
	ConnectTimeout   time.Duration // dial timeout (0: none besides the context)
	WaitTimeout      time.Duration // how long Get waits for a free slot before ErrPoolExhausted (0: only the context bounds it)

	// KeepAlive is how long a connection returned by Put may stay idle
	// before it is closed, so that an idle client does not keep FPM's
	// children pinned (each kept connection holds one) from other clients
	// or from this pool's own new connections. Together with MaxIdleTime the
	// smaller wins. An idle connection is closed when Get finds it expired,
	// or by the janitor within half of the limit (at most a second) after it
	// expired.
	//
	// 0 means no keep-alive at all: Put closes every connection (a waiting
	// Get then dials with the freed slot), so each request dials. The zero
	// PoolConfig therefore keeps nothing; set it (e.g. 2s) to reuse
	// connections. Negative: no limit of its own, MaxIdleTime alone applies.
	KeepAlive time.Duration
}

// PoolStats is a snapshot of a Pool.
type PoolStats struct {
	Open    int // connections open or being dialed (each holds a slot)
	Idle    int // open and not in use
	InUse   int // Open - Idle: handed out or being dialed
	Dialing int // being dialed
	Waiting int // Gets waiting for a slot

	Dials     uint64 // connections dialed (successfully or not)
	DialFails uint64
	Waits     uint64 // Gets that had to wait
	Timeouts  uint64 // Gets that ended with ErrPoolExhausted
	Dead      uint64 // connections found closed by the server when returned, taken or idle

	// Stray counts connections closed because the server sent something
	// that belongs to no current request: records of an earlier request id
	// (Conn.Tainted; output after fastcgi_finish_request()), or bytes that
	// arrived while the connection was idle.
	Stray uint64
	// Backlog counts kept connections closed, instead of kept idle, to free
	// their FPM child for a request of this pool that waits in FPM's accept
	// backlog (see Pool).
	Backlog uint64
	// Pending is how many requests on new connections are waiting for the
	// first record of their response (those can be in FPM's accept backlog).
	Pending int
}

// Pool keeps connections to one FastCGI server. Get hands out the most recently
// used idle connection after a non-blocking check that the server has neither
// closed it (pm.max_requests) nor sent anything since, else dials a new one
// while below MaxSize, else waits. A janitor goroutine closes idle connections
// past KeepAlive, MaxIdleTime or MaxLifetime, and those the server closed.
//
// Against FPM's accept backlog: a connection's first request can wait in FPM's
// accept queue for as long as all children stay attached to other kept
// connections. While a request on a new connection of this pool has waited for
// the first record of its response for backlogWait (50ms) longer than FPM
// took to answer a whole request on another connection, Put closes that
// connection instead of keeping it (or handing it to a waiting Get), which
// frees its child to accept the next queued one; and a timer does the same to
// idle connections, least recently used first, one for each request that has
// waited that long. Stats counts them as Backlog. (A new connection's first
// script that is much slower than the others looks the same, which only costs
// a reconnect per Put while it runs; one about as slow as the others does not:
// the comparison keeps connections whose requests all take long from
// churning.)
type Pool struct {
	cfg     PoolConfig
	maxIdle time.Duration // idle limit from KeepAlive and MaxIdleTime (0: none)

	mu      sync.Mutex
	idle    []*Conn // stack: most recently returned last
	open    int     // slots held: idle + in use + dialing
	dialing int
	waiters []*waiter // FIFO
	closed  bool
	stats   PoolStats // counters only

	// pending: new connections whose first request awaits the first record
	// of its response (see track); usually empty, as almost all requests
	// run on kept connections.
	pending []*Conn
	// backlogTimer runs backlogCheck; armed (at armedAt) whenever both idle
	// and pending are not empty.
	backlogTimer *time.Timer
	armed        bool
	armedAt      time.Time

	stop chan struct{}
	done chan struct{}
}

// backlogWait is how long a new connection's first request may wait for the
// first record of its response before the pool assumes it waits in FPM's
// accept backlog, and closes returned connections to free a child for it.
// Long enough that fast scripts (a few ms from accept() to their output, which
// FPM sends at the latest when the script ends) never trigger it, so that
// keep-alive is not lost to churn; short enough that a queued request is not
// delayed much beyond the slowest script that holds the child it needs, and
// well under any read timeout. A script that runs longer before its first
// output trips it too: that costs a reconnect per Put while it runs, which is
// small next to such a script's run time.
const backlogWait = 50 * time.Millisecond

type waiter struct{ ch chan grant }

// grant is what a waiter receives: a connection, a slot to dial with (both
// nil), or an error.
type grant struct {
	c   *Conn
	err error
}

// NewPool returns a pool; it dials nothing until Get.
func NewPool(cfg PoolConfig) *Pool {
	p := &Pool{cfg: cfg, maxIdle: idleLimit(cfg), stop: make(chan struct{}), done: make(chan struct{})}
	go p.janitor(janitorInterval(p.maxIdle, cfg.MaxLifetime))
	return p
}

// idleLimit is the smaller of a positive KeepAlive and MaxIdleTime, 0 for none.
func idleLimit(cfg PoolConfig) time.Duration {
	d := max(cfg.MaxIdleTime, 0)
	if cfg.KeepAlive > 0 && (d == 0 || cfg.KeepAlive < d) {
		d = cfg.KeepAlive
	}
	return d
}

// janitorInterval: half the shorter of the idle limit and MaxLifetime, at
// most a second (the janitor also closes idle connections the server closed).
func janitorInterval(maxIdle, maxLifetime time.Duration) time.Duration {
	d := 2 * time.Second
	if maxIdle > 0 {
		d = min(d, maxIdle)
	}
	if maxLifetime > 0 {
		d = min(d, maxLifetime)
	}
	return max(d/2, 10*time.Millisecond)
}

func (p *Pool) expired(c *Conn, now time.Time) bool {
	if p.cfg.MaxLifetime > 0 && now.Sub(c.created) > p.cfg.MaxLifetime {
		return true
	}
	return p.maxIdle > 0 && now.Sub(c.lastUsed) > p.maxIdle
}

// Get returns an idle connection (most recently used first, skipping expired
// and dead ones) or dials a new one if below MaxSize, else waits (bounded by
// WaitTimeout and ctx) for a connection returned by Put or a freed slot.
func (p *Pool) Get(ctx context.Context) (*Conn, error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, ErrPoolClosed
		}
		if n := len(p.idle); n > 0 {
			c := p.idle[n-1]
			p.idle[n-1] = nil
			p.idle = p.idle[:n-1]
			c.inPool = false
			p.mu.Unlock()
			if c, ok := p.check(c); ok {
				return c, nil
			}
			continue
		}
		if p.cfg.MaxSize <= 0 || p.open < p.cfg.MaxSize {
			p.open++
			p.dialing++
			p.mu.Unlock()
			return p.dial(ctx)
		}
		c, err, retry := p.wait(ctx)
		if retry {
			continue
		}
		return c, err
	}
}

// check vets a connection taken from the idle list or handed over by Put.
func (p *Pool) check(c *Conn) (*Conn, bool) {
	if p.expired(c, time.Now()) {
		c.Close()
		return nil, false
	}
	if !p.vet(c) {
		c.Close()
		return nil, false
	}
	return c, true
}

// vet checks that an idle connection is still usable (see Conn.probe) and
// counts it as dead or stray if not.
func (p *Pool) vet(c *Conn) bool {
	switch c.probe() {
	case probeOK:
		return true
	case probeData:
		p.count(&p.stats.Stray)
	default:
		p.count(&p.stats.Dead)
	}
	return false
}

func (p *Pool) count(n *uint64) {
	p.mu.Lock()
	*n++
	p.mu.Unlock()
}

// wait queues for a connection or a slot; p.mu is held on entry and released.
func (p *Pool) wait(ctx context.Context) (c *Conn, err error, retry bool) {
	w := &waiter{ch: make(chan grant, 1)}
	p.waiters = append(p.waiters, w)
	p.stats.Waits++
	p.mu.Unlock()

	var timeout <-chan time.Time
	if p.cfg.WaitTimeout > 0 {
		t := time.NewTimer(p.cfg.WaitTimeout)
		defer t.Stop()
		timeout = t.C
	}
	var g grant
	select {
	case g = <-w.ch:
	case <-timeout:
		if !p.dequeue(w) {
			g = <-w.ch // granted meanwhile: take it
			break
		}
		p.mu.Lock()
		p.stats.Timeouts++
		p.mu.Unlock()
		return nil, ErrPoolExhausted, false
	case <-ctx.Done():
		if !p.dequeue(w) {
			g = <-w.ch
			p.giveBack(g)
		}
		return nil, ctx.Err(), false
	}
	switch {
	case g.err != nil:
		return nil, g.err, false
	case g.c != nil:
		if c, ok := p.check(g.c); ok {
			return c, nil, false
		}
		return nil, nil, true
	default: // a slot: dial with it
		p.mu.Lock()
		p.dialing++
		p.mu.Unlock()
		c, err := p.dial(ctx)
		return c, err, false
	}
}

// dequeue removes w from the waiters; false if it was granted something.
func (p *Pool) dequeue(w *waiter) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, x := range p.waiters {
		if x == w {
			copy(p.waiters[i:], p.waiters[i+1:])
			p.waiters[len(p.waiters)-1] = nil
			p.waiters = p.waiters[:len(p.waiters)-1]
			return true
		}
	}
	return false
}

func (p *Pool) giveBack(g grant) {
	switch {
	case g.err != nil:
	case g.c != nil:
		p.Put(g.c)
	default:
		p.release()
	}
}

// dial opens a connection with a slot already counted in p.open and p.dialing.
func (p *Pool) dial(ctx context.Context) (*Conn, error) {
	c, err := Dial(ctx, p.cfg.Network, p.cfg.Address, p.cfg.ConnectTimeout)
	p.mu.Lock()
	p.dialing--
	p.stats.Dials++
	if err != nil {
		p.stats.DialFails++
		p.mu.Unlock()
		p.release()
		return nil, err
	}
	p.mu.Unlock()
	c.pool = p
	return c, nil
}

// release frees the slot of a closed connection (or of a failed dial): it goes
// to the first waiter, which dials with it.
func (p *Pool) release() {
	p.mu.Lock()
	if len(p.waiters) > 0 && !p.closed {
		w := p.popWaiter()
		p.mu.Unlock()
		w.ch <- grant{}
		return
	}
	p.open--
	p.mu.Unlock()
}

func (p *Pool) popWaiter() *waiter {
	w := p.waiters[0]
	copy(p.waiters, p.waiters[1:])
	p.waiters[len(p.waiters)-1] = nil
	p.waiters = p.waiters[:len(p.waiters)-1]
	return w
}

// Put returns a connection after a complete response (FCGI_END_REQUEST read,
// body writer finished): it goes to a waiting Get, or is kept idle. Put closes
// it instead when it is in any other state, tainted (Conn.Tainted), from
// another pool, past MaxLifetime, when KeepAlive is 0, after Close, or while
// a request on a new connection of this pool seems stuck in FPM's accept
// backlog (see Pool), or when the server's bytes after the response are
// already read. A connection the server closed or half-closed, or sent
// anything more on, is found and closed by the Get that takes it (or the
// janitor). Put clears a deadline set with SetDeadline.
func (p *Pool) Put(c *Conn) {
	if c == nil {
		return
	}
	if c.pool != p {
		c.Close()
		return
	}
	if c.tainted {
		p.count(&p.stats.Stray)
		c.Close()
		return
	}
	if !c.reusable() || p.cfg.KeepAlive == 0 {
		c.Close()
		return
	}
	if c.deadline {
		if err := c.SetDeadline(time.Time{}); err != nil {
			c.Close()
			return
		}
	}
	now := time.Now()
	if p.cfg.MaxLifetime > 0 && now.Sub(c.created) > p.cfg.MaxLifetime {
		c.Close()
		return
	}
	// Output of the request after FCGI_END_REQUEST that came with it (in
	// the read buffer) costs no system call to find. The liveness check on
	// the socket is left to the next Get (or the janitor): one system call
	// a request less, and made later, when a FIN that follows
	// FCGI_END_REQUEST (FPM half-closes a connection after a child's last
	// request, pm.max_requests) has had more time to arrive.
	if c.br.Buffered() > 0 {
		p.count(&p.stats.Stray)
		c.Close()
		return
	}
	c.lastUsed = now
	p.mu.Lock()
	if c.inPool {
		p.mu.Unlock()
		return // returned twice
	}
	if p.closed {
		p.mu.Unlock()
		c.Close()
		return
	}
	c.lastDur = now.Sub(c.sentAt)
	if p.backlogged(now, c.lastDur) {
		// Its child accept()s the next queued connection once we close.
		p.stats.Backlog++
		p.mu.Unlock()
		c.Close()
		return
	}
	if len(p.waiters) > 0 {
		w := p.popWaiter()
		p.mu.Unlock()
		w.ch <- grant{c: c}
		return
	}
	c.inPool = true
	p.idle = append(p.idle, c)
	if len(p.pending) > 0 {
		p.armBacklogCheck()
	}
	p.mu.Unlock()
}

// track registers c, a new connection whose first request was just sent, as
// awaiting the first record of its response; the first record read (or the
// connection's end) calls untrack. Only new connections are tracked: once a
// child answered on a connection, the connection stays with that child, so
// only a first request can wait in FPM's accept backlog. Requests on kept
// connections, almost all of them, never take the lock for this.
func (p *Pool) track(c *Conn) {
	p.mu.Lock()
	// An Abort from another goroutine may have closed c already; a closed
	// connection that slips in is dropped by the next scan (stalePending).
	if !c.closed.Load() && !p.closed {
		c.pendingSince = time.Now()
		c.inPending = true
		p.pending = append(p.pending, c)
		c.awaiting.Store(true)
		if len(p.idle) > 0 {
			// Connections kept idle hold children this request may need.
			p.armBacklogCheck()
		}
	}
	p.mu.Unlock()
}

// untrack removes c from the pending list (called through Conn.untrack).
func (p *Pool) untrack(c *Conn) {
	p.mu.Lock()
	p.dropPending(c)
	p.mu.Unlock()
}

// dropPending removes c from p.pending; p.mu is held.
func (p *Pool) dropPending(c *Conn) {
	if !c.inPending {
		return
	}
	c.inPending = false
	for i, x := range p.pending {
		if x == c {
			last := len(p.pending) - 1
			p.pending[i] = p.pending[last]
			p.pending[last] = nil
			p.pending = p.pending[:last]
			return
		}
	}
}

// stalePending counts the pending requests that have waited longer than
// backlogWait + slack at now, drops closed connections from the list, and
// returns when the next one will have waited that long (zero if none);
// p.mu is held.
func (p *Pool) stalePending(now time.Time, slack time.Duration) (stale int, next time.Time) {
	for i := 0; i < len(p.pending); {
		c := p.pending[i]
		if c.closed.Load() {
			p.dropPending(c) // moves the last one to i
			continue
		}
		if at := c.pendingSince.Add(backlogWait + slack); !now.Before(at) {
			stale++
		} else if next.IsZero() || at.Before(next) {
			next = at
		}
		i++
	}
	return stale, next
}

// backlogged reports whether a pending request waits in FPM's backlog, as
// far as a connection returned at now after a request of dur tells: the
// pending request has waited backlogWait longer than FPM took to answer
// that whole request. A pending request that waited about as long as the
// one just answered proves nothing (both may run on two children, as
// slow); closing then would only churn connections. p.mu is held.
func (p *Pool) backlogged(now time.Time, dur time.Duration) bool {
	if len(p.pending) == 0 {
		return false
	}
	stale, _ := p.stalePending(now, dur)
	return stale > 0
}

// idleSlack is the shortest last request of the idle connections: a
// pending request is taken for stuck in the backlog only once it has
// waited backlogWait longer than that (see backlogged); p.mu is held.
func (p *Pool) idleSlack() time.Duration {
	var d time.Duration
	for i, c := range p.idle {
		if i == 0 || c.lastDur < d {
			d = c.lastDur
		}
	}
	return d
}

// armBacklogCheck makes backlogCheck run when the oldest pending request will
// have waited backlogWait. It is called whenever there are both idle
// connections and pending requests (by Put keeping a connection, by track):
// an idle connection would otherwise keep its child, which a request in FPM's
// backlog may need, until KeepAlive; p.mu is held.
func (p *Pool) armBacklogCheck() {
	now := time.Now()
	stale, at := p.stalePending(now, p.idleSlack())
	if stale > 0 {
		at = now // already due
	}
	if at.IsZero() || (p.armed && !at.Before(p.armedAt)) {
		return
	}
	d := time.Until(at)
	if p.backlogTimer == nil {
		p.backlogTimer = time.AfterFunc(d, p.backlogCheck)
	} else {
		p.backlogTimer.Reset(d)
	}
	p.armed, p.armedAt = true, at
}

// backlogCheck closes as many idle connections (least recently used first) as
// pending requests have waited longer than backlogWait, so that their children
// can accept the queued connections.
func (p *Pool) backlogCheck() {
	p.mu.Lock()
	p.armed = false
	if p.closed {
		p.mu.Unlock()
		return
	}
	stale, _ := p.stalePending(time.Now(), p.idleSlack())
	n := min(stale, len(p.idle))
	victims := make([]*Conn, n)
	copy(victims, p.idle[:n])
	rest := copy(p.idle, p.idle[n:])
	clear(p.idle[rest:])
	p.idle = p.idle[:rest]
	for _, c := range victims {
		c.inPool = false
	}
	p.stats.Backlog += uint64(n)
	if len(p.pending) > stale && len(p.idle) > 0 {
		p.armBacklogCheck()
	}
	p.mu.Unlock()
	for _, c := range victims {
		c.Close()
	}
}

// Stats returns a snapshot of the pool.
func (p *Pool) Stats() PoolStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Open = p.open
	s.Idle = len(p.idle)
	s.InUse = p.open - len(p.idle)
	s.Dialing = p.dialing
	s.Waiting = len(p.waiters)
	s.Pending = len(p.pending)
	return s
}

// Close closes the idle connections and stops the janitor; waiting and later
// Gets fail with ErrPoolClosed; connections in use are closed when Put.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	idle := p.idle
	p.idle = nil
	waiters := p.waiters
	p.waiters = nil
	for _, c := range idle {
		c.inPool = false
	}
	if p.backlogTimer != nil {
		p.backlogTimer.Stop()
	}
	p.mu.Unlock()
	close(p.stop)
	<-p.done
	for _, w := range waiters {
		w.ch <- grant{err: ErrPoolClosed}
	}
	for _, c := range idle {
		c.Close()
	}
	return nil
}

func (p *Pool) janitor(interval time.Duration) {
	defer close(p.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	var victims []*Conn
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			victims = p.reap(now, victims[:0])
			for i, c := range victims {
				c.Close()
				victims[i] = nil
			}
		}
	}
}

// reap removes expired idle connections and those the server closed from the
// list and appends them to victims.
func (p *Pool) reap(now time.Time, victims []*Conn) []*Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	kept := p.idle[:0]
	for _, c := range p.idle {
		dead := false
		switch c.probe() {
		case probeData:
			p.stats.Stray++
			dead = true
		case probeDead:
			p.stats.Dead++
			dead = true
		}
		if dead || p.expired(c, now) {
			c.inPool = false
			victims = append(victims, c)
		} else {
			kept = append(kept, c)
		}
	}
	clear(p.idle[len(kept):])
	p.idle = kept
	return victims
}
