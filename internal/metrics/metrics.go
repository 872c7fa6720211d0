// Package metrics is fe-php's Prometheus instrumentation: a registry of
// its own (never the global default one), holding the Go and process
// collectors and fe-php's metrics, served by the admin listener.
//
// The request path is kept cheap: each route gets its label children
// once, when routes are built (Route), and a request costs one counter
// increment and one histogram observation, without allocating. Gauges of
// the backends (slots, pool connections, breaker state) are read when
// scraped, from functions the backends already have.
//
// Every metric is a counter, a gauge that sums across processes (slots,
// connections, waiting requests) or a histogram, so that the series of
// several fe-php processes (a future supervisor's workers) add up; the
// breaker state and build_info are the exceptions (take their max).
package metrics

import (
	"runtime"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/fe-php/fe-php/internal/fastcgi"
)

const namespace = "fe_php"

// DurationBuckets are the request duration histogram's upper bounds, in
// seconds: 1 ms to 60 s.
var DurationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// WaitBuckets are the slot wait histogram's upper bounds, in seconds.
var WaitBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// Metrics is fe-php's registry and the metrics the request path updates.
type Metrics struct {
	// Registry holds every metric, the Go and process collectors too.
	Registry *prometheus.Registry

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// SlotWait observes each embedded request's wait for a PHP slot.
	SlotWait prometheus.Histogram
}

// New returns a registry with the Go and process collectors and fe-php's
// request metrics.
func New() *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "requests_total",
		Help: "HTTP requests answered, by backend, routing rule (its index in the config, \"default\" for the default backend, \"none\" when answered before routing) and status class.",
	}, []string{"backend", "rule", "status_class"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "request_duration_seconds",
		Help:    "Time from a request's headers to the end of its response, by backend.",
		Buckets: DurationBuckets,
	}, []string{"backend"})
	m.SlotWait = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: "embedded_slot_wait_seconds",
		Help:    "Time embedded requests waited for a free PHP slot (0 when one was free).",
		Buckets: WaitBuckets,
	})
	m.Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.duration,
	)
	return m
}

// Route is one route's label children: a request costs no lookup.
type Route struct {
	classes  [5]prometheus.Counter // 1xx .. 5xx
	duration prometheus.Observer
}

// Route returns the children of backend's route for rule (a rule index,
// "default" or "none"), creating the series with zero values.
func (m *Metrics) Route(backend, rule string) *Route {
	r := &Route{duration: m.duration.WithLabelValues(backend)}
	for i := range r.classes {
		r.classes[i] = m.requests.WithLabelValues(backend, rule, strconv.Itoa(i+1)+"xx")
	}
	return r
}

// Observe counts one answered request of status that took d.
func (r *Route) Observe(status int, d time.Duration) {
	c := min(max(status/100, 1), 5)
	r.classes[c-1].Inc()
	r.duration.Observe(d.Seconds())
}

// BuildInfo registers fe_php_build_info; phpVersion is the embedded
// backend's PHP ("" when it is not loaded).
func (m *Metrics) BuildInfo(version, phpVersion string) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info",
		Help:        "Always 1: fe-php's version, the Go version it was built with and the embedded backend's PHP version (\"\" when not loaded).",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version(), "php_version": phpVersion},
	})
	g.Set(1)
	m.Registry.MustRegister(g)
}

// Embedded registers the embedded backend's slot gauges and wait
// histogram; slots reports busy slots, worker_pool_size and the requests
// waiting for a slot.
func (m *Metrics) Embedded(slots func() (busy, total, waiting int)) {
	gauge := func(name, help string, pick func(busy, total, waiting int) int) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help},
			func() float64 { return float64(pick(slots())) })
	}
	m.Registry.MustRegister(
		gauge("embedded_slots_busy", "Embedded PHP slots executing a request.",
			func(b, _, _ int) int { return b }),
		gauge("embedded_slots_capacity", "Embedded PHP slots (php.worker_pool_size).",
			func(_, t, _ int) int { return t }),
		gauge("embedded_requests_waiting", "Requests waiting for a free embedded PHP slot.",
			func(_, _, w int) int { return w }),
		m.SlotWait,
	)
}

