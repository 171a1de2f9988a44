package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

func printReport(w io.Writer, rep *report) {
	e, s := rep.Env, rep.Settings
	if s.OwnProcess {
		fmt.Fprintf(w, "tracegate benchmark: tools/call through each path; load generator and backend in one process, each gateway or proxy in its own (all share the cores)\n")
	} else {
		fmt.Fprintf(w, "tracegate benchmark: tools/call through each path, one process (load generator, path and backend share the cores)\n")
	}
	fmt.Fprintf(w, "%s %s/%s  GOMAXPROCS=%d  NumCPU=%d  CPU: %s\n", e.GoVersion, e.OS, e.Arch, e.GOMAXPROCS, e.NumCPU, e.CPU)
	if e.Revision != "" {
		fmt.Fprintf(w, "revision %s\n", e.Revision)
	}
	fmt.Fprintf(w, "load average before %s, after %s\n", e.LoadAvg, rep.LoadAvgEnd)
	fmt.Fprintf(w, "%s measured per scenario and concurrency after %s warm-up; %d interleaved rounds, median round (by calls/s) shown\n\n",
		s.Duration, s.Warmup, s.Rounds)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-22s\tconc\tcalls/s\tp50\tp99\tcpu/call\tof it, path\tallocs/call\tB/call\tconnect\terrors\tcalls/s by round\t\n", "scenario")
	for _, r := range rep.Results {
		var rs []string
		for _, v := range r.PerSecondRounds {
			rs = append(rs, fmt.Sprintf("%.0f", v))
		}
		pathCPU := "-"
		if r.PathCPUPerCall > 0 {
			pathCPU = fmtDur(r.PathCPUPerCall)
		}
		fmt.Fprintf(tw, "%-22s\t%d\t%.0f\t%s\t%s\t%s\t%s\t%.0f\t%.0f\t%s\t%d\t%s\t\n", r.Scenario, r.Concurrency, r.PerSecond,
			fmtDur(r.P50), fmtDur(r.P99), fmtDur(r.CPUPerCall), pathCPU, r.AllocsPerCall, r.BytesPerCall, fmtDur(r.ConnectP50), r.Errors,
			strings.Join(rs, " "))
	}
	tw.Flush()

	// What each path adds to its baseline, at the same concurrency.
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-22s\tconc\tbaseline\tx base\tx base by round\tx base cpu\t+p50\t+cpu/call\t+allocs/call\t+B/call\t\n", "compared")
	for _, r := range rep.Results {
		if r.ThroughputRatio == 0 {
			continue
		}
		var xs []string
		for _, v := range r.ThroughputRatioRounds {
			xs = append(xs, fmt.Sprintf("%.2f", v))
		}
		fmt.Fprintf(tw, "%-22s\t%d\t%s\t%.3f\t%s\t%.3f\t%s\t%s\t%+.0f\t%+.0f\t\n", r.Scenario, r.Concurrency, r.Baseline,
			r.ThroughputRatio, strings.Join(xs, " "), r.CPURatio, signedDur(r.AddedP50), signedDur(r.AddedCPU), r.AddedAllocs, r.AddedBytes)
	}
	tw.Flush()
	fmt.Fprintln(w, "each comparison is made within a round, against the baseline's run in that round; the median over rounds is shown")
	fmt.Fprintln(w, "x base: calls/s over the baseline's; x base cpu: the baseline's CPU per call over this one's, the ratio to expect when the run alone saturates the cores")
	fmt.Fprintln(w, "cpu/call, allocs/call and B/call count the bench's process and the path's own; \"of it, path\" is the path's process's share")
	for _, r := range rep.Results {
		if r.FirstError != "" {
			fmt.Fprintf(w, "first error in %s at c%d: %s\n", r.Scenario, r.Concurrency, r.FirstError)
		}
	}

	var redis []result
	for _, r := range rep.Results {
		if r.RedisPerCall != nil {
			redis = append(redis, r)
		}
	}
	if len(redis) > 0 {
		fmt.Fprintln(w, "\nRedis round trips in the measured window of the median round (heartbeats and session TTL renewals included):")
		for _, r := range redis {
			fmt.Fprintf(w, "  %-18s c%-3d %.4f per call (%d for %d calls)\n", r.Scenario, r.Concurrency, *r.RedisPerCall, r.RedisRoundTrips, r.Calls)
		}
	}

	if c := rep.SessionCost; c.Samples > 0 {
		fmt.Fprintf(w, "\nbackend session cost (%d samples, direct to the backend):\n", c.Samples)
		fmt.Fprintf(w, "  open a session (connect+initialize): p50 %s, p99 %s\n", fmtDur(c.OpenP50), fmtDur(c.OpenP99))
		fmt.Fprintf(w, "  a call on a fresh session (open+call+close): p50 %s, vs %s on an open session (%.1fx)\n",
			fmtDur(c.FreshCallP50), fmtDur(c.OpenSessionCallP50), float64(c.FreshCallP50)/float64(max(c.OpenSessionCallP50, 1)))
	}

	if len(rep.Exports) > 0 {
		fmt.Fprintln(w, "\nOTLP export of the traced scenarios (whole run, warm-up included):")
		for _, e := range rep.Exports {
			status := "ok"
			if e.Problem != "" {
				status = "FAILED: " + e.Problem
			}
			fmt.Fprintf(w, "  %-18s %d spans (%d tools/call) for %d measured calls, %d dropped, %d metric exports, %d undecodable: %s\n",
				e.Scenario, e.Spans, e.CallSpans, e.Calls, e.Dropped, e.MetricExports, e.Bad, status)
		}
	}

	for _, sk := range rep.Skipped {
		fmt.Fprintf(w, "\nskipped %s: %s\n", sk.Scenario, sk.Reason)
	}

	fmt.Fprintln(w, "\ntargets:")
	for _, v := range rep.Targets {
		if v.Figure == "" {
			fmt.Fprintf(w, "  %-4s  %s (scenario or baseline not in this run)\n", v.Status, v.Target)
			continue
		}
		fmt.Fprintf(w, "  %-4s  %s: %s\n", v.Status, v.Target, v.Figure)
	}
}

// fmtDur prints microseconds below 10ms, milliseconds above.
func fmtDur(d time.Duration) string {
	if d < 10*time.Millisecond && d > -10*time.Millisecond {
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	}
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}

func signedDur(d time.Duration) string {
	if d >= 0 {
		return "+" + fmtDur(d)
	}
	return fmtDur(d)
}
