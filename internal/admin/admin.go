// Package admin is the HTTP side of the admin listener ([admin] listen):
// /metrics from a Prometheus gatherer, /healthz, and /readyz from a
// readiness function, and with [admin] pprof Go's profiles. A worker
// serves it for itself on a private socket, the supervisor for the whole
// server.
package admin

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves /metrics (what metrics gathers), /healthz (200 while the
// process answers) and /readyz (200, or 503 with the reason notReady
// gives when it gives one; ctx ends with the probe's request).
func Handler(metrics prometheus.Gatherer, notReady func(ctx context.Context) string, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(metrics, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
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
		if why := notReady(r.Context()); why != "" {
			plain(w, http.StatusServiceUnavailable, why)
			return
		}
		plain(w, http.StatusOK, "ok")
	})
	return mux
}

// PProfPrefix is where PProf serves the profiles.
const PProfPrefix = "/debug/pprof/"

// PProf serves Go's profiles of this process under PProfPrefix
// (net/http/pprof: the index, profile, trace, heap, goroutine...), and
// passes every other request to next.
func PProf(next http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", next)
	mux.HandleFunc("GET "+PProfPrefix, pprof.Index) // and the named profiles below it
	mux.HandleFunc("GET "+PProfPrefix+"cmdline", pprof.Cmdline)
	mux.HandleFunc("GET "+PProfPrefix+"profile", pprof.Profile)
	mux.HandleFunc("GET "+PProfPrefix+"symbol", pprof.Symbol)
	mux.HandleFunc("POST "+PProfPrefix+"symbol", pprof.Symbol) // go tool pprof's lookups
	mux.HandleFunc("GET "+PProfPrefix+"trace", pprof.Trace)
	return mux
}

func plain(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprintln(w, msg)
}

// NewServer is the admin listener's http.Server for h, with its own
// modest limits: it is for probes and scrapes, not for the public.
func NewServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}
