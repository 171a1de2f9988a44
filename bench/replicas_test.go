package main

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestReplicasScenario checks that the replicas scenario measures what it
// claims: two gateways sharing sessions through a real redis-server, each
// request of a session on the other replica than its last, calls that
// cost about no Redis round trip once both replicas have seen the
// session, and a report that gives the round trips per call.
func TestReplicasScenario(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not on PATH")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := startBackend(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	one, onePath, err := startReplicaSet(ctx, b.url, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	defer onePath.close()
	if one.redis != nil || onePath.roundTrips != nil {
		t.Error("the baseline has Redis; want one gateway without a cluster")
	}
	rs, p, err := startReplicaSet(ctx, b.url, 2, true)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()

	const conc = 4
	base, err := measure(ctx, scenario{name: "gateway-rr", traceFlags: sampled}, onePath, conc, 100*time.Millisecond, 400*time.Millisecond, "")
	if err != nil {
		t.Fatal(err)
	}
	hits0, hits1 := rs.replicas[0].hits.Load(), rs.replicas[1].hits.Load()
	m, err := measure(ctx, scenario{name: "replicas", baseline: "gateway-rr", traceFlags: sampled}, p, conc, 100*time.Millisecond, 400*time.Millisecond, "")
	if err != nil {
		t.Fatal(err)
	}
	if m.Calls == 0 || m.Errors != 0 {
		t.Fatalf("got %d calls and %d errors (%s), want calls and no errors", m.Calls, m.Errors, m.FirstError)
	}
	// Each replica serves about half: the round robin alternates.
	for i, h := range []int64{rs.replicas[0].hits.Load() - hits0, rs.replicas[1].hits.Load() - hits1} {
		if h < int64(m.Calls)/4 {
			t.Errorf("replica %d served %d requests for %d calls, want about half", i, h, m.Calls)
		}
	}
	// Only a session's standalone GET stream, opened while its first call
	// is sent, may reach a replica out of turn: at most one repeat per
	// session (the workers' and waitForTool's). One round robin shared by
	// the workers would repeat about every other request.
	if got, max := rs.repeats.Load(), int64(conc+1); got > max {
		t.Errorf("%d requests landed on the replica that served their session's last one, want at most %d (for %d calls)", got, max, m.Calls)
	}
	if m.RedisPerCall == nil {
		t.Fatal("no Redis round trips per call measured")
	}
	// Warm sessions cost no round trip; heartbeats and TTL renewals are
	// few.
	if *m.RedisPerCall >= 0.5 || m.RedisRoundTrips < 0 {
		t.Errorf("got %.3f Redis round trips per call (%d), want about none", *m.RedisPerCall, m.RedisRoundTrips)
	}
	if base.RedisPerCall != nil {
		t.Errorf("got Redis round trips for the baseline, which has no Redis")
	}

	base.Round, m.Round = 1, 1
	sel := []scenario{{name: "gateway-rr"}, {name: "replicas", baseline: "gateway-rr"}}
	rep := &report{Results: summarize(sel, []int{conc}, []measurement{base, m})}
	if r, ok := find(rep.Results, "replicas", conc); !ok || r.ThroughputRatio <= 0 || r.RedisPerCall == nil {
		t.Errorf("got replicas result %+v, want a ratio against gateway-rr and the round trips", r)
	}
	var out bytes.Buffer
	printReport(&out, rep)
	if !strings.Contains(out.String(), "Redis round trips") || !strings.Contains(out.String(), "per call (") {
		t.Errorf("report lacks the Redis round trips:\n%s", out.String())
	}
}

// TestReplicasSkippedWithoutRedis: with no redis-server on PATH, the run
// goes on without the replicas scenario and says why.
func TestReplicasSkippedWithoutRedis(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var progress bytes.Buffer
	rep, err := run(ctx, settings{
		Duration: 200 * time.Millisecond, Warmup: 50 * time.Millisecond, Rounds: 1,
		Concurrency: []int{1}, Scenarios: []string{"replicas"},
	}, &progress)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Skipped) != 1 || rep.Skipped[0].Scenario != "replicas" {
		t.Fatalf("got skipped %+v, want replicas", rep.Skipped)
	}
	if len(rep.Results) != 1 || rep.Results[0].Scenario != "gateway-rr" || rep.Results[0].Calls == 0 {
		t.Errorf("got results %+v, want gateway-rr alone, measured", rep.Results)
	}
	var out bytes.Buffer
	printReport(&out, rep)
	for _, s := range []string{progress.String(), out.String()} {
		if !strings.Contains(s, "replicas") || !strings.Contains(s, "redis-server not found on PATH; install it") {
			t.Errorf("no skip reason in:\n%s", s)
		}
	}
}