// EmbeddedContexts registers the embedded backend's PHP context gauge
// and recycle counters; contexts reports the contexts that exist and the
// recycles after worker_max_requests and after a failed request.
func (m *Metrics) EmbeddedContexts(contexts func() (alive int, byMaxRequests, afterFailure uint64)) {
	recycles := prometheus.NewDesc(namespace+"_embedded_context_recycles_total",
		"PHP thread contexts recycled, by reason: max_requests (php.worker_max_requests reached) or failure (a request that did not end cleanly: a fatal error in the bridge, request_terminate_timeout).",
		[]string{"reason"}, nil)
	m.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: "embedded_contexts",
			Help: "PHP thread contexts that exist (each holds a thread's PHP state, up to memory_limit)."},
			func() float64 { n, _, _ := contexts(); return float64(n) }),
		collectorFunc{recycles, func(ch chan<- prometheus.Metric) {
			_, byMax, byFailure := contexts()
			ch <- prometheus.MustNewConstMetric(recycles, prometheus.CounterValue, float64(byMax), "max_requests")
			ch <- prometheus.MustNewConstMetric(recycles, prometheus.CounterValue, float64(byFailure), "failure")
		}},
	)
}

// SupervisorStats are the supervisor's own counts, read when scraped.
type SupervisorStats struct {
	// Workers reports the worker processes serving the current
	// configuration.
	Workers func() int
	// Crashes reports the workers that died unasked and were replaced.
	Crashes func() uint64
	// Reloads reports the configuration reloads that succeeded and
	// those refused.
	Reloads func() (ok, failed uint64)
}

// NewSupervisor returns a registry of the supervisor's own metrics, to
// serve beside its workers' merged ones (no Go or process collector: the
// workers' would clash with them).
func NewSupervisor(st SupervisorStats) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reloads := prometheus.NewDesc(namespace+"_config_reloads_total",
		"Configuration reloads (SIGHUP, fe-php reload), by result: ok, or failed (the old configuration kept serving).",
		[]string{"result"}, nil)
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: "workers",
			Help: "Worker processes serving the current configuration."},
			func() float64 { return float64(st.Workers()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: namespace, Name: "worker_crashes_total",
			Help: "Worker processes that died unasked (a crash, a kill, the OOM killer) and were replaced."},
			func() float64 { return float64(st.Crashes()) }),
		collectorFunc{reloads, func(ch chan<- prometheus.Metric) {
			ok, failed := st.Reloads()
			ch <- prometheus.MustNewConstMetric(reloads, prometheus.CounterValue, float64(ok), "ok")
			ch <- prometheus.MustNewConstMetric(reloads, prometheus.CounterValue, float64(failed), "failed")
		}},
	)
	return reg
}

// collectorFunc is a collector of one description.
type collectorFunc struct {
	desc    *prometheus.Desc
	collect func(chan<- prometheus.Metric)
}

func (c collectorFunc) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }
func (c collectorFunc) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }

// Breaker is a fastcgi circuit breaker's state: whether it is on, its
// state (0 closed, 1 half-open, 2 open) and how many times it entered
// each state.
type Breaker func() (enabled bool, state int, entered [3]uint64)

// FastCGI registers the pool and breaker metrics of the FPM at upstream.
func (m *Metrics) FastCGI(upstream string, stats func() fastcgi.PoolStats, breaker Breaker) {
	m.Registry.MustRegister(&fastcgiCollector{upstream: upstream, stats: stats, breaker: breaker})
}

var (
	fcgiConns = prometheus.NewDesc(namespace+"_fastcgi_connections",
		"Connections to PHP-FPM, by state: busy (running a request or being dialed) or idle (kept open).",
		[]string{"upstream", "state"}, nil)
	fcgiWaiting = prometheus.NewDesc(namespace+"_fastcgi_requests_waiting",
		"Requests waiting for a connection to PHP-FPM (every connection of max_size busy).",
		[]string{"upstream"}, nil)
	fcgiDials = prometheus.NewDesc(namespace+"_fastcgi_dials_total",
		"Connections dialed to PHP-FPM, successfully or not.", []string{"upstream"}, nil)
	fcgiDialFails = prometheus.NewDesc(namespace+"_fastcgi_dial_failures_total",
		"Connections to PHP-FPM that could not be established.", []string{"upstream"}, nil)
	fcgiTimeouts = prometheus.NewDesc(namespace+"_fastcgi_wait_timeouts_total",
		"Requests that waited wait_timeout_secs for a connection in vain (503).", []string{"upstream"}, nil)
	breakerState = prometheus.NewDesc(namespace+"_fastcgi_breaker_state",
		"The circuit breaker's state: 0 closed, 1 half-open, 2 open (absent when the breaker is off).",
		[]string{"upstream"}, nil)
	breakerTransitions = prometheus.NewDesc(namespace+"_fastcgi_breaker_transitions_total",
		"Changes of the circuit breaker's state, by the state entered.", []string{"upstream", "to"}, nil)
)

