package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

// The verdict fails a run whose RSS grew past 25% after warm-up, or that
// had an interval without a good call, and passes a flat one.
func TestVerdict(t *testing.T) {
	o := options{warmup: time.Minute}
	run := func(rss func(i int) int64, ok func(i int) int64) []sample {
		var ss []sample
		for i := range 20 {
			ss = append(ss, sample{at: time.Duration(i+1) * 30 * time.Second, rssKB: rss(i), okWeather: ok(i), okFiles: ok(i),
				counts: map[string]int64{"ok weather": 1, "bad: answered as documented": 1}})
		}
		return ss
	}
	flat := func(i int) int64 { return 40000 + int64(i%3)*5000 } // noisy, not growing
	always := func(int) int64 { return 100 }
	tests := []struct {
		name    string
		samples []sample
		want    string // "" for a pass
	}{
		{"flat", run(flat, always), ""},
		{"growing", run(func(i int) int64 { return 40000 + int64(i)*3000 }, always), "RSS grew"},
		{"growth only in warm-up", run(func(i int) int64 { return min(40000+int64(i)*20000, 80000) }, always), ""},
		{"calls stopped", run(flat, func(i int) int64 { return int64(max(0, 15-i)) }), "no good call"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := verdict(io.Discard, tt.samples, o)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("got %v, want a pass", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
	bad := run(flat, always)
	bad[len(bad)-1].counts["bad: 1 MB tool name: got 500/0, want 200/-32602"] = 1
	if err := verdict(io.Discard, bad, o); err == nil || !strings.Contains(err.Error(), "otherwise than documented") {
		t.Errorf("a bad input answered wrongly: got %v, want a failure", err)
	}
}
