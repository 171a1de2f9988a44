package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// worker is one simulated agent: its own HTTP connections, its own client
// and its own MCP session.
type worker struct {
	cs        *mcp.ClientSession
	shared    bool // cs belongs to the path, not the worker
	transport *http.Transport
	tool      string
	flags     byte
	rng       *rand.Rand
	lat       []time.Duration // latencies of measured calls
	errs      int64
	firstErr  error
}

// phases of a run, read by every worker before each call.
const (
	phaseWarm int32 = iota
	phaseMeasure
	phaseStop
)

// measurement is one scenario at one concurrency in one round.
type measurement struct {
	Scenario    string        `json:"scenario"`
	Concurrency int           `json:"concurrency"`
	Round       int           `json:"round"`
	Calls       int           `json:"calls"`
	Errors      int64         `json:"errors"`
	FirstError  string        `json:"first_error,omitempty"`
	Elapsed     time.Duration `json:"elapsed_ns"`
	PerSecond   float64       `json:"calls_per_second"`
	P50         time.Duration `json:"p50_ns"`
	P99         time.Duration `json:"p99_ns"`
	// Allocations and bytes per call in the whole process (load generator,
	// path and backend); differences between scenarios are what a path adds.
	AllocsPerCall float64 `json:"allocs_per_call"`
	BytesPerCall  float64 `json:"bytes_per_call"`
	// CPUPerCall is the CPU time (all of it: load generator, path and
	// backend, in the bench's process and the path's own) per call.
	CPUPerCall time.Duration `json:"cpu_per_call_ns"`
	// PathCPUPerCall is the part of CPUPerCall spent in the path's own
	// process; 0 when the path has none.
	PathCPUPerCall time.Duration `json:"path_cpu_per_call_ns,omitempty"`
	// ConnectP50 is the median time a worker took to open its session.
	ConnectP50 time.Duration `json:"connect_p50_ns"`
	// RedisRoundTrips is the Redis round trips the path made in the
	// measured window (heartbeats and session TTL renewals included), and
	// RedisPerCall that over the calls; nil for a path without Redis.
	RedisRoundTrips int64    `json:"redis_round_trips,omitempty"`
	RedisPerCall    *float64 `json:"redis_round_trips_per_call,omitempty"`
}

