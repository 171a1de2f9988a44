package probe

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestPercentiles(t *testing.T) {
	t.Parallel()
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(100 - i) // 100..1, unsorted
	}
	tests := []struct {
		name   string
		values []float64
		want   []float64
	}{
		{"empty", nil, []float64{0, 0, 0}},
		{"one", []float64{7}, []float64{7, 7, 7}},
		{"two", []float64{2, 1}, []float64{1, 2, 2}},
		{"hundred", hundred, []float64{50, 90, 99}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := percentiles(tc.values, quantiles)
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("q%v: got %v, want %v", quantiles[i], got[i], tc.want[i])
				}
			}
		})
	}
}

func report(ok bool, steps ...Step) Report {
	return Report{Start: time.Unix(1700000000, 0), OK: ok, Steps: steps}
}

func TestStatsWindowAndAvailability(t *testing.T) {
	t.Parallel()
	s := NewStats(3)
	// Latencies 1..5ms: the window keeps the last three (3, 4, 5).
	for i := 1; i <= 5; i++ {
		ok := i != 2
		s.Observe(report(ok, Step{Name: "tools/list", OK: ok, Latency: time.Duration(i) * time.Millisecond}))
	}
	sum := s.Summary()
	if sum.Runs != 5 || sum.OK != 4 || !sum.LastOK {
		t.Errorf("got runs=%d ok=%d last=%v, want 5, 4, true", sum.Runs, sum.OK, sum.LastOK)
	}
	if got := sum.Availability(); got != 0.8 {
		t.Errorf("got availability %v, want 0.8", got)
	}
	st := sum.Steps[0]
	if st.Count != 5 || st.Failures != 1 {
		t.Errorf("got count=%d failures=%d, want 5 and 1", st.Count, st.Failures)
	}
	if st.P50 != 4*time.Millisecond || st.P99 != 5*time.Millisecond {
		t.Errorf("got p50=%v p99=%v, want 4ms and 5ms over the window", st.P50, st.P99)
	}
}

func TestMetricsHandlerServesPrometheusText(t *testing.T) {
	t.Parallel()
	s := NewStats(10)
	s.Observe(report(true, Step{Name: "initialize", OK: true, Latency: 2 * time.Millisecond}, Step{Name: "tools/call get_weather", OK: true, Latency: 4 * time.Millisecond}))
	s.Observe(report(false, Step{Name: "initialize", OK: false, Latency: 6 * time.Millisecond}))
	rec := httptest.NewRecorder()
	MetricsHandler(s).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		"# TYPE tracegate_probe_up gauge\ntracegate_probe_up 0\n",
		`tracegate_probe_runs_total{result="ok"} 1`,
		`tracegate_probe_runs_total{result="fail"} 1`,
		"tracegate_probe_availability_ratio 0.5",
		"tracegate_probe_last_run_timestamp_seconds 1.7e+09",
		"# TYPE tracegate_probe_step_duration_seconds summary",
		`tracegate_probe_step_duration_seconds{step="initialize",quantile="0.5"} 0.002`,
		`tracegate_probe_step_duration_seconds{step="initialize",quantile="0.99"} 0.006`,
		`tracegate_probe_step_duration_seconds_count{step="initialize"} 2`,
		`tracegate_probe_step_duration_seconds_sum{step="tools/call get_weather"} 0.004`,
		`tracegate_probe_step_failures_total{step="initialize"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
}
