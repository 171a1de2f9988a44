package probe

import (
	"math"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultWindow is how many recent runs the latency percentiles cover.
const DefaultWindow = 1000

// quantiles reported for each step.
var quantiles = []float64{0.5, 0.9, 0.99}

// Stats accumulates the results of repeated runs: availability over all
// runs, and per-step latency percentiles over the most recent runs. It is
// safe for concurrent use, and is a prometheus.Collector.
type Stats struct {
	window int

	mu      sync.Mutex
	runs    uint64
	okRuns  uint64
	lastOK  bool
	lastRun time.Time
	steps   map[string]*stepStats
	order   []string // step names in first-seen order
}

type stepStats struct {
	count    uint64
	failures uint64
	sum      float64   // seconds, all runs
	recent   []float64 // seconds, a ring of the last window observations
	next     int
}

// NewStats returns Stats whose percentiles cover the last window runs. If
// window is not positive, DefaultWindow.
func NewStats(window int) *Stats {
	if window <= 0 {
		window = DefaultWindow
	}
	return &Stats{window: window, steps: map[string]*stepStats{}}
}

// Observe adds one run. Failed steps count too: a timeout's latency is what
// the operator needs to see.
func (s *Stats) Observe(r Report) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.runs++
	if r.OK {
		s.okRuns++
	}
	s.lastOK = r.OK
	s.lastRun = r.Start
	for _, st := range r.Steps {
		ss, ok := s.steps[st.Name]
		if !ok {
			ss = &stepStats{}
			s.steps[st.Name] = ss
			s.order = append(s.order, st.Name)
		}
		sec := st.Latency.Seconds()
		ss.count++
		ss.sum += sec
		if !st.OK {
			ss.failures++
		}
		if len(ss.recent) < s.window {
			ss.recent = append(ss.recent, sec)
		} else {
			ss.recent[ss.next] = sec
			ss.next = (ss.next + 1) % s.window
		}
	}
}

// Summary is a snapshot of Stats.
type Summary struct {
	Runs, OK uint64
	LastOK   bool
	Steps    []StepSummary
}

// Availability is the share of runs that passed, from 0 to 1.
func (s Summary) Availability() float64 {
	if s.Runs == 0 {
		return 0
	}
	return float64(s.OK) / float64(s.Runs)
}

// StepSummary holds one step's counts and its recent latency percentiles.
type StepSummary struct {
	Name            string
	Count, Failures uint64
	P50, P90, P99   time.Duration
}

// Summary returns a snapshot.
func (s *Stats) Summary() Summary {
	s.mu.Lock()
	defer s.mu.Unlock()
	sum := Summary{Runs: s.runs, OK: s.okRuns, LastOK: s.lastOK}
	for _, name := range s.order {
		ss := s.steps[name]
		q := percentiles(ss.recent, quantiles)
		sum.Steps = append(sum.Steps, StepSummary{
			Name: name, Count: ss.count, Failures: ss.failures,
			P50: seconds(q[0]), P90: seconds(q[1]), P99: seconds(q[2]),
		})
	}
	return sum
}

// percentiles returns the nearest-rank percentile of values for each q.
func percentiles(values []float64, qs []float64) []float64 {
	out := make([]float64, len(qs))
	if len(values) == 0 {
		return out
	}
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	for i, q := range qs {
		rank := int(math.Ceil(q*float64(len(sorted)))) - 1
		out[i] = sorted[max(0, min(rank, len(sorted)-1))]
	}
	return out
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

var (
	descUp = prometheus.NewDesc("tracegate_probe_up",
		"1 when the last probe run passed every step, else 0.", nil, nil)
	descRuns = prometheus.NewDesc("tracegate_probe_runs_total",
		"Probe runs by result.", []string{"result"}, nil)
	descAvailability = prometheus.NewDesc("tracegate_probe_availability_ratio",
		"Share of probe runs that passed since the probe started.", nil, nil)
	descLastRun = prometheus.NewDesc("tracegate_probe_last_run_timestamp_seconds",
		"When the last probe run started, in Unix seconds.", nil, nil)
	descStepDuration = prometheus.NewDesc("tracegate_probe_step_duration_seconds",
		"Latency of each probe step; quantiles cover the most recent runs.", []string{"step"}, nil)
	descStepFailures = prometheus.NewDesc("tracegate_probe_step_failures_total",
		"Failed probe steps.", []string{"step"}, nil)
)

// Describe implements prometheus.Collector.
func (s *Stats) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUp, descRuns, descAvailability, descLastRun, descStepDuration, descStepFailures} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (s *Stats) Collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	defer s.mu.Unlock()
	up := 0.0
	if s.lastOK {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, up)
	ch <- prometheus.MustNewConstMetric(descRuns, prometheus.CounterValue, float64(s.okRuns), "ok")
	ch <- prometheus.MustNewConstMetric(descRuns, prometheus.CounterValue, float64(s.runs-s.okRuns), "fail")
	if s.runs > 0 {
		ch <- prometheus.MustNewConstMetric(descAvailability, prometheus.GaugeValue, float64(s.okRuns)/float64(s.runs))
		ch <- prometheus.MustNewConstMetric(descLastRun, prometheus.GaugeValue, float64(s.lastRun.UnixNano())/1e9)
	}
	for _, name := range s.order {
		ss := s.steps[name]
		q := percentiles(ss.recent, quantiles)
		qm := make(map[float64]float64, len(quantiles))
		for i, v := range quantiles {
			qm[v] = q[i]
		}
		ch <- prometheus.MustNewConstSummary(descStepDuration, ss.count, ss.sum, qm, name)
		ch <- prometheus.MustNewConstMetric(descStepFailures, prometheus.CounterValue, float64(ss.failures), name)
	}
}

// MetricsHandler serves s in the Prometheus text format, from a registry of
// its own (never the global one).
func MetricsHandler(s *Stats) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(s)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
