package main

import (
	"fmt"
	"slices"
	"time"
)

// result is the median round of one scenario at one concurrency, compared
// with its baseline at the same concurrency.
//
// Each comparison is made within a round, where the two runs are close in
// time and share the machine's noise, and the median over rounds is
// reported. Comparing the two median rounds instead would pair runs from
// different moments, which on a shared machine can be minutes apart in
// load.
type result struct {
	measurement
	// PerSecondRounds is the throughput of every round, to show the spread.
	PerSecondRounds []float64 `json:"calls_per_second_rounds"`
	Baseline        string    `json:"baseline,omitempty"`
	// ThroughputRatio is calls/s over the baseline's.
	ThroughputRatio float64 `json:"throughput_ratio,omitempty"`
	// ThroughputRatioRounds is the ratio within each round.
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
		_, ok := index[key(r.Baseline, r.Concurrency)]
		if r.Baseline == "" || !ok {
			continue
		}
		var ratio, cpuRatio, allocs, bytes []float64
		var p50, cpu []time.Duration
		for _, m := range rounds {
			if m.Scenario != r.Scenario || m.Concurrency != r.Concurrency {
				continue
			}
			for _, b := range rounds {
				if b.Scenario != r.Baseline || b.Concurrency != r.Concurrency || b.Round != m.Round {
					continue
				}
				ratio = append(ratio, m.PerSecond/b.PerSecond)
				if m.CPUPerCall > 0 {
					cpuRatio = append(cpuRatio, float64(b.CPUPerCall)/float64(m.CPUPerCall))
				}
				p50 = append(p50, m.P50-b.P50)
				cpu = append(cpu, m.CPUPerCall-b.CPUPerCall)
				allocs = append(allocs, m.AllocsPerCall-b.AllocsPerCall)
				bytes = append(bytes, m.BytesPerCall-b.BytesPerCall)
			}
		}
		r.ThroughputRatioRounds = ratio
		r.ThroughputRatio = median(ratio)
		r.CPURatio = median(cpuRatio)
		r.AddedP50 = median(p50)
		r.AddedCPU = median(cpu)
		r.AddedAllocs = median(allocs)
		r.AddedBytes = median(bytes)
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

// median of xs (the mean of the two middle values for an even count); 0
// for none.
func median[T float64 | time.Duration](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	xs = slices.Clone(xs)
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

func find(results []result, name string, c int) (result, bool) {
	for _, r := range results {
		if r.Scenario == name && r.Concurrency == c {
			return r, true
		}
	}
	return result{}, false
}
