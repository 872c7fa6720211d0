package server

import (
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

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

// adminHandler serves the admin listener.
func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.Registry, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
		// A slow scrape must not pile up: Prometheus retries at the next
		// interval anyway.
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		plain(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if why := s.notReady(); why != "" {
			plain(w, http.StatusServiceUnavailable, why)
			return
		}
		plain(w, http.StatusOK, "ok")
	})
	return mux
}

func plain(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprintln(w, msg)
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

// newAdmin is the admin listener's server.
func (s *Server) newAdmin() *http.Server {
	return &http.Server{
		Handler:           s.adminHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}
