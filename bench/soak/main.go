// Command soak runs a built tracegate for a bounded time in front of real
// backends (the weather demo over HTTP, the files demo as a stdio child)
// while good clients call tools at a steady rate, a bad client sends what
// the limits exist for, the backends are killed and started again, and the
// OTLP collector accepts connections and never answers. Every interval it
// prints the gateway's RSS, Go heap, goroutines and open file descriptors,
// and the calls by outcome. At the end it checks that RSS stayed flat
// after warm-up and that good calls kept succeeding, and exits 1 if not.
//
//	go run ./bench/soak                  # 10 minutes
//	go run ./bench/soak -duration 2m     # shorter
//
// Everything runs on 127.0.0.1 and stops with the run. Linux only: it reads
// /proc.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

type options struct {
	duration, interval, warmup, killEvery time.Duration
	clients                               int
	callEvery                             time.Duration
	keep                                  bool
}

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", 10*time.Minute, "how long to soak")
	flag.DurationVar(&o.interval, "interval", 30*time.Second, "how often to print a sample")
	flag.DurationVar(&o.warmup, "warmup", time.Minute, "samples before this are not compared")
	flag.DurationVar(&o.killEvery, "kill-every", time.Minute, "how often each backend is killed")
	flag.IntVar(&o.clients, "clients", 4, "good clients, each with its own session")
	flag.DurationVar(&o.callEvery, "call-every", 100*time.Millisecond, "each good client's pause between calls")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (binaries, config, gateway log)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, out io.Writer) error {
	dir, err := os.MkdirTemp("", "tracegate-soak")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(out, "work directory:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	bins := map[string]string{}
	for name, pkg := range map[string]string{
		"tracegate": "github.com/tracegate/tracegate/cmd/tracegate",
		"weather":   "github.com/tracegate/tracegate/examples/weather",
		"files":     "github.com/tracegate/tracegate/examples/files",
	} {
		bins[name] = filepath.Join(dir, name)
		if b, err := exec.CommandContext(ctx, "go", "build", "-o", bins[name], pkg).CombinedOutput(); err != nil {
			return fmt.Errorf("building %s: %v\n%s", pkg, err, b)
		}
	}

	otlp, err := startSilentCollector()
	if err != nil {
		return err
	}
	defer otlp.close()
	weatherAddr, mcpAddr, adminAddr := freeAddr(), freeAddr(), freeAddr()
	weather := &child{argv: []string{bins["weather"], "-listen", weatherAddr}, log: filepath.Join(dir, "weather.log")}
	if err := weather.start(); err != nil {
		return err
	}
	defer weather.kill()

	cfg := filepath.Join(dir, "tracegate.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`listen: %s
admin_listen: %s
backends:
  - {name: weather, url: "http://%s/mcp", timeout: 5s}
  - {name: files, command: [%q], timeout: 5s}
limits: {body_read_timeout: 3s}
telemetry:
  viewer: {max_spans: 5000}   # full within the warm-up, then evicting
  exporter: otlp
  otlp: {endpoint: "http://%s", timeout: 2s}
  flush_timeout: 2s
log: {level: warn}
`, mcpAddr, adminAddr, weatherAddr, bins["files"], otlp.addr)), 0o600); err != nil {
		return err
	}
	gw := &child{argv: []string{bins["tracegate"], "serve", "-config", cfg}, log: filepath.Join(dir, "tracegate.log")}
	if err := gw.start(); err != nil {
		return err
	}
	defer gw.kill()
	admin := "http://" + adminAddr
	if err := waitReady(ctx, admin+"/readyz", 30*time.Second); err != nil {
		return fmt.Errorf("gateway: %w (log: %s)", err, gw.log)
	}
	endpoint := "http://" + mcpAddr + "/mcp"
	fmt.Fprintf(out, "soak: %s, gateway pid %d at %s, %d good clients every %s, backends killed every %s; load average %s\n",
		o.duration, gw.pid(), endpoint, o.clients, o.callEvery, o.killEvery, loadAvg())

	tally := newTally()
	runCtx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	done := make(chan struct{})
	var workers int
	spawn := func(f func(context.Context)) {
		workers++
		go func() { defer func() { done <- struct{}{} }(); f(runCtx) }()
	}
	for i := range o.clients {
		spawn(func(ctx context.Context) { goodClient(ctx, endpoint, i, o.callEvery, tally) })
	}
	spawn(func(ctx context.Context) { badClient(ctx, endpoint, mcpAddr, tally) })
	spawn(func(ctx context.Context) { slowBodies(ctx, mcpAddr, tally) })
	spawn(func(ctx context.Context) { killBackends(ctx, o.killEvery, weather, gw.pid(), bins["files"], tally) })

	var samples []sample
	start := time.Now()
	tick := time.NewTicker(o.interval)
	fmt.Fprintln(out, header)
	for loop := true; loop; {
		select {
		case <-tick.C:
			var prev map[string]int64
			if len(samples) > 0 {
				prev = samples[len(samples)-1].counts
			}
			s := takeSample(time.Since(start), gw.pid(), admin, tally, prev)
			samples = append(samples, s)
			fmt.Fprintln(out, s.line())
		case <-runCtx.Done():
			loop = false
		}
	}
	tick.Stop()
	for range workers {
		<-done
	}
	if ctx.Err() != nil {
		return errors.New("interrupted")
	}
	code := gw.terminate(15 * time.Second)
	fmt.Fprintf(out, "gateway exited with code %d after SIGTERM (the collector never answers, so a final flush that loses spans exits 1); load average %s\n", code, loadAvg())
	fmt.Fprintln(out, "gateway log lines by level:", logLevels(gw.log))
	return verdict(out, samples, o)
}

// logLevels counts a JSON log's lines by level.
func logLevels(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	counts := map[string]int{}
	for line := range strings.Lines(string(b)) {
		level := "other"
		if _, rest, ok := strings.Cut(line, `"level":"`); ok {
			level, _, _ = strings.Cut(rest, `"`)
		}
		counts[level]++
	}
	return fmt.Sprint(counts)
}

// child is a process the soak starts, in its own process group so that
// killing it takes its children too.
type child struct {
	argv []string
	log  string
	cmd  *exec.Cmd
	wait chan error
}

func (c *child) start() error {
	f, err := os.OpenFile(c.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	c.cmd = exec.Command(c.argv[0], c.argv[1:]...)
	c.cmd.Stdout, c.cmd.Stderr = f, f
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("starting %s: %w", c.argv[0], err)
	}
	c.wait = make(chan error, 1)
	go func() { c.wait <- c.cmd.Wait(); f.Close() }()
	return nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// kill ends the child's process group with SIGKILL and waits for it.
func (c *child) kill() {
	if c.cmd == nil || c.cmd.ProcessState != nil {
		return
	}
	syscall.Kill(-c.pid(), syscall.SIGKILL)
	<-c.wait
	c.wait <- nil // later calls return at once
}

// terminate sends SIGTERM and returns the exit code, or kills the child
// after grace.
func (c *child) terminate(grace time.Duration) int {
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.wait:
		c.wait <- nil
	case <-time.After(grace):
		c.kill()
	}
	return c.cmd.ProcessState.ExitCode()
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitReady(ctx context.Context, url string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not ready within %s", url, within)
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}
