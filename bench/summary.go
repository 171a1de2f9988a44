package main

import (
	"fmt"
	"slices"
	"time"
)

// result is the median round of one scenario at one concurrency, compared
// with its baseline at the same concurrency in the same run.
type result struct {
	measurement
	// PerSecondRounds is the throughput of every round, to show the spread.
	PerSecondRounds []float64 `json:"calls_per_second_rounds"`
	Baseline        string    `json:"baseline,omitempty"`
	// ThroughputRatio is calls/s over the baseline's.
	ThroughputRatio float64 `json:"throughput_ratio,omitempty"`
	// ThroughputRatioRounds is the ratio within each round: the two runs
	// of a round are close in time, so they share the machine's noise.
	ThroughputRatioRounds []float64 `json:"throughput_ratio_rounds,omitempty"`
	// AddedP50 is p50 minus the baseline's p50.
	AddedP50 time.Duration `json:"added_p50_ns,omitempty"`
	// CPURatio is the baseline's CPU time per call over this one's: the
	// throughput ratio to expect when the cores are saturated by this
	// process alone. It is robust to other work on the machine, which the
	// measured ratio is not.
	CPURatio float64 `json:"cpu_ratio,omitempty"`
	// AddedCPU is CPU time per call over the baseline's.
	AddedCPU time.Duration `json:"added_cpu_per_call_ns,omitempty"`
	// AddedAllocs and AddedBytes are per call, over the baseline's.
	AddedAllocs float64 `json:"added_allocs_per_call,omitempty"`
	AddedBytes  float64 `json:"added_bytes_per_call,omitempty"`
}

func summarize(sel []scenario, concs []int, rounds []measurement) []result {
	var out []result
	index := map[string]int{}
	key := func(name string, c int) string { return fmt.Sprintf("%s/%d", name, c) }
	for _, sc := range sel {
		for _, c := range concs {
			var ms []measurement
			for _, m := range rounds {
				if m.Scenario == sc.name && m.Concurrency == c {
					ms = append(ms, m)
				}
			}
			if len(ms) == 0 {
				continue
			}
			r := result{measurement: medianRound(ms), Baseline: sc.baseline}
			for _, m := range ms {
				r.PerSecondRounds = append(r.PerSecondRounds, m.PerSecond)
			}
			index[key(sc.name, c)] = len(out)
			out = append(out, r)
		}
	}
	for i := range out {
		r := &out[i]
		j, ok := index[key(r.Baseline, r.Concurrency)]
		if r.Baseline == "" || !ok {
			continue
		}
		base := out[j]
		r.ThroughputRatio = r.PerSecond / base.PerSecond
		r.AddedP50 = r.P50 - base.P50
		r.AddedCPU = r.CPUPerCall - base.CPUPerCall
		if r.CPUPerCall > 0 {
			r.CPURatio = float64(base.CPUPerCall) / float64(r.CPUPerCall)
		}
		r.AddedAllocs = r.AllocsPerCall - base.AllocsPerCall
		r.AddedBytes = r.BytesPerCall - base.BytesPerCall
		for _, m := range rounds {
			if m.Scenario != r.Scenario || m.Concurrency != r.Concurrency {
				continue
			}
			for _, b := range rounds {
				if b.Scenario == r.Baseline && b.Concurrency == r.Concurrency && b.Round == m.Round {
					r.ThroughputRatioRounds = append(r.ThroughputRatioRounds, m.PerSecond/b.PerSecond)
				}
			}
		}
	}
	return out
}

// medianRound is the round with the median throughput (the lower of the
// two middle ones for an even count); its other figures come with it.
func medianRound(ms []measurement) measurement {
	ms = slices.Clone(ms)
	slices.SortFunc(ms, func(a, b measurement) int {
		switch {
		case a.PerSecond < b.PerSecond:
			return -1
		case a.PerSecond > b.PerSecond:
			return 1
		}
		return 0
	})
	return ms[(len(ms)-1)/2]
}

func find(results []result, name string, c int) (result, bool) {
	for _, r := range results {
		if r.Scenario == name && r.Concurrency == c {
			return r, true
		}
	}
	return result{}, false
}
