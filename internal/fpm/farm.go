package fpm

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/fe-php/fe-php/internal/config"
	"github.com/fe-php/fe-php/internal/fastcgi"
	"github.com/fe-php/fe-php/internal/phpreq"
)

// Balancing policies.
const (
	balanceLeastConn = iota
	balanceRoundRobin
	balanceClientHash
)

func balanceOf(s string) int {
	switch s {
	case config.BalanceRoundRobin:
		return balanceRoundRobin
	case config.BalanceClientHash:
		return balanceClientHash
	}
	return balanceLeastConn
}

// inRotation reports whether the upstream gets new requests: its breaker
// is not open (a half-open one takes its trial requests) and it did not
// fail its last active health check.
func (u *Upstream) inRotation() bool {
	if u.down.Load() {
		return false
	}
	return u.breaker == nil || u.breaker.State() != gobreaker.StateOpen
}

// pick is the index of the upstream req goes to first. Upstreams out of
// rotation are passed over; when every one is, the policy's choice is
// tried all the same (its breaker answers 503, or a connection is tried).
func (b *Backend) pick(req *phpreq.Request) int {
	n := len(b.ups)
	switch b.balance {
	case balanceClientHash:
		// The client's upstream while it is in rotation, else the next
		// one in order: the other clients keep theirs.
		h := clientHash(req.HTTP.RemoteAddr)
		return b.firstInRotation(int(h % uint64(n)))
	case balanceRoundRobin:
		return b.firstInRotation(int(b.next.Add(1) % uint64(n)))
	}
	// Least connections; ties go round robin, so that sequential
	// requests spread too.
	start := int(b.next.Add(1) % uint64(n))
	best, bestN := -1, int64(0)
	for i := range n {
		j := (start + i) % n
		u := b.ups[j]
		if !u.inRotation() {
			continue
		}
		if c := u.inflight.Load(); best < 0 || c < bestN {
			best, bestN = j, c
		}
	}
	if best < 0 {
		return start
	}
	return best
}

// firstInRotation is the first upstream in rotation from i on, or i.
func (b *Backend) firstInRotation(i int) int {
	n := len(b.ups)
	for k := range n {
		if j := (i + k) % n; b.ups[j].inRotation() {
			return j
		}
	}
	return i
}

// clientHash is FNV-1a of the client's address without its port.
func clientHash(remote string) uint64 {
	host := remote
	if i := strings.LastIndexByte(remote, ':'); i >= 0 && strings.IndexByte(remote[i:], ']') < 0 {
		host = remote[:i]
	}
	h := uint64(14695981039346656037)
	for i := 0; i < len(host); i++ {
		h ^= uint64(host[i])
		h *= 1099511628211
	}
	return h
}

// startHealthChecks runs one active check loop per upstream.
func (b *Backend) startHealthChecks() {
	for _, u := range b.ups {
		b.checks.Go(func() {
			t := time.NewTicker(b.opts.HealthCheckInterval)
			defer t.Stop()
			for {
				b.healthCheck(u)
				select {
				case <-b.stop:
					return
				case <-t.C:
				}
			}
		})
	}
}

// healthCheck checks u once and logs a change of its state.
func (b *Backend) healthCheck(u *Upstream) {
	err := b.ping(u)
	switch {
	case err != nil && !u.down.Swap(true):
		b.log.Warn("fastcgi upstream failed its health check: out of rotation", b.poolAttr(),
			slog.String("fpm", u.where), slog.String("path", b.opts.HealthCheckPath), slog.Any("error", err))
	case err == nil && u.down.Swap(false):
		b.log.Warn("fastcgi upstream passed its health check: back in rotation", b.poolAttr(),
			slog.String("fpm", u.where))
	}
}

// ping sends the health check request on a connection of its own (never
// one of the pool's): GET on HealthCheckPath, as FPM's ping.path expects.
// It passes when FPM answers "pong" (ping.response) or status 200.
func (b *Backend) ping(u *Upstream) error {
	wait := min(b.opts.HealthCheckInterval, b.opts.ReadTimeout)
	wait = max(wait, time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	go func() { // Close stops a check under way
		select {
		case <-b.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	conn, err := fastcgi.Dial(ctx, u.network, u.addr, wait)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(wait))
	path := b.opts.HealthCheckPath
	params := func(yield func(string, string) bool) {
		for _, kv := range [...][2]string{
			{"GATEWAY_INTERFACE", "CGI/1.1"}, {"SERVER_PROTOCOL", "HTTP/1.1"}, {"REQUEST_METHOD", "GET"},
			{"SCRIPT_NAME", path}, {"SCRIPT_FILENAME", path}, {"REQUEST_URI", path}, {"DOCUMENT_URI", path},
			{"QUERY_STRING", ""}, {"SERVER_SOFTWARE", "fe-php health check"}, {"REMOTE_ADDR", "127.0.0.1"},
		} {
			if !yield(kv[0], kv[1]) {
				return
			}
		}
	}
	resp, err := conn.Do(&fastcgi.Request{Params: params})
	if err != nil {
		return err
	}
	data, err := io.ReadAll(io.LimitReader(resp, 64<<10))
	if err != nil {
		return err
	}
	head, body := data, []byte(nil)
	if i, j := findHeadEnd(data); i >= 0 {
		head, body = data[:i], data[j:]
	}
	if string(bytes.TrimSpace(body)) == "pong" {
		return nil
	}
	status := "200"
	for line := range strings.SplitSeq(string(head), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "Status") {
			status, _, _ = strings.Cut(strings.TrimSpace(v), " ")
		}
	}
	if status != "200" {
		return fmt.Errorf("%s answered status %s (is FPM's ping.path set to it?)", path, status)
	}
	return nil
}
