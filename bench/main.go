// Command bench measures what tracegate costs on the request path: it
// drives tools/call, each call with a fresh sampled _meta.traceparent as
// instrumented agents send, at a fast Go MCP backend directly and through
// the gateway, at several concurrencies, every worker with its own session,
// all in one run. It prints throughput, p50/p99 latency, allocations per
// call, ratios against each scenario's baseline, and checks the targets.
//
// Everything runs in the bench's process: load generator, paths, backend
// and OTLP sinks. With -own-process, each gateway or proxy runs in a
// process of its own instead, as it is deployed; CPU time and allocations
// per call then count both processes, and -cpuprofile profiles the path's
// process apart.
//
//	go run ./bench                 # full run: 3s x 3 rounds per scenario and concurrency
//	go run ./bench -quick          # ~10s smoke run
//	go run ./bench -scenarios gateway -c 16 -rounds 1 -cpuprofile /tmp/cpu
//	go run ./bench -scenarios replicas -c 16   # two replicas sharing sessions through redis-server from PATH
//	go tool pprof -top -diff_base /tmp/cpu.direct-c16-r1.prof /tmp/cpu.gateway-c16-r1.prof
//	go run ./bench -own-process -scenarios gateway -c 16 -rounds 1 -cpuprofile /tmp/cpu
//	go tool pprof -top /tmp/cpu.gateway-c16-r1.path.prof   # the gateway's own process
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"
)

func main() {
	if os.Getenv(stdioServerEnv) == "1" {
		// The bench's own stdio backend: the stdio scenarios start this
		// binary again as their child.
		if err := serveStdio(); err != nil {
			fmt.Fprintln(os.Stderr, "bench stdio backend:", err)
			os.Exit(1)
		}
		return
	}
	if os.Getenv(pathChildEnv) != "" {
		// A gateway or proxy in a process of its own (bench/child.go).
		if err := servePathChild(); err != nil {
			fmt.Fprintln(os.Stderr, "bench path process:", err)
			os.Exit(1)
		}
		return
	}
	err := runMain(os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func runMain(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	s := settings{}
	fs.DurationVar(&s.Duration, "duration", 3*time.Second, "measured time per scenario, concurrency and round")
	fs.DurationVar(&s.Warmup, "warmup", 500*time.Millisecond, "warm-up before each measurement")
	fs.IntVar(&s.Rounds, "rounds", 3, "interleaved rounds; the median round is reported")
	fs.IntVar(&s.SessionSamples, "session-samples", 50, "backend sessions opened to measure their cost (0 skips)")
	quick := fs.Bool("quick", false, "smoke run of about 10s: -duration 500ms -warmup 150ms -rounds 1 -session-samples 10")
	conc := fs.String("c", "1,16", "comma-separated concurrencies (workers, each with its own session)")
	names := fs.String("scenarios", "", "comma-separated scenarios to run, with their baselines (default all: "+scenarioNames()+")")
	jsonOut := fs.String("json", "", "also write the results as JSON to this file (- for stdout, which then gets no table)")
	fs.BoolVar(&s.OwnProcess, "own-process", false, "run each gateway and proxy in a process of its own, as deployed, rather than in the bench's")
	fs.StringVar(&s.CPUProfile, "cpuprofile", "", "write a CPU profile of each measured window to PREFIX.SCENARIO-cCONC-rROUND.prof (and of a path's own process to ...path.prof)")
	memProfile := fs.String("memprofile", "", "write an allocation profile to this file at the end")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *quick {
		s.Duration, s.Warmup, s.Rounds, s.SessionSamples = 500*time.Millisecond, 150*time.Millisecond, 1, 10
	}
	var err error
	if s.Concurrency, err = parseInts(*conc); err != nil {
		return fmt.Errorf("-c: %w", err)
	}
	if *names != "" {
		s.Scenarios = strings.Split(*names, ",")
	}
	if s.Rounds < 1 || s.Duration <= 0 {
		return fmt.Errorf("-rounds and -duration must be positive")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := run(ctx, s, stderr)
	if err != nil {
		return err
	}
	if *memProfile != "" {
		if err := writeHeapProfile(*memProfile); err != nil {
			return err
		}
	}
	if *jsonOut != "-" {
		printReport(stdout, rep)
	}
	if *jsonOut != "" {
		if err := writeJSON(*jsonOut, stdout, rep); err != nil {
			return err
		}
	}
	// A path that did not export what it should measured something else.
	return rep.exportProblems()
}

func scenarioNames() string {
	var n []string
	for _, sc := range scenarios() {
		n = append(n, sc.name)
	}
	return strings.Join(n, ",")
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func writeHeapProfile(name string) error {
	f, err := os.Create(name)
	if err != nil {
		return fmt.Errorf("creating allocation profile: %w", err)
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		return fmt.Errorf("writing allocation profile: %w", err)
	}
	return nil
}

func writeJSON(name string, stdout io.Writer, rep *report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding results: %w", err)
	}
	b = append(b, '\n')
	if name == "-" {
		_, err = stdout.Write(b)
		return err
	}
	if err := os.WriteFile(name, b, 0o644); err != nil {
		return fmt.Errorf("writing results: %w", err)
	}
	return nil
}