// measure connects conc workers to p, warms up, then drives tools/call
// from all of them for d and returns what it saw. If cpuProfile is not
// empty, the measured window is CPU-profiled to that file.
func measure(ctx context.Context, sc scenario, p *path, conc int, warm, d time.Duration, cpuProfile string) (measurement, error) {
	m := measurement{Scenario: sc.name, Concurrency: conc}
	workers := make([]*worker, conc)
	connects := make([]time.Duration, conc)
	var wg sync.WaitGroup
	errs := make([]error, conc)
	for i := range workers {
		wg.Go(func() {
			t0 := time.Now()
			workers[i], errs[i] = connectWorker(ctx, p, i, sc.traceFlags)
			connects[i] = time.Since(t0)
		})
	}
	wg.Wait()
	defer func() {
		for _, w := range workers {
			if w != nil {
				w.close()
			}
		}
	}()
	if err := errors.Join(errs...); err != nil {
		return m, err
	}
	m.ConnectP50 = percentile(connects, 0.50)

	var phase atomic.Int32
	for _, w := range workers {
		wg.Go(func() { w.loop(ctx, &phase) })
	}
	if err := pause(ctx, warm); err != nil {
		phase.Store(phaseStop)
		wg.Wait()
		return m, err
	}
	stopProfile, err := startCPUProfiles(ctx, p, cpuProfile)
	if err != nil {
		phase.Store(phaseStop)
		wg.Wait()
		return m, err
	}
	var pathBefore, pathAfter procStats
	if p.stats != nil {
		if pathBefore, err = p.stats(ctx); err != nil {
			phase.Store(phaseStop)
			wg.Wait()
			stopProfile()
			return m, err
		}
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var redis0 int64
	if p.roundTrips != nil {
		redis0 = p.roundTrips()
	}
	cpu0 := processCPU()
	start := time.Now()
	phase.Store(phaseMeasure)
	err = pause(ctx, d)
	phase.Store(phaseStop)
	// Calls in flight finish inside the window: they are counted.
	wg.Wait()
	m.Elapsed = time.Since(start)
	cpu := processCPU() - cpu0
	if p.roundTrips != nil {
		m.RedisRoundTrips = p.roundTrips() - redis0
	}
	runtime.ReadMemStats(&after)
	if p.stats != nil && err == nil {
		pathAfter, err = p.stats(ctx)
	}
	if perr := stopProfile(); err == nil {
		err = perr
	}
	if err != nil {
		return m, err
	}
	pathCPU := pathAfter.CPU - pathBefore.CPU
	cpu += pathCPU

	var all []time.Duration
	for _, w := range workers {
		all = append(all, w.lat...)
		m.Errors += w.errs
		if w.firstErr != nil && m.FirstError == "" {
			m.FirstError = w.firstErr.Error()
		}
	}
	m.Calls = len(all)
	if m.Calls == 0 {
		return m, fmt.Errorf("%s at concurrency %d: no call completed (%s)", sc.name, conc, m.FirstError)
	}
	m.PerSecond = float64(m.Calls) / m.Elapsed.Seconds()
	m.P50 = percentile(all, 0.50)
	m.P99 = percentile(all, 0.99)
	m.AllocsPerCall = float64(after.Mallocs-before.Mallocs+pathAfter.Mallocs-pathBefore.Mallocs) / float64(m.Calls)
	m.BytesPerCall = float64(after.TotalAlloc-before.TotalAlloc+pathAfter.Bytes-pathBefore.Bytes) / float64(m.Calls)
	m.CPUPerCall = cpu / time.Duration(m.Calls)
	m.PathCPUPerCall = pathCPU / time.Duration(m.Calls)
	if p.roundTrips != nil {
		perCall := float64(m.RedisRoundTrips) / float64(m.Calls)
		m.RedisPerCall = &perCall
	}
	return m, nil
}

// startCPUProfiles profiles this process to name and, when p has a
// process of its own, that process to name with .path before .prof, until
// the returned func is called; an empty name profiles nothing.
func startCPUProfiles(ctx context.Context, p *path, name string) (func() error, error) {
	stop, err := startCPUProfile(name)
	if err != nil || name == "" || p.profile == nil {
		return stop, err
	}
	stopPath, err := p.profile(ctx, strings.TrimSuffix(name, ".prof")+".path.prof")
	if err != nil {
		stop()
		return nil, err
	}
	return func() error { return errors.Join(stopPath(), stop()) }, nil
}

// startCPUProfile profiles the CPU to name until the returned func is
// called; an empty name profiles nothing.
func startCPUProfile(name string) (func() error, error) {
	if name == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(name)
	if err != nil {
		return nil, fmt.Errorf("creating CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting CPU profile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// connectWorker opens worker i's session and checks that a call goes the
// whole way to the backend and back.
func connectWorker(ctx context.Context, p *path, i int, flags byte) (*worker, error) {
	if p.shared != nil {
		w := &worker{cs: p.shared, shared: true, tool: p.tool, flags: flags, rng: newRand(), lat: make([]time.Duration, 0, 8192)}
		res, err := w.call(ctx)
		if err == nil {
			err = checkEcho(res)
		}
		if err != nil {
			return nil, fmt.Errorf("first call on the stdio session: %w", err)
		}
		return w, nil
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// A POST in flight and the standalone GET stream, with room to spare,
	// so that the load generator never churns connections.
	tr.MaxIdleConnsPerHost = 4
	endpoint := p.endpoint
	if p.workerEndpoint != nil {
		endpoint = p.workerEndpoint(i)
	}
	c := mcp.NewClient(&mcp.Implementation{Name: "bench-agent", Version: "1"}, &mcp.ClientOptions{Logger: discardLogger})
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: &http.Client{Transport: tr}}, &mcp.ClientSessionOptions{ProtocolVersion: statefulRevision})
	if err != nil {
		tr.CloseIdleConnections()
		return nil, fmt.Errorf("connecting to %s: %w", endpoint, err)
	}
	w := &worker{
		cs:        cs,
		transport: tr,
		tool:      p.tool,
		flags:     flags,
		rng:       newRand(),
		lat:       make([]time.Duration, 0, 8192),
	}
	res, err := w.call(ctx)
	if err == nil {
		err = checkEcho(res)
	}
	if err != nil {
		w.close()
		return nil, fmt.Errorf("first call at %s: %w", endpoint, err)
	}
	return w, nil
}

func checkEcho(res *mcp.CallToolResult) error {
	if res.IsError {
		return fmt.Errorf("tool error: %v", res.Content)
	}
	if len(res.Content) != 1 {
		return fmt.Errorf("got %d content blocks, want 1", len(res.Content))
	}
	tc, ok := res.Content[0].(*mcp.TextContent)
	if !ok || tc.Text != echoArgs {
		return fmt.Errorf("got %#v, want text %s", res.Content[0], echoArgs)
	}
	return nil
}

func (w *worker) close() {
	if w.shared {
		return
	}
	w.cs.Close()
	w.transport.CloseIdleConnections()
}

// loop calls until the phase is stop, recording the calls that started in
// the measure phase.
func (w *worker) loop(ctx context.Context, phase *atomic.Int32) {
	for {
		ph := phase.Load()
		if ph == phaseStop {
			return
		}
		t0 := time.Now()
		res, err := w.call(ctx)
		took := time.Since(t0)
		if ph != phaseMeasure {
			continue
		}
		if err == nil && res.IsError {
			err = errors.New("tool returned isError")
		}
		if err != nil {
			w.errs++
			if w.firstErr == nil {
				w.firstErr = err
			}
			if ctx.Err() != nil {
				return
			}
			continue
		}
		w.lat = append(w.lat, took)
	}
}

var echoRaw = json.RawMessage(echoArgs)

// call sends one tools/call whose _meta.traceparent carries a fresh random
// trace ID, as an instrumented agent does for every call (SEP-414).
func (w *worker) call(ctx context.Context) (*mcp.CallToolResult, error) {
	return w.cs.CallTool(ctx, &mcp.CallToolParams{
		Meta:      mcp.Meta{"traceparent": w.traceparent()},
		Name:      w.tool,
		Arguments: echoRaw,
	})
}

// traceparent formats version 00, a random trace-id and parent-id, and the
// worker's flags (https://www.w3.org/TR/trace-context/#traceparent-header).
func (w *worker) traceparent() string {
	var id [24]byte
	for {
		for i := 0; i < len(id); i += 8 {
			v := w.rng.Uint64()
			for j := range 8 {
				id[i+j] = byte(v >> (8 * j))
			}
		}
		// All-zero trace-id or parent-id are invalid; vanishingly rare.
		if !allZero(id[:16]) && !allZero(id[16:]) {
			break
		}
	}
	var b [55]byte
	copy(b[:3], "00-")
	hex.Encode(b[3:35], id[:16])
	b[35] = '-'
	hex.Encode(b[36:52], id[16:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{w.flags})
	return string(b[:])
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// percentile returns the q-quantile of ds (nearest rank); it sorts ds.
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(q*float64(len(ds))+0.5) - 1
	return ds[max(0, min(i, len(ds)-1))]
}

func newRand() *rand.Rand { return rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())) }
