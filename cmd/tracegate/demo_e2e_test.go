//go:build linux

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// demoProcess is the built `tracegate demo` running as a child process of
// the test, in its own process group, as a shell runs a foreground job.
type demoProcess struct {
	cmd  *exec.Cmd
	pid  int
	done chan struct{} // closed once the process has exited
	err  error         // Wait's result, valid after done

	stderr lockedBuffer

	// From the banner.
	banner   string
	mcpURL   string
	adminURL string // the admin root, such as http://127.0.0.1:8418
	probe    string // the ready-to-paste probe command
	curl     string // the ready-to-paste curl command
	curlURL  string // the viewer link printed for the curl call
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var (
	bannerMCP    = regexp.MustCompile(`(?m)^  MCP endpoint   (http://\S+/mcp) `)
	bannerViewer = regexp.MustCompile(`(?m)^  trace viewer   (http://\S+)/ui/$`)
	bannerProbe  = regexp.MustCompile(`(?m)^  (\S+ probe .*)$`)
	bannerCurl   = regexp.MustCompile(`(?m)^  (curl -s (?:.*\\\n)+.*)$`)
	bannerOpen   = regexp.MustCompile(`(?m)^and open (http://\S+)$`)
)

// startDemo runs `tracegate demo` on free ports with args added and waits
// for its banner and for both backends to be ready. The process group is
// killed when t ends, whatever state the test left it in.
func startDemo(t *testing.T, args ...string) *demoProcess {
	t.Helper()
	d := &demoProcess{done: make(chan struct{})}
	d.cmd = exec.Command(selfBin, append([]string{"demo", "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0"}, args...)...)
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	d.cmd.Stderr = &d.stderr
	stdout, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.pid = d.cmd.Process.Pid
	banner := make(chan string, 1)
	go func() {
		// Read the banner, then keep draining so the demo never blocks on
		// a full pipe.
		var b strings.Builder
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			b.WriteString(sc.Text() + "\n")
			if sc.Text() == "Press Ctrl-C to stop." {
				banner <- b.String()
			}
		}
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			_ = syscall.Kill(-d.pid, syscall.SIGKILL)
			<-d.done
		}
	})

	select {
	case d.banner = <-banner:
	case <-d.done:
		t.Fatalf("demo exited before its banner: %v\nstderr:\n%s", d.err, d.stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("no banner within 30s\nstderr:\n%s", d.stderr.String())
	}
	for _, f := range []struct {
		re  *regexp.Regexp
		dst *string
	}{{bannerMCP, &d.mcpURL}, {bannerViewer, &d.adminURL}, {bannerProbe, &d.probe}, {bannerCurl, &d.curl}, {bannerOpen, &d.curlURL}} {
		m := f.re.FindStringSubmatch(d.banner)
		if m == nil {
			t.Fatalf("banner has no match for %s:\n%s", f.re, d.banner)
		}
		*f.dst = m[1]
	}
	d.waitReady(t)
	return d
}

// waitReady polls /readyz until both demo backends are ready.
func (d *demoProcess) waitReady(t *testing.T) {
	t.Helper()
	var last string
	poll(t, 30*time.Second, func() bool {
		var body struct {
			Backends []struct{ Name, State string }
		}
		code, err := getJSON(d.adminURL+"/readyz", &body)
		last = fmt.Sprintf("%d %v %+v", code, err, body)
		ready := 0
		for _, b := range body.Backends {
			if b.State == "ready" {
				ready++
			}
		}
		return ready == 2
	}, func() string { return "backends not ready: " + last + "\nstderr:\n" + d.stderr.String() })
}

// proc is one process as /proc shows it. start (clock ticks since boot)
// tells a process from a later one that reuses its PID.
type proc struct {
	pid, ppid int
	state     string
	start     uint64
	cmdline   []string
}

// interrupt sends the demo SIGINT, as Ctrl-C does, and checks that it
// exits 0 within limit and that none of kids (its children) survives it.
func (d *demoProcess) interrupt(t *testing.T, limit time.Duration, kids []proc) {
	t.Helper()
	if err := syscall.Kill(-d.pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.done:
	case <-time.After(limit):
		t.Fatalf("demo still running %v after SIGINT\nstderr:\n%s", limit, d.stderr.String())
	}
	if d.err != nil {
		t.Errorf("demo exit: got %v, want status 0\nstderr:\n%s", d.err, d.stderr.String())
	}
	// Children are stopped before the demo exits; allow a moment for the
	// kernel to finish tearing one down.
	var left []proc
	poll(t, 5*time.Second, func() bool {
		left = left[:0]
		for _, k := range kids {
			if alive(k) {
				left = append(left, k)
			}
		}
		return len(left) == 0
	}, func() string { return fmt.Sprintf("child processes survived the demo: %+v", left) })
}

// readProc reads /proc/<pid>; ok is false when the process is gone.
func readProc(pid int) (p proc, ok bool) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return p, false
	}
	// The command name in parentheses may contain spaces and parentheses;
	// the fields after the last ')' are fixed (proc_pid_stat(5)).
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return p, false
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 20 {
		return p, false
	}
	p.pid = pid
	p.state = f[0]
	p.ppid, _ = strconv.Atoi(f[1])
	p.start, _ = strconv.ParseUint(f[19], 10, 64)
	if raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil {
		p.cmdline = strings.Split(strings.TrimSuffix(string(raw), "\x00"), "\x00")
	}
	return p, true
}