var breakerStates = [3]string{"closed", "half-open", "open"}

// fastcgiCollector reads one pool snapshot a scrape.
type fastcgiCollector struct {
	upstream string
	stats    func() fastcgi.PoolStats
	breaker  Breaker
}

func (c *fastcgiCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{fcgiConns, fcgiWaiting, fcgiDials, fcgiDialFails, fcgiTimeouts, breakerState, breakerTransitions} {
		ch <- d
	}
}

func (c *fastcgiCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	u := c.upstream
	ch <- prometheus.MustNewConstMetric(fcgiConns, prometheus.GaugeValue, float64(st.InUse), u, "busy")
	ch <- prometheus.MustNewConstMetric(fcgiConns, prometheus.GaugeValue, float64(st.Idle), u, "idle")
	ch <- prometheus.MustNewConstMetric(fcgiWaiting, prometheus.GaugeValue, float64(st.Waiting), u)
	ch <- prometheus.MustNewConstMetric(fcgiDials, prometheus.CounterValue, float64(st.Dials), u)
	ch <- prometheus.MustNewConstMetric(fcgiDialFails, prometheus.CounterValue, float64(st.DialFails), u)
	ch <- prometheus.MustNewConstMetric(fcgiTimeouts, prometheus.CounterValue, float64(st.Timeouts), u)
	if c.breaker == nil {
		return
	}
	on, state, entered := c.breaker()
	if !on {
		return
	}
	ch <- prometheus.MustNewConstMetric(breakerState, prometheus.GaugeValue, float64(state), u)
	for i, n := range entered {
		ch <- prometheus.MustNewConstMetric(breakerTransitions, prometheus.CounterValue, float64(n), u, breakerStates[i])
	}
}

// StaticCache registers the static small-file cache's hits and misses.
func (m *Metrics) StaticCache(stats func() (hits, misses uint64)) {
	m.Registry.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: namespace, Name: "static_cache_hits_total",
			Help: "Plain GET and HEAD requests for a file answered from the small-file cache."},
			func() float64 { h, _ := stats(); return float64(h) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: namespace, Name: "static_cache_misses_total",
			Help: "Plain GET and HEAD requests for a file the small-file cache could not answer (not cached, changed, or no such file)."},
			func() float64 { _, m := stats(); return float64(m) }),
	)
}

// HTTP1 registers the plain listener's HTTP/1.1 fast path counters
// (server.http1_fast_path).
func (m *Metrics) HTTP1(stats func() (served, handedOff uint64)) {
	m.Registry.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: namespace, Name: "http1_fast_requests_total",
			Help: "HTTP/1.1 requests, plain and over TLS, served by fe-php's own HTTP/1.1 loop."},
			func() float64 { n, _ := stats(); return float64(n) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: namespace, Name: "http1_handoffs_total",
			Help: "HTTP/1.x connections handed to Go's net/http, at a request the fast path does not take (a body, HTTP/1.0, a long or malformed head); not HTTP/2 ones."},
			func() float64 { _, n := stats(); return float64(n) }),
	)
}

// RequestBodySpool registers the request body bytes written to
// temporary files.
func (m *Metrics) RequestBodySpool(spooled func() int64) {
	m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: namespace, Name: "request_body_spooled_bytes_total",
		Help: "Request body bytes for PHP written to temporary files (past server.client_body_buffer_size).",
	}, func() float64 { return float64(spooled()) }))
}

// ResponseSpool registers the PHP response bytes written to temporary
// files, by backend (spooled reports each backend's).
func (m *Metrics) ResponseSpool(spooled map[string]func() int64) {
	m.Registry.MustRegister(&spoolCollector{spooled: spooled})
}

var responseSpooled = prometheus.NewDesc(namespace+"_response_spooled_bytes_total",
	"PHP response bytes written to temporary files for slow clients (past php.response_buffer_size), by backend.",
	[]string{"backend"}, nil)

type spoolCollector struct{ spooled map[string]func() int64 }

func (c *spoolCollector) Describe(ch chan<- *prometheus.Desc) { ch <- responseSpooled }

func (c *spoolCollector) Collect(ch chan<- prometheus.Metric) {
	for backend, f := range c.spooled {
		ch <- prometheus.MustNewConstMetric(responseSpooled, prometheus.CounterValue, float64(f()), backend)
	}
}
