package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// tally counts outcomes by name, and keeps the first text of each note.
type tally struct {
	mu     sync.Mutex
	counts map[string]int64
	notes  map[string]string
}

func newTally() *tally { return &tally{counts: map[string]int64{}, notes: map[string]string{}} }

func (t *tally) add(name string, n int64) {
	t.mu.Lock()
	t.counts[name] += n
	t.mu.Unlock()
}

func (t *tally) note(name, text string) {
	t.mu.Lock()
	if _, ok := t.notes[name]; !ok {
		t.notes[name] = text
	}
	t.mu.Unlock()
}

func (t *tally) snapshot() map[string]int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]int64, len(t.counts))
	for k, v := range t.counts {
		out[k] = v
	}
	return out
}

// sample is what the soak sees of the gateway at one moment.
type sample struct {
	at                 time.Duration
	rssKB, heapKB      int64
	goroutines, fds    int64
	counts             map[string]int64
	okWeather, okFiles int64 // good calls since the previous sample
}

const header = "  time  rss_MB heap_MB gorout  fds    ok(weather files, this interval)  other outcomes (cumulative)"

// takeSample reads the gateway's process and /metrics, and the good calls
// since prev.
func takeSample(at time.Duration, pid int, admin string, t *tally, prev map[string]int64) sample {
	s := sample{at: at, counts: t.snapshot(), rssKB: -1, heapKB: -1, goroutines: -1, fds: -1}
	s.okWeather, s.okFiles = s.counts["ok weather"]-prev["ok weather"], s.counts["ok files"]-prev["ok files"]
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				s.rssKB, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			}
		}
	}
	if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		s.fds = int64(len(fds))
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	if resp, err := hc.Get(admin + "/metrics"); err == nil {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			name, v, _ := strings.Cut(sc.Text(), " ")
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				continue
			}
			switch name {
			case "go_memstats_heap_inuse_bytes":
				s.heapKB = int64(f) / 1024
			case "go_goroutines":
				s.goroutines = int64(f)
			}
		}
		resp.Body.Close()
	}
	return s
}

func (s sample) line() string {
	var other []string
	for k, v := range s.counts {
		if !strings.HasPrefix(k, "ok ") {
			other = append(other, fmt.Sprintf("%s=%d", k, v))
		}
	}
	slices.Sort(other)
	return fmt.Sprintf("%6s %7.1f %7.1f %6d %4d    %6d %6d    %s", fmtDur(s.at), float64(s.rssKB)/1024, float64(s.heapKB)/1024,
		s.goroutines, s.fds, s.okWeather, s.okFiles, strings.Join(other, ", "))
}

func fmtDur(d time.Duration) string {
	d = d.Round(time.Second)
	return fmt.Sprintf("%d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}

// verdict checks the samples: RSS after warm-up flat (the last third's
// mean within +25% of the first third's), and good calls to each backend
// in every interval. It prints the figures and returns an error if a
// check failed.
func verdict(out io.Writer, samples []sample, o options) error {
	var after []sample
	for _, s := range samples {
		if s.at > o.warmup {
			after = append(after, s)
		}
	}
	if len(after) < 3 {
		return fmt.Errorf("only %d samples after the %s warm-up: run longer", len(after), o.warmup)
	}
	third := len(after) / 3
	mean := func(ss []sample, f func(sample) int64) float64 {
		var sum float64
		for _, s := range ss {
			sum += float64(f(s))
		}
		return sum / float64(len(ss))
	}
	first, last := after[:third], after[len(after)-third:]
	rss := func(s sample) int64 { return s.rssKB }
	heap := func(s sample) int64 { return s.heapKB }
	gor := func(s sample) int64 { return s.goroutines }
	fds := func(s sample) int64 { return s.fds }
	fmt.Fprintf(out, "after warm-up, first third vs last third (means): rss %.1f -> %.1f MB, heap %.1f -> %.1f MB, goroutines %.0f -> %.0f, fds %.0f -> %.0f\n",
		mean(first, rss)/1024, mean(last, rss)/1024, mean(first, heap)/1024, mean(last, heap)/1024,
		mean(first, gor), mean(last, gor), mean(first, fds), mean(last, fds))
	final := samples[len(samples)-1].counts
	var keys []string
	for k := range final {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	fmt.Fprintln(out, "totals:")
	for _, k := range keys {
		fmt.Fprintf(out, "  %-60s %d\n", k, final[k])
	}
	var failed []string
	if growth := mean(last, rss) / mean(first, rss); growth > 1.25 {
		failed = append(failed, fmt.Sprintf("RSS grew %.0f%% after warm-up (limit 25%%)", (growth-1)*100))
	}
	for _, s := range samples {
		if s.at > o.warmup && (s.okWeather == 0 || s.okFiles == 0) {
			failed = append(failed, fmt.Sprintf("no good call succeeded on a backend in the interval ending %s", fmtDur(s.at)))
		}
	}
	for k := range final {
		if strings.Contains(k, ": got ") || strings.HasSuffix(k, "transport error") {
			failed = append(failed, "bad input answered otherwise than documented: "+k)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("FAIL:\n  %s", strings.Join(failed, "\n  "))
	}
	fmt.Fprintln(out, "PASS: memory flat after warm-up, good calls succeeded in every interval, bad input answered as documented")
	return nil
}

// silentCollector is an OTLP endpoint that accepts connections, reads
// what it is sent, and never answers.
type silentCollector struct {
	addr string
	ln   net.Listener
}

func startSilentCollector() (*silentCollector, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, conn); conn.Close() }()
		}
	}()
	return &silentCollector{addr: ln.Addr().String(), ln: ln}, nil
}

func (c *silentCollector) close() { c.ln.Close() }
