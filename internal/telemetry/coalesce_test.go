package telemetry_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tracegate/tracegate/internal/telemetry"
	"github.com/tracegate/tracegate/internal/testlog"
)

func jsonLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// TestCoalesceManySessions: one backend going down, seen by 5,000
// sessions from as many goroutines, writes its first line at once and one
// summary with the count; another event is not merged into it; and a
// session ID, given either way, never makes a record unique nor reaches
// the summary.
func TestCoalesceManySessions(t *testing.T) {
	t.Parallel()
	var out testlog.Buffer
	h := telemetry.NewCoalescingHandler(slog.NewJSONHandler(&out, nil), telemetry.CoalesceOptions{Window: time.Minute, Vary: []string{"session"}})
	log := slog.New(h)
	var wg sync.WaitGroup
	for i := range 5000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				log.Warn("backend session ended", "backend", "weather", "session", fmt.Sprint("s-", i))
			} else {
				log.With("session", fmt.Sprint("s-", i)).Warn("backend session ended", "backend", "weather")
			}
		}()
	}
	wg.Wait()
	log.Warn("backend session ended", "backend", "files", "session", "x")
	if got := jsonLines(t, out.String()); len(got) != 2 {
		t.Fatalf("before the window ends: got %d lines, want the first of each event:\n%s", len(got), out.String())
	}
	h.Flush()
	lines := jsonLines(t, out.String())
	// files happened once: no summary for it.
	if len(lines) != 3 {
		t.Fatalf("after Flush: got %d lines, want 3:\n%s", len(lines), out.String())
	}
	sum := lines[2]
	if sum["msg"] != "backend session ended" || sum["backend"] != "weather" || sum["repeats"] != float64(4999) || sum["level"] != "WARN" {
		t.Errorf("summary: got %v, want weather with repeats 4999", sum)
	}
	if _, ok := sum["session"]; ok {
		t.Errorf("summary carries one session's ID: %v", sum)
	}
}

func TestCoalesceFlushAndBound(t *testing.T) {
	t.Parallel()
	var out testlog.Buffer
	h := telemetry.NewCoalescingHandler(slog.NewJSONHandler(&out, nil), telemetry.CoalesceOptions{Window: time.Hour, MaxEvents: 2})
	log := slog.New(h)
	for range 3 {
		log.Warn("a")
		log.Warn("b")
		log.Warn("c") // a third event: past MaxEvents, written each time
	}
	log.Info("a") // another level is another event, but the bound holds
	if n := len(jsonLines(t, out.String())); n != 2+3+1 {
		t.Errorf("got %d lines, want 6 (a, b, c three times, info a):\n%s", n, out.String())
	}
	h.Flush()
	lines := jsonLines(t, out.String())
	var repeats []string
	for _, l := range lines {
		if r, ok := l["repeats"]; ok {
			repeats = append(repeats, fmt.Sprint(l["msg"], "=", r))
		}
	}
	if strings.Join(repeats, ",") != "a=2,b=2" && strings.Join(repeats, ",") != "b=2,a=2" {
		t.Errorf("Flush summaries: got %v, want a=2 and b=2", repeats)
	}
	h.Flush() // nothing pending: nothing more written
	if n := len(jsonLines(t, out.String())); n != len(lines) {
		t.Errorf("second Flush wrote %d more lines", n-len(lines))
	}
}

// TestCoalesceWindow: the summary is written by itself when the window
// ends, and the event starts afresh after it.
func TestCoalesceWindow(t *testing.T) {
	t.Parallel()
	var out testlog.Buffer
	log := slog.New(telemetry.NewCoalescingHandler(slog.NewJSONHandler(&out, nil), telemetry.CoalesceOptions{Window: 100 * time.Millisecond}))
	for range 3 {
		log.Warn("backend down", "backend", "weather")
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(jsonLines(t, out.String())) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	lines := jsonLines(t, out.String())
	if len(lines) != 2 || lines[1]["repeats"] != float64(2) {
		t.Fatalf("got %v, want the first line and a summary with repeats 2", lines)
	}
	log.Warn("backend down", "backend", "weather")
	if lines = jsonLines(t, out.String()); len(lines) != 3 || lines[2]["repeats"] != nil {
		t.Errorf("after the window, the event is written again: got %v", lines)
	}
}
