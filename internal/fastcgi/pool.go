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
// Against PHP-FPM, MaxSize must not exceed pm.max_children: a kept-open
// connection holds one FPM child, so a connection dialed beyond the children
// is accepted by the kernel but never served while the others stay open.
type PoolConfig struct {
	Network, Address string        // "tcp" "127.0.0.1:9000" or "unix" "/run/php/fpm.sock"
	MaxSize          int           // never more open connections than this (idle + in use + dialing); <= 0: no limit
	MaxIdleTime      time.Duration // idle connections unused for longer are closed (0: never)
	MaxLifetime      time.Duration // connections older than this are closed when returned or taken (0: never)
	ConnectTimeout   time.Duration // dial timeout (0: none besides the context)
	WaitTimeout      time.Duration // how long Get waits for a free slot before ErrPoolExhausted (0: only the context bounds it)
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
	Dead      uint64 // connections found closed by the server when returned or taken
}

// Pool keeps connections to one FastCGI server. Get hands out the most recently
// used idle connection after a non-blocking check that the server has not
// closed it since (pm.max_requests), else dials a new one while below MaxSize,
// else waits. A janitor goroutine closes idle connections past MaxIdleTime or
// MaxLifetime, and those the server closed.
type Pool struct {
	cfg PoolConfig

	mu      sync.Mutex
	idle    []*Conn // stack: most recently returned last
	open    int     // slots held: idle + in use + dialing
	dialing int
	waiters []*waiter // FIFO
	closed  bool
	stats   PoolStats // counters only

	stop chan struct{}
	done chan struct{}
}

type waiter struct{ ch chan grant }

// grant is what a waiter receives: a connection, a slot to dial with (both
// nil), or an error.
type grant struct {
	c   *Conn
	err error
}

// NewPool returns a pool; it dials nothing until Get.
func NewPool(cfg PoolConfig) *Pool {
	p := &Pool{cfg: cfg, stop: make(chan struct{}), done: make(chan struct{})}
	go p.janitor(janitorInterval(cfg))
	return p
}

// janitorInterval: half the shorter of MaxIdleTime and MaxLifetime, at most
// a second (the janitor also closes idle connections the server closed).
func janitorInterval(cfg PoolConfig) time.Duration {
	d := 2 * time.Second
	if cfg.MaxIdleTime > 0 {
		d = min(d, cfg.MaxIdleTime)
	}
	if cfg.MaxLifetime > 0 {
		d = min(d, cfg.MaxLifetime)
	}
	return max(d/2, 10*time.Millisecond)
}

func (p *Pool) expired(c *Conn, now time.Time) bool {
	if p.cfg.MaxLifetime > 0 && now.Sub(c.created) > p.cfg.MaxLifetime {
		return true
	}
	return p.cfg.MaxIdleTime > 0 && now.Sub(c.lastUsed) > p.cfg.MaxIdleTime
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
	if !c.alive() {
		p.countDead()
		c.Close()
		return nil, false
	}
	return c, true
}

func (p *Pool) countDead() {
	p.mu.Lock()
	p.stats.Dead++
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
// body writer finished). A connection in any other state, from another pool,
// past MaxLifetime, or returned after Close is closed instead. Put clears a
// deadline set with SetDeadline.
func (p *Pool) Put(c *Conn) {
	if c == nil {
		return
	}
	if c.pool != p || !c.reusable() {
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
	// FPM half-closes a connection after a child's last request
	// (pm.max_requests) and the child exits only once we close ours.
	if !c.alive() {
		p.countDead()
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
	if len(p.waiters) > 0 {
		w := p.popWaiter()
		p.mu.Unlock()
		w.ch <- grant{c: c}
		return
	}
	c.inPool = true
	p.idle = append(p.idle, c)
	p.mu.Unlock()
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
		dead := !c.alive()
		if dead {
			p.stats.Dead++
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
