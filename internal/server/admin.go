package server

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/fe-php/fe-php/internal/admin"
	"github.com/fe-php/fe-php/internal/fpm"
	"github.com/fe-php/fe-php/internal/version"
)

// The admin listener ([admin] listen) serves /metrics (Prometheus),
// /healthz (liveness) and /readyz (readiness) on its own http.Server,
// apart from the public listeners: it keeps answering while they drain.

// instrument gives every route its metric children and registers the
// backends' gauges and counters; nothing without the admin listener.
func (s *Server) instrument() {
	m := s.metrics
	if m == nil {
		return
	}
	for i := range s.routes {
		rt := &s.routes[i]
		rt.metrics = m.Route(rt.backend, strconv.Itoa(rt.rule))
	}
	s.fallback.metrics = m.Route(s.fallback.backend, "default")
	s.early.metrics = m.Route("none", "none")

	php := ""
	if b := s.embedded; b != nil {
		php = b.PHPVersion()
		m.Embedded(b.Slots)
		m.EmbeddedContexts(b.Contexts)
	}
	m.BuildInfo(version.Version, php)
	for _, p := range s.fpmPools {
		for _, u := range p.backend.Upstreams() {
			m.FastCGI(u.Address(), u.Stats, u.BreakerState)
		}
	}
	if len(s.statics) > 0 {
		statics := s.statics
		m.StaticCache(func() (hits, misses uint64) {
			for _, h := range statics {
				hs, ms := h.CacheStats()
				hits, misses = hits+hs, misses+ms
			}
			return hits, misses
		})
	}
	if len(s.outputs) > 0 {
		m.RequestBodySpool(s.bodies.Spooled)
		spooled := map[string]func() int64{}
		for backend, o := range s.outputs {
			spooled[backend] = o.Spooled
		}
		m.ResponseSpool(spooled)
	}
}

// notReady says why fe-php should not get new traffic now, "" if it
// should: it is draining (SIGTERM), the embedded backend's queue is
// longer than its slots (every slot busy and more than worker_pool_size
// requests waiting: a new request would wait at least two scripts' time),
// or the fastcgi circuit breaker is open on every upstream of an FPM pool
// (that pool's requests get 503).
func (s *Server) notReady() string {
	if s.draining.Load() {
		return "draining: shutting down"
	}
	if b := s.embedded; b != nil {
		if busy, total, waiting := b.Slots(); busy >= total && waiting > total {
			return fmt.Sprintf("embedded: all %d PHP slots busy, %d requests waiting", total, waiting)
		}
	}
	for _, p := range s.fpmPools {
		if on, state, _ := p.backend.BreakerState(); on && state == fpm.BreakerOpen {
			if p.name != "" {
				return "fastcgi: circuit breaker open on every upstream of FPM pool " + p.name + " (PHP-FPM " + p.backend.Address() + ")"
			}
			return "fastcgi: circuit breaker open (PHP-FPM " + p.backend.Address() + ")"
		}
	}
	return ""
}

// newAdmin is the admin listener's server (in a worker, the private
// socket its supervisor asks).
func (s *Server) newAdmin() *http.Server {
	notReady := func(context.Context) string { return s.notReady() }
	h := admin.Handler(s.metrics.Registry, notReady, s.log)
	if s.cfg.Admin.PProf {
		h = admin.PProf(h)
	}
	return admin.NewServer(h, s.log)
}