// descendants lists every living descendant of pid.
func descendants(pid int) []proc {
	entries, _ := os.ReadDir("/proc")
	children := map[int][]proc{}
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, ok := readProc(n); ok {
			children[p.ppid] = append(children[p.ppid], p)
		}
	}
	var out []proc
	queue := []int{pid}
	for len(queue) > 0 {
		for _, c := range children[queue[0]] {
			out = append(out, c)
			queue = append(queue, c.pid)
		}
		queue = queue[1:]
	}
	return out
}

// alive reports whether p still runs: same PID and start time, and not a
// zombie (an exited process whose new parent has not reaped it yet).
func alive(p proc) bool {
	now, ok := readProc(p.pid)
	return ok && now.start == p.start && now.state != "Z"
}

// TestDemoCtrlCStopsEverything runs the demo with -traffic as a user
// would, checks that traffic reaches both backends, then presses Ctrl-C:
// SIGINT to the demo's process group, as a terminal sends it. The demo
// must exit 0 and leave no child process behind.
func TestDemoCtrlCStopsEverything(t *testing.T) {
	t.Parallel()
	d := startDemo(t, "-traffic")

	// The stdio backend is the demo binary re-executed as a child.
	var kids []proc
	poll(t, 10*time.Second, func() bool {
		kids = descendants(d.pid)
		for _, k := range kids {
			if len(k.cmdline) == 3 && k.cmdline[0] == selfBin && k.cmdline[1] == demoBackendCmd && k.cmdline[2] == "files" {
				return true
			}
		}
		return false
	}, func() string { return fmt.Sprintf("no `%s %s files` child among %+v", selfBin, demoBackendCmd, kids) })

	// -traffic calls both backends by itself; their traces reach the viewer
	// with the backends' own spans.
	for _, q := range []string{"tool=weather_get_weather&service=forecast-api", "tool=files_read_file&service=files-demo"} {
		var last string
		poll(t, 20*time.Second, func() bool {
			var body struct{ Traces []json.RawMessage }
			code, err := getJSON(d.adminURL+"/api/traces?"+q, &body)
			last = fmt.Sprintf("%d %v %d traces", code, err, len(body.Traces))
			return len(body.Traces) > 0
		}, func() string { return "no traffic trace for " + q + ": " + last + "\nstderr:\n" + d.stderr.String() })
	}

	d.interrupt(t, 20*time.Second, kids)
	if !strings.Contains(d.stderr.String(), "shutting down") {
		t.Errorf("stderr does not log the shutdown:\n%s", d.stderr.String())
	}
}

// TestDemoBannerCommands runs the two commands the demo prints for the user
// to paste, through a shell, and checks that each leaves a whole trace in
// the viewer.
func TestDemoBannerCommands(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	d := startDemo(t)
	if !strings.HasPrefix(d.probe, selfBin+" probe ") {
		t.Errorf("probe command: got %q, want it to run this binary, %s", d.probe, selfBin)
	}

	out, err := exec.Command("sh", "-c", d.probe).CombinedOutput()
	if err != nil {
		t.Fatalf("probe command: %v\n%s", err, out)
	}
	id, viewerURL := probeTrace(t, out)
	if want := d.adminURL + "/ui/?trace=" + id; viewerURL != want {
		t.Errorf("probe viewer_url: got %q, want %q", viewerURL, want)
	}
	spans := waitTrace(t, d.adminURL, id, fourTiers, nil)
	checkChain(t, spans, fourTiers)

	// The curl command is a line continued with backslashes, as printed.
	out, err = exec.Command("sh", "-c", d.curl).CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"city\":\"Oslo\"`) {
		t.Fatalf("curl command: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`/ui/\?trace=([0-9a-f]{32})$`).FindStringSubmatch(d.curlURL)
	if m == nil || !strings.HasPrefix(d.curlURL, d.adminURL+"/ui/") || !strings.Contains(d.curl, "traceparent: 00-"+m[1]+"-") {
		t.Fatalf("curl trace link %q: want the viewer link to the traceparent's trace in\n%s", d.curlURL, d.curl)
	}
	spans = waitTrace(t, d.adminURL, m[1], fourTiers[1:], nil)
	checkChain(t, spans, fourTiers[1:])
}

var (
	probeTraceID   = regexp.MustCompile(`(?m)^trace_id=([0-9a-f]{32})$`)
	probeViewerURL = regexp.MustCompile(`(?m)^viewer_url=(\S+)$`)
)

func probeTrace(t *testing.T, out []byte) (id, viewerURL string) {
	t.Helper()
	m, v := probeTraceID.FindSubmatch(out), probeViewerURL.FindSubmatch(out)
	if m == nil || v == nil {
		t.Fatalf("probe output has no trace_id and viewer_url:\n%s", out)
	}
	return string(m[1]), string(v[1])
}

// screenshotPath is where TRACEGATE_SCREENSHOT asks for the README's
// screenshot, relative to the module root; "" when unset.
func screenshotPath(t *testing.T) string {
	p := os.Getenv("TRACEGATE_SCREENSHOT")
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatal(errors.New("module root not found above cmd/tracegate"))
	}
	return filepath.Join(root, p)
}
