package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/fe-php/fe-php/internal/admin"
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

// newAdmin is the admin listener's server. Profiles (/debug/pprof/) are
// a worker's, where requests run: they go to the current generation's
// worker the "worker" parameter names by its pid, else to one of them.
// The worker answers them only with [admin] pprof on (404 otherwise), so
// a reload turns them on and off.
func (s *Supervisor) newAdmin() *http.Server {
	gatherers := prometheus.Gatherers{s.registry(), prometheus.GathererFunc(s.gatherWorkers)}
	mux := http.NewServeMux()
	mux.Handle("/", admin.Handler(gatherers, s.notReady, s.log))
	mux.HandleFunc(admin.PProfPrefix, s.proxyPProf) // every method: the worker's routes decide
	return admin.NewServer(mux, s.log)
}

// pprofMaxSeconds bounds a profile's or a trace's length.
const pprofMaxSeconds = 600

// pprofDuration is how long the worker will take over a profile request
// before it answers: its "seconds", or net/http/pprof's default for the
// path (30 s for a CPU profile, 1 s for a trace, none for the others).
func pprofDuration(r *http.Request) (time.Duration, error) {
	sec := 0.0
	switch {
	case strings.HasSuffix(r.URL.Path, "/profile"):
		sec = 30
	case strings.HasSuffix(r.URL.Path, "/trace"):
		sec = 1
	}
	if v := r.URL.Query().Get("seconds"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || f > pprofMaxSeconds {
			return 0, fmt.Errorf("seconds=%q: want a number of seconds from 0 to %d", v, pprofMaxSeconds)
		}
		sec = f
	}
	return time.Duration(sec * float64(time.Second)), nil
}

// proxyPProf passes a profile request to a worker's private socket.
func (s *Supervisor) proxyPProf(w http.ResponseWriter, r *http.Request) {
	d, err := pprofDuration(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ws := s.currentWorkers()
	var to *worker
	if pid := r.URL.Query().Get("worker"); pid != "" {
		for _, x := range ws {
			if strconv.Itoa(x.pid) == pid {
				to = x
			}
		}
	} else if len(ws) > 0 {
		to = ws[0]
	}
	if to == nil || to.client == nil {
		var pids []string
		for _, x := range ws {
			pids = append(pids, strconv.Itoa(x.pid))
		}
		http.Error(w, "no such worker; the current ones: "+strings.Join(pids, " "), http.StatusNotFound)
		return
	}
	// The admin listener's write timeout runs from the request's start: a
	// profile takes its seconds on top, as net/http/pprof allows the
	// worker. A worker that never answers is given up on after that too.
	budget := d + 30*time.Second
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(budget))
	ctx, cancel := context.WithTimeout(r.Context(), budget)
	defer cancel()
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = "http", "worker"
		},
		// The transport, not the client: a CPU profile or a trace runs
		// longer than a scrape's 5 s timeout.
		Transport: to.client.Transport,
		ErrorLog:  slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	w.Header().Set("X-Fe-Php-Worker", strconv.Itoa(to.pid))
	rp.ServeHTTP(w, r.WithContext(ctx))
}

// registry holds the supervisor's own metrics.
func (s *Supervisor) registry() *prometheus.Registry {
	return metrics.NewSupervisor(metrics.SupervisorStats{
		Workers: func() int { return len(s.currentWorkers()) },
		Crashes: s.stats.crashes.Load,
		Reloads: func() (ok, failed uint64) { return s.stats.reloadOK.Load(), s.stats.reloadFailed.Load() },
	})
}

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
	s.mu.Lock()
	for i, err := range errs {
		switch {
		case err != nil:
			if !ws[i].exited() {
				s.log.Warn("cannot read a worker's metrics", slog.Int("pid", ws[i].pid), slog.Any("error", err))
			}
		case ws[i].gone:
			// It exited while being read: its counts join the retired
			// ones now (and count once).
			s.retired = metrics.Merge(s.retired, metrics.Cumulative(sets[i]))
			sets[i] = nil
		default:
			ws[i].last = sets[i]
		}
	}
	sets = append(sets, s.retired)
	s.mu.Unlock()
	return metrics.Merge(sets...), nil
}

// retire keeps the counts of a worker that exited, as last scraped, in
// the server's totals: without them the sums would go backwards, and
// Prometheus would take that for a reset and count a spike. What it
// counted after that scrape is lost.
func (s *Supervisor) retire(w *worker) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w.gone = true
	if w.last != nil {
		s.retired = metrics.Merge(s.retired, metrics.Cumulative(w.last))
		w.last = nil
	}
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
