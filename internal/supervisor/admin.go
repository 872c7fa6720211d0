package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/fe-php/fe-php/internal/metrics"
)

// The supervisor answers the admin listener for the whole server:
// /healthz itself, /readyz and /metrics from what its workers say on
// their private control sockets, their metrics summed (metrics.Merge).

// stats are the supervisor's own counters.
type stats struct {
	crashes      atomic.Uint64
	reloadOK     atomic.Uint64
	reloadFailed atomic.Uint64
}

func (st *stats) reloads(ok bool) {
	if ok {
		st.reloadOK.Add(1)
	} else {
		st.reloadFailed.Add(1)
	}
}

// newAdmin is the admin listener's server.
func (s *Supervisor) newAdmin() *http.Server {
	mux := http.NewServeMux()
	gatherers := prometheus.Gatherers{s.registry(), prometheus.GathererFunc(s.gatherWorkers)}
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherers, promhttp.HandlerOpts{
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
		if why := s.notReady(r.Context()); why != "" {
			plain(w, http.StatusServiceUnavailable, why)
			return
		}
		plain(w, http.StatusOK, "ok")
	})
	return &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

func plain(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprintln(w, msg)
}

// registry holds the supervisor's own metrics.
func (s *Supervisor) registry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "fe_php_workers",
			Help: "Worker processes serving the current configuration."},
			func() float64 { return float64(len(s.currentWorkers())) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "fe_php_worker_crashes_total",
			Help: "Worker processes that died unasked (a crash, a kill, the OOM killer) and were replaced."},
			func() float64 { return float64(s.stats.crashes.Load()) }),
	)
	reloads := prometheus.NewDesc("fe_php_config_reloads_total",
		"Configuration reloads (SIGHUP, fe-php reload), by result: ok, or failed (the old configuration kept serving).",
		[]string{"result"}, nil)
	reg.MustRegister(collectorFunc{reloads, func(ch chan<- prometheus.Metric) {
		ch <- prometheus.MustNewConstMetric(reloads, prometheus.CounterValue, float64(s.stats.reloadOK.Load()), "ok")
		ch <- prometheus.MustNewConstMetric(reloads, prometheus.CounterValue, float64(s.stats.reloadFailed.Load()), "failed")
	}})
	return reg
}

type collectorFunc struct {
	desc    *prometheus.Desc
	collect func(chan<- prometheus.Metric)
}

func (c collectorFunc) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }
func (c collectorFunc) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }

// currentWorkers are the serving workers of the current generation.
func (s *Supervisor) currentWorkers() []*worker {
	g := s.current()
	var ws []*worker
	for _, w := range s.liveWorkers() {
		if w.gen == g {
			ws = append(ws, w)
		}
	}
	return ws
}

// gatherWorkers gathers every serving worker's metrics (of any
// generation: a draining one still counts its requests) and sums them.
func (s *Supervisor) gatherWorkers() ([]*dto.MetricFamily, error) {
	ws := s.liveWorkers()
	sets := make([][]*dto.MetricFamily, len(ws))
	errs := make([]error, len(ws))
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Go(func() { sets[i], errs[i] = w.metrics() })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil && !ws[i].exited() {
			s.log.Warn("cannot read a worker's metrics", slog.Int("pid", ws[i].pid), slog.Any("error", err))
		}
	}
	return metrics.Merge(sets...), nil
}

// metrics reads the worker's metric families.
func (w *worker) metrics() ([]*dto.MetricFamily, error) {
	req, err := http.NewRequest("GET", "http://worker/metrics", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", string(expfmt.NewFormat(expfmt.TypeProtoDelim)))
	resp, err := w.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	dec := expfmt.NewDecoder(resp.Body, expfmt.ResponseFormat(resp.Header))
	var mfs []*dto.MetricFamily
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); err != nil {
			if errors.Is(err, io.EOF) {
				return mfs, nil
			}
			return mfs, err
		}
		mfs = append(mfs, mf)
	}
}

// notReady says why fe-php should not get new traffic now ("" if it
// should): it is draining, no worker serves, or no worker is ready (each
// says why: its PHP slots and queue are full, or an FPM pool's breaker is
// open). One ready worker is enough: the others' connections go to it.
func (s *Supervisor) notReady(ctx context.Context) string {
	if s.draining.Load() {
		return "draining: shutting down"
	}
	ws := s.currentWorkers()
	if len(ws) == 0 {
		return "no worker serves (starting, or being replaced)"
	}
	// All asked at once: a stalled worker (stopped, swapping, stuck)
	// must not hold up the answer past a probe's timeout when another
	// one is ready.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	answers := make(chan string, len(ws))
	for _, w := range ws {
		go func() {
			why, err := w.readiness(ctx)
			if err != nil {
				why = err.Error()
			}
			if why != "" {
				why = fmt.Sprintf("worker %d: %s", w.pid, why)
			}
			answers <- why
		}()
	}
	var whys []string
	for range ws {
		why := <-answers
		if why == "" {
			return ""
		}
		whys = append(whys, why)
	}
	slices.Sort(whys)
	return strings.Join(whys, "; ")
}

// readiness asks the worker's /readyz: "" when ready, else its reason.
func (w *worker) readiness(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://worker/readyz", nil)
	if err != nil {
		return "", err
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if err != nil {
		return "", err
	}
	if resp.StatusCode == http.StatusOK {
		return "", nil
	}
	return strings.TrimSpace(string(body)), nil
}
