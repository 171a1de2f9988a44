package otlptest

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	collectormetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
)

// Point is one received metric data point, flattened for assertions.
type Point struct {
	Name    string
	Unit    string
	Service string
	Scope   string
	// Type is sum, gauge, histogram, exponential_histogram or summary.
	Type       string
	Cumulative bool // aggregation temporality of sums and histograms
	Monotonic  bool // sums only
	Attrs      map[string]any
	Start      time.Time
	Time       time.Time

	// Value is a sum's or gauge's value (integers converted).
	Value float64

	// Count and Sum are set for every histogram and summary; Bounds and
	// BucketCounts for explicit-bucket histograms (len(BucketCounts) ==
	// len(Bounds)+1, the last bucket being +Inf).
	Count        uint64
	Sum          float64
	Bounds       []float64
	BucketCounts []uint64
}

// MetricNames returns the distinct names of every metric received, sorted.
func (r *Receiver) MetricNames() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var names []string
	for _, p := range r.points {
		names = append(names, p.Name)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// Points returns every data point received for the metric, in arrival
// order. With cumulative temporality, several exports repeat the same
// series; LastPoints keeps the latest of each.
func (r *Receiver) Points(name string) []Point {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Point
	for _, p := range r.points {
		if p.Name == name {
			out = append(out, p)
		}
	}
	return out
}

// LastPoints returns, for each distinct service and attribute set of the
// metric, the data point received last: for cumulative metrics, the current
// total.
func (r *Receiver) LastPoints(name string) []Point {
	var keys []string
	last := map[string]Point{}
	for _, p := range r.Points(name) {
		k := p.Service + "\x00" + attrKey(p.Attrs)
		if _, ok := last[k]; !ok {
			keys = append(keys, k)
		}
		last[k] = p
	}
	out := make([]Point, 0, len(keys))
	for _, k := range keys {
		out = append(out, last[k])
	}
	return out
}

// WaitForMetric polls until the metric has been received and match (if not
// nil) accepts its LastPoints, then returns them. On timeout it fails the
// test, listing the metric names it has.
func (r *Receiver) WaitForMetric(tb testing.TB, timeout time.Duration, name string, match func([]Point) bool) []Point {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		pts := r.LastPoints(name)
		if len(pts) > 0 && (match == nil || match(pts)) {
			return pts
		}
		if time.Now().After(deadline) {
			tb.Fatalf("otlptest: metric %q not received as wanted within %v; got %d points for it; metrics received: %v",
				name, timeout, len(pts), r.MetricNames())
			return nil
		}
		time.Sleep(pollInterval)
	}
}

// attrKey is a stable rendering of an attribute set, for grouping.
func attrKey(m map[string]any) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%v;", k, m[k])
	}
	return b.String()
}

func flattenMetrics(req *collectormetrics.ExportMetricsServiceRequest) []Point {
	var out []Point
	for _, rm := range req.GetResourceMetrics() {
		service, _ := resourceAttrs(rm.GetResource())["service.name"].(string)
		for _, sm := range rm.GetScopeMetrics() {
			scope := sm.GetScope().GetName()
			for _, m := range sm.GetMetrics() {
				base := Point{Name: m.GetName(), Unit: m.GetUnit(), Service: service, Scope: scope}
				out = append(out, flattenMetric(base, m)...)
			}
		}
	}
	return out
}

const cumulative = metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE

func flattenMetric(base Point, m *metricspb.Metric) []Point {
	var out []Point
	switch d := m.GetData().(type) {
	case *metricspb.Metric_Sum:
		for _, dp := range d.Sum.GetDataPoints() {
			p := numberPoint(base, "sum", dp)
			p.Cumulative = d.Sum.GetAggregationTemporality() == cumulative
			p.Monotonic = d.Sum.GetIsMonotonic()
			out = append(out, p)
		}
	case *metricspb.Metric_Gauge:
		for _, dp := range d.Gauge.GetDataPoints() {
			out = append(out, numberPoint(base, "gauge", dp))
		}
	case *metricspb.Metric_Histogram:
		for _, dp := range d.Histogram.GetDataPoints() {
			p := base
			p.Type = "histogram"
			p.Cumulative = d.Histogram.GetAggregationTemporality() == cumulative
			p.Attrs = attrMap(dp.GetAttributes())
			p.Start, p.Time = unixNano(dp.GetStartTimeUnixNano()), unixNano(dp.GetTimeUnixNano())
			p.Count, p.Sum = dp.GetCount(), dp.GetSum()
			p.Bounds, p.BucketCounts = dp.GetExplicitBounds(), dp.GetBucketCounts()
			out = append(out, p)
		}
	case *metricspb.Metric_ExponentialHistogram:
		for _, dp := range d.ExponentialHistogram.GetDataPoints() {
			p := base
			p.Type = "exponential_histogram"
			p.Cumulative = d.ExponentialHistogram.GetAggregationTemporality() == cumulative
			p.Attrs = attrMap(dp.GetAttributes())
			p.Start, p.Time = unixNano(dp.GetStartTimeUnixNano()), unixNano(dp.GetTimeUnixNano())
			p.Count, p.Sum = dp.GetCount(), dp.GetSum()
			out = append(out, p)
		}
	case *metricspb.Metric_Summary:
		for _, dp := range d.Summary.GetDataPoints() {
			p := base
			p.Type = "summary"
			p.Attrs = attrMap(dp.GetAttributes())
			p.Start, p.Time = unixNano(dp.GetStartTimeUnixNano()), unixNano(dp.GetTimeUnixNano())
			p.Count, p.Sum = dp.GetCount(), dp.GetSum()
			out = append(out, p)
		}
	}
	return out
}

func numberPoint(base Point, typ string, dp *metricspb.NumberDataPoint) Point {
	p := base
	p.Type = typ
	p.Attrs = attrMap(dp.GetAttributes())
	p.Start, p.Time = unixNano(dp.GetStartTimeUnixNano()), unixNano(dp.GetTimeUnixNano())
	switch v := dp.GetValue().(type) {
	case *metricspb.NumberDataPoint_AsInt:
		p.Value = float64(v.AsInt)
	case *metricspb.NumberDataPoint_AsDouble:
		p.Value = v.AsDouble
	}
	return p
}
