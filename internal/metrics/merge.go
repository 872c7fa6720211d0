package metrics

import (
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// maxGauges are the gauges that describe a process rather than count in
// it: merging several processes' takes their largest value, not the sum.
var maxGauges = map[string]bool{
	namespace + "_build_info":            true,
	namespace + "_fastcgi_breaker_state": true, // the worst worker's state
	"go_info":                            true,
	"go_gc_gogc_percent":                 true,
	"go_gc_gomemlimit_bytes":             true,
	"go_sched_gomaxprocs_threads":        true,
	"process_start_time_seconds":         true,
	"process_max_fds":                    true,
	"process_virtual_memory_max_bytes":   true,
}

// Merge adds up the metric families that several fe-php processes (a
// supervisor's workers) gathered into the families of one server: series
// with the same name and labels are summed (counters, gauges, histogram
// buckets, summary counts), except the gauges that describe a process,
// such as build_info and the breaker state, which take their largest
// value, and summary quantiles, which cannot be added and take theirs
// too. A family whose type differs from the first process's is dropped.
// The inputs are not modified.
func Merge(sets ...[]*dto.MetricFamily) []*dto.MetricFamily {
	families := map[string]*dto.MetricFamily{}
	series := map[string]*dto.Metric{} // by family name and labels
	for _, set := range sets {
		for _, f := range set {
			name := f.GetName()
			mf, ok := families[name]
			if !ok {
				mf = &dto.MetricFamily{Name: f.Name, Help: f.Help, Type: f.Type, Unit: f.Unit}
				families[name] = mf
			} else if mf.GetType() != f.GetType() {
				continue
			}
			for _, m := range f.Metric {
				key := name + "\xff" + labelKey(m)
				if have, ok := series[key]; ok {
					add(have, m, mf.GetType(), maxGauges[name])
					continue
				}
				c := proto.Clone(m).(*dto.Metric)
				c.TimestampMs = nil
				series[key] = c
				mf.Metric = append(mf.Metric, c)
			}
		}
	}
	out := make([]*dto.MetricFamily, 0, len(families))
	for _, mf := range families {
		slices.SortFunc(mf.Metric, func(a, b *dto.Metric) int { return strings.Compare(labelKey(a), labelKey(b)) })
		out = append(out, mf)
	}
	slices.SortFunc(out, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return out
}

// labelKey identifies a series within its family.
func labelKey(m *dto.Metric) string {
	var b strings.Builder
	for _, l := range m.Label { // sorted by name, as gathered
		b.WriteString(l.GetName())
		b.WriteByte(0)
		b.WriteString(l.GetValue())
		b.WriteByte(0)
	}
	return b.String()
}

// add merges m into have.
func add(have, m *dto.Metric, typ dto.MetricType, takeMax bool) {
	switch typ {
	case dto.MetricType_COUNTER:
		have.Counter.Value = proto.Float64(have.Counter.GetValue() + m.Counter.GetValue())
	case dto.MetricType_GAUGE:
		v := have.Gauge.GetValue() + m.Gauge.GetValue()
		if takeMax {
			v = max(have.Gauge.GetValue(), m.Gauge.GetValue())
		}
		have.Gauge.Value = proto.Float64(v)
	case dto.MetricType_UNTYPED:
		have.Untyped.Value = proto.Float64(have.Untyped.GetValue() + m.Untyped.GetValue())
	case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
		h, o := have.Histogram, m.Histogram
		h.SampleCount = proto.Uint64(h.GetSampleCount() + o.GetSampleCount())
		h.SampleSum = proto.Float64(h.GetSampleSum() + o.GetSampleSum())
		if len(h.Bucket) == len(o.Bucket) { // the same buckets: one build of fe-php
			for i, b := range h.Bucket {
				b.CumulativeCount = proto.Uint64(b.GetCumulativeCount() + o.Bucket[i].GetCumulativeCount())
			}
		}
	case dto.MetricType_SUMMARY:
		s, o := have.Summary, m.Summary
		s.SampleCount = proto.Uint64(s.GetSampleCount() + o.GetSampleCount())
		s.SampleSum = proto.Float64(s.GetSampleSum() + o.GetSampleSum())
		if len(s.Quantile) == len(o.Quantile) {
			for i, q := range s.Quantile {
				q.Value = proto.Float64(max(q.GetValue(), o.Quantile[i].GetValue()))
			}
		}
	}
}

// Cumulative keeps the families that only ever grow (counters and
// histograms): what a process that exited leaves to its server's totals,
// so that they do not go backwards when it ends.
func Cumulative(families []*dto.MetricFamily) []*dto.MetricFamily {
	var out []*dto.MetricFamily
	for _, f := range families {
		switch f.GetType() {
		case dto.MetricType_COUNTER, dto.MetricType_HISTOGRAM:
			out = append(out, f)
		}
	}
	return out
}
