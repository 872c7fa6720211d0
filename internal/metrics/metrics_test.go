package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"

	"github.com/fe-php/fe-php/internal/fastcgi"
)

func newFull(t *testing.T) *Metrics {
	t.Helper()
	m := New()
	m.BuildInfo("test", "8.2.0")
	m.Embedded(func() (int, int, int) { return 3, 4, 7 })
	m.FastCGI("127.0.0.1:9000", func() fastcgi.PoolStats { return fastcgi.PoolStats{InUse: 2, Idle: 1, Waiting: 5, Dials: 9} },
		func() (bool, int, [3]uint64) { return true, 2, [3]uint64{1, 1, 2} })
	m.StaticCache(func() (uint64, uint64) { return 10, 4 })
	m.RequestBodySpool(func() int64 { return 100 })
	m.ResponseSpool(map[string]func() int64{"embedded": func() int64 { return 7 }})
	return m
}

func TestRouteCounts(t *testing.T) {
	m := newFull(t)
	r := m.Route("embedded", "default")
	for _, st := range []int{200, 204, 404, 503, 0, 999} {
		r.Observe(st, 3*time.Millisecond)
	}
	for class, want := range map[string]float64{"1xx": 1, "2xx": 2, "3xx": 0, "4xx": 1, "5xx": 2} {
		if got := testutil.ToFloat64(m.requests.WithLabelValues("embedded", "default", class)); got != want {
			t.Errorf("%s: %v, want %v", class, got, want)
		}
	}
	if n := testutil.CollectAndCount(m.duration); n != 1 {
		t.Errorf("duration series: %d", n)
	}
}

// The request path allocates nothing.
func TestRouteObserveAllocs(t *testing.T) {
	m := New()
	r := m.Route("static", "3")
	if n := testing.AllocsPerRun(1000, func() { r.Observe(200, time.Millisecond) }); n != 0 {
		t.Errorf("Observe allocates %v times a call", n)
	}
}

// Every metric passes Prometheus' lint (promtool check metrics).
func TestLint(t *testing.T) {
	m := newFull(t)
	m.Route("fastcgi", "0").Observe(200, time.Second)
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "fe_php_") {
			t.Errorf("%s: %s", p.Metric, p.Text)
		} else {
			t.Logf("(not fe-php's) %s: %s", p.Metric, p.Text)
		}
	}
	want := `
# HELP fe_php_fastcgi_breaker_state The circuit breaker's state: 0 closed, 1 half-open, 2 open (absent when the breaker is off).
# TYPE fe_php_fastcgi_breaker_state gauge
fe_php_fastcgi_breaker_state{upstream="127.0.0.1:9000"} 2
# HELP fe_php_embedded_requests_waiting Requests waiting for a free embedded PHP slot.
# TYPE fe_php_embedded_requests_waiting gauge
fe_php_embedded_requests_waiting 7
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "fe_php_fastcgi_breaker_state", "fe_php_embedded_requests_waiting"); err != nil {
		t.Error(err)
	}
}

// Two workers' metrics merge into one server's: counts and histograms
// add up, build_info and the breaker state do not.
func TestMerge(t *testing.T) {
	gather := func(busy int, requests int) []*dto.MetricFamily {
		m := New()
		m.BuildInfo("test", "8.2.0")
		m.Embedded(func() (int, int, int) { return busy, 4, 0 })
		m.FastCGI("127.0.0.1:9000", func() fastcgi.PoolStats { return fastcgi.PoolStats{Dials: 1} },
			func() (bool, int, [3]uint64) { return true, busy % 3, [3]uint64{} })
		r := m.Route("embedded", "default")
		for range requests {
			r.Observe(200, 3*time.Millisecond)
		}
		mfs, err := m.Registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		return mfs
	}
	a, b := gather(1, 2), gather(2, 5)
	merged := Merge(a, b)
	value := func(name string, labels ...string) float64 {
		for _, f := range merged {
			if f.GetName() != name {
				continue
			}
		series:
			for _, m := range f.Metric {
				for i := 0; i+1 < len(labels); i += 2 {
					found := false
					for _, l := range m.Label {
						found = found || (l.GetName() == labels[i] && l.GetValue() == labels[i+1])
					}
					if !found {
						continue series
					}
				}
				switch {
				case m.Counter != nil:
					return m.Counter.GetValue()
				case m.Gauge != nil:
					return m.Gauge.GetValue()
				case m.Histogram != nil:
					return float64(m.Histogram.GetSampleCount())
				}
			}
		}
		t.Fatalf("no series %s %v", name, labels)
		return 0
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"fe_php_requests_total", []string{"status_class", "2xx"}, 7},
		{"fe_php_request_duration_seconds", nil, 7},
		{"fe_php_embedded_slots_busy", nil, 3},
		{"fe_php_embedded_slots_capacity", nil, 8},
		{"fe_php_fastcgi_dials_total", nil, 2},
		{"fe_php_fastcgi_breaker_state", nil, 2},
		{"fe_php_build_info", nil, 1},
	} {
		if got := value(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// The inputs are untouched, and the result passes the lint.
	if got := a[0].GetName(); got == "" {
		t.Error("input changed")
	}
	problems, err := promlint.NewWithMetricFamilies(merged).Lint()
	if err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", err, problems)
	}
}
