package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rssKB reads a process's resident set size from /proc.
func rssKB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.Fields(rest)[0])
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestServeBoundsRequests runs the binary with small limits and checks,
// from outside: 500 connections sending only the headers of a 4 MB POST
// leave its RSS small (refused past max_concurrent_requests, each with 503
// and Retry-After); a body sent at a trickle gets 408 after
// body_read_timeout; and /metrics counts every refusal by limit.
func TestServeBoundsRequests(t *testing.T) {
	t.Parallel()
	admin := freeAddr(t)
	p := startServe(t, fmt.Sprintf(`
listen: 127.0.0.1:0
admin_listen: %s
limits:
  max_concurrent_requests: 400
  body_read_timeout: 1s
telemetry:
  viewer: {enabled: false}
`, admin))
	addr := strings.TrimSuffix(strings.TrimPrefix(p.mcpURL, "http://"), "/mcp")
	before := rssKB(t, p.cmd.Process.Pid)

	const conns = 500
	open := make([]net.Conn, 0, conns)
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	for range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: %d\r\n\r\n{", 4<<20)
		open = append(open, c)
	}
	// Every connection gets one answer: 503 at once past the limit, 408
	// at body_read_timeout (1s) for the admitted ones.
	type answer struct {
		code       int
		retryAfter string
	}
	answers := make(chan answer, conns)
	for _, c := range open {
		go func() {
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				answers <- answer{}
				return
			}
			answers <- answer{resp.StatusCode, resp.Header.Get("Retry-After")}
		}()
	}
	time.Sleep(300 * time.Millisecond) // within the body deadline
	during := rssKB(t, p.cmd.Process.Pid)
	heap := heapAlloc(t, admin)
	t.Logf("RSS %d MB before, %d MB with %d connections announcing 4 MB each; heap allocated %d MB", before>>10, during>>10, conns, heap>>20)
	// Fresh pages are not touched by an allocation, so RSS alone would
	// miss a 4 MB buffer per request; the heap does not.
	if during-before > 150<<10 || heap > 150<<20 {
		t.Errorf("RSS grew by %d MB, heap allocated %d MB; 500 x 4 MB would be 2000 MB, want under 150 MB", (during-before)>>10, heap>>20)
	}
	counts := map[int]int{}
	for range conns {
		a := <-answers
		counts[a.code]++
		if a.code == http.StatusServiceUnavailable && a.retryAfter == "" {
			t.Error("503 without Retry-After")
		}
	}
	if counts[503] != conns-400 || counts[408] != 400 {
		t.Errorf("answers by status: %v; want %d x 503 (past max_concurrent_requests 400) and 400 x 408", counts, conns-400)
	}

	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`tracegate_limit_refusals_total{limit="max_concurrent_requests"`,
		`tracegate_limit_refusals_total{limit="body_read_timeout"`,
	} {
		line := grepLines(string(body), want)
		if line == "" {
			t.Errorf("/metrics has no %s", want)
			continue
		}
		f := strings.Fields(line)
		if n := f[len(f)-1]; (strings.Contains(want, "concurrent") && n != "100") || (strings.Contains(want, "timeout") && n != "400") {
			t.Errorf("/metrics: %s", line)
		}
	}
}

// heapAlloc reads go_memstats_heap_alloc_bytes from the admin listener.
func heapAlloc(t *testing.T, admin string) int64 {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(l, "go_memstats_heap_alloc_bytes "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return int64(n)
		}
	}
	t.Fatalf("no go_memstats_heap_alloc_bytes in /metrics")
	return 0
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
