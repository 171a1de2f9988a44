package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// settings are what one run measures.
type settings struct {
	Duration    time.Duration `json:"duration_ns"` // measured time per scenario, concurrency and round
	Warmup      time.Duration `json:"warmup_ns"`
	Rounds      int           `json:"rounds"`
	Concurrency []int         `json:"concurrency"`
	// Scenarios restricts the run to these names and their baselines;
	// empty runs every scenario.
	Scenarios      []string `json:"scenarios,omitempty"`
	SessionSamples int      `json:"session_samples"`
	// OwnProcess runs each gateway or proxy in a process of its own;
	// otherwise every path runs in the bench's process.
	OwnProcess bool `json:"own_process"`
	// CPUProfile, if set, is the prefix of one CPU profile per measured
	// window: PREFIX.SCENARIO-cCONC-rROUND.prof.
	CPUProfile string `json:"-"`
}

// report is everything one run measured.
type report struct {
	Env         environment   `json:"environment"`
	Settings    settings      `json:"settings"`
	Rounds      []measurement `json:"rounds"`
	Results     []result      `json:"results"`
	SessionCost sessionCost   `json:"session_cost"`
	Targets     []verdict     `json:"targets"`
	// Exports is what each traced scenario exported, checked.
	Exports []exported `json:"exports,omitempty"`
	// Skipped are the scenarios this machine could not run, and why.
	Skipped    []skipped `json:"skipped,omitempty"`
	LoadAvgEnd string    `json:"loadavg_end,omitempty"`
}

// run measures every selected scenario at every concurrency, rounds
// times, interleaved so that noise on a shared machine hits all scenarios
// alike, and reports the median round of each. Progress goes to progress.
func run(ctx context.Context, s settings, progress io.Writer) (*report, error) {
	sel, err := selectScenarios(scenarios(), s.Scenarios)
	if err != nil {
		return nil, err
	}
	rep := &report{Env: currentEnvironment(), Settings: s}
	b, err := startBackend(ctx)
	if err != nil {
		return nil, err
	}
	defer b.close()

	paths := make([]*path, len(sel))
	sinks := make([]*otlpSink, len(sel))
	defer func() {
		for i, p := range paths {
			if p != nil {
				p.close()
			}
			if sinks[i] != nil {
				sinks[i].close()
			}
		}
	}()
	for i, sc := range sel {
		up := upstream{BackendURL: b.url}
		if sc.otlp {
			// Each exporting path has a sink of its own, so that what
			// each exported can be checked.
			if sinks[i], err = startOTLPSink(ctx); err != nil {
				return nil, fmt.Errorf("otlp sink: %w", err)
			}
			up.OTLPURL = sinks[i].URL
		}
		if sc.middle && s.OwnProcess {
			paths[i], err = startPathChild(ctx, sc, up)
		} else {
			paths[i], err = sc.serve(ctx, up)
		}
		if errors.Is(err, errSkip) {
			fmt.Fprintf(progress, "skipping %s: %v\n", sc.name, err)
			rep.Skipped = append(rep.Skipped, skipped{sc.name, err.Error()})
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("starting scenario %s: %w", sc.name, err)
		}
	}
	// What was skipped is measured no further.
	for i := 0; i < len(sel); i++ {
		if paths[i] == nil {
			sel = slices.Delete(sel, i, i+1)
			paths = slices.Delete(paths, i, i+1)
			i--
		}
	}

	type job struct {
		i    int
		conc int
	}
	var order []job
	for i := range sel {
		for _, c := range s.Concurrency {
			order = append(order, job{i, c})
		}
	}
	for round := 1; round <= s.Rounds; round++ {
		// Alternate the direction so that drift during a round (a
		// neighbour's build, the page cache) does not always favour the
		// scenarios that run first.
		jobs := slices.Clone(order)
		if round%2 == 0 {
			slices.Reverse(jobs)
		}
		for _, j := range jobs {
			sc := sel[j.i]
			var prof string
			if s.CPUProfile != "" {
				prof = fmt.Sprintf("%s.%s-c%d-r%d.prof", s.CPUProfile, sc.name, j.conc, round)
			}
			m, err := measure(ctx, sc, paths[j.i], j.conc, s.Warmup, s.Duration, prof)
			if err != nil {
				return nil, fmt.Errorf("round %d: %s at concurrency %d: %w", round, sc.name, j.conc, err)
			}
			m.Round = round
			rep.Rounds = append(rep.Rounds, m)
			fmt.Fprintf(progress, "round %d/%d  %-22s c=%-3d %9.0f calls/s  p50 %s  p99 %s  errors %d\n",
				round, s.Rounds, sc.name, j.conc, m.PerSecond, fmtDur(m.P50), fmtDur(m.P99), m.Errors)
		}
	}
	for i, sc := range sel {
		if sinks[i] == nil {
			continue
		}
		if paths[i].flush == nil {
			return nil, fmt.Errorf("%s: the path exports no telemetry", sc.name)
		}
		dropped, err := paths[i].flush(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: flushing telemetry: %w", sc.name, err)
		}
		sink := sinks[i]
		e := exported{
			Scenario:      sc.name,
			Spans:         sink.Spans(),
			CallSpans:     sink.CallSpans(),
			MetricExports: sink.MetricExports(),
			Dropped:       dropped,
			Bad:           sink.Bad(),
		}
		for _, m := range rep.Rounds {
			if m.Scenario == sc.name {
				e.Calls += int64(m.Calls)
			}
		}
		e.check(sc.traceFlags)
		rep.Exports = append(rep.Exports, e)
	}
	if s.SessionSamples > 0 {
		if rep.SessionCost, err = measureSessionCost(ctx, b.url, s.SessionSamples); err != nil {
			return nil, err
		}
	}
	rep.Results = summarize(sel, s.Concurrency, rep.Rounds)
	rep.Targets = check(targets, rep.Results)
	rep.LoadAvgEnd = loadAvg()
	return rep, nil
}

type skipped struct {
	Scenario string `json:"scenario"`
	Reason   string `json:"reason"`
}

// exportProblems joins the failed export checks, or returns nil.
func (rep *report) exportProblems() error {
	var errs []error
	for _, e := range rep.Exports {
		if e.Problem != "" {
			errs = append(errs, fmt.Errorf("%s: export check failed: %s", e.Scenario, e.Problem))
		}
	}
	return errors.Join(errs...)
}

// selectScenarios keeps the named scenarios and, transitively, their
// baselines, in list order.
func selectScenarios(all []scenario, names []string) ([]scenario, error) {
	if len(names) == 0 {
		return all, nil
	}
	byName := map[string]scenario{}
	for _, sc := range all {
		byName[sc.name] = sc
	}
	want := map[string]bool{}
	for _, n := range names {
		for n != "" && !want[n] {
			sc, ok := byName[n]
			if !ok {
				return nil, fmt.Errorf("unknown scenario %q", n)
			}
			want[n] = true
			n = sc.baseline
		}
	}
	var out []scenario
	for _, sc := range all {
		if want[sc.name] {
			out = append(out, sc)
		}
	}
	return out, nil
}
