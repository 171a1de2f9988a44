package probe

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/tracegate/tracegate/internal/redact"
)

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

const usage = `usage: tracegate probe [flags] URL

Checks that an MCP server works: initialize (or server/discover), tools/list,
and optionally tools/call, resources/read and prompts/get, each step in one
trace. Exit code 0 when every step passed, 1 when one failed, 2 on bad usage.

flags:
  -header K=V          add an HTTP header (repeatable)
  -bearer TOKEN        send Authorization: Bearer TOKEN
  -timeout 10s         time limit per step
  -protocol REV        2025-11-25 (default), 2025-06-18, 2025-03-26, 2026-07-28 (stateless) or auto
  -transport T         auto (default; sse when the path ends in /sse), streamable or sse
  -tool NAME           call this tool
  -args JSON           tool arguments, a JSON object
  -expect TEXT         fail unless the tool's text content contains TEXT
  -resource URI        read this resource
  -prompt NAME         get this prompt
  -prompt-args JSON    prompt arguments, a JSON object of strings
  -otlp URL            export the probe's spans over OTLP/HTTP (http://host:4318 or the gateway admin URL)
  -viewer URL          print a link to the trace in the tracegate viewer at URL
  -json                print JSON (one object per run)
  -interval D          repeat every D until interrupted
  -metrics-listen ADDR with -interval, serve Prometheus metrics at http://ADDR/metrics
  -insecure            skip TLS certificate verification
`

// cli is the parsed command line.
type cli struct {
	opts          Options
	otlp          string
	viewer        string
	json          bool
	interval      time.Duration
	metricsListen string
}

// Main runs `tracegate probe`; args are the arguments after "probe". It
// returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c, err := parseArgs(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "tracegate probe: %v\n\n%s", err, usage)
		return exitUsage
	}

	tp, err := newTracerProvider(ctx, c.otlp, c.opts.Insecure)
	if err != nil {
		fmt.Fprintf(stderr, "tracegate probe: %s\n", redact.Error(err))
		return exitUsage
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = tp.Shutdown(sctx) // each run was flushed already
	}()
	c.opts.TracerProvider = tp
	client := NewHTTPClient(c.opts.Insecure)
	defer client.CloseIdleConnections()
	c.opts.HTTPClient = client

	if c.interval == 0 {
		report, err := Run(ctx, c.opts)
		if err != nil {
			fmt.Fprintf(stderr, "tracegate probe: %s\n", redact.Error(err))
			return exitUsage
		}
		flush(ctx, tp, c.otlp, stderr)
		c.print(stdout, report)
		if report.OK {
			return exitOK
		}
		return exitFail
	}
	return c.repeat(ctx, tp, stdout, stderr)
}

// repeat probes every interval until ctx ends. The exit code follows the
// last complete run.
func (c *cli) repeat(ctx context.Context, tp *sdktrace.TracerProvider, stdout, stderr io.Writer) int {
	stats := NewStats(DefaultWindow)
	if c.metricsListen != "" {
		ln, err := net.Listen("tcp", c.metricsListen)
		if err != nil {
			// The probe cannot run as asked; 1 would blame the server.
			fmt.Fprintf(stderr, "tracegate probe: -metrics-listen: %v\n", err)
			return exitUsage
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", MetricsHandler(stats))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
		fmt.Fprintf(stderr, "metrics: http://%s/metrics\n", ln.Addr())
	}

	ticker := time.NewTicker(c.interval)
	defer ticker.Stop()
	for {
		report, err := Run(ctx, c.opts)
		if err != nil {
			fmt.Fprintf(stderr, "tracegate probe: %s\n", redact.Error(err))
			return exitUsage
		}
		if ctx.Err() != nil {
			break // an interrupted run says nothing about the server
		}
		stats.Observe(report)
		flush(ctx, tp, c.otlp, stderr)
		if c.json {
			c.print(stdout, report)
		} else {
			c.printRunLine(stdout, report, stats.Summary())
		}
		select {
		case <-ctx.Done():
		case <-ticker.C:
			continue
		}
		break
	}

	sum := stats.Summary()
	out := stdout
	if c.json {
		out = stderr // keep stdout one JSON object per line
	}
	printSummary(out, sum)
	if sum.Runs > 0 && sum.LastOK {
		return exitOK
	}
	return exitFail
}

// flush exports the run's spans; a failure is a warning, not a failed probe.
func flush(ctx context.Context, tp *sdktrace.TracerProvider, otlp string, stderr io.Writer) {
	if otlp == "" {
		return
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := tp.ForceFlush(fctx); err != nil {
		// The endpoint, and the exporter's error quoting it, may carry
		// credentials in their user info or query.
		fmt.Fprintf(stderr, "warning: OTLP export to %s failed: %s\n", redact.URL(tracesURL(otlp)), redact.Error(err))
	}
}

func parseArgs(args []string) (*cli, error) {
	c := &cli{}
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var headers headerFlag
	var bearer, argsJSON, promptArgs string
	fs.Var(&headers, "header", "")
	fs.StringVar(&bearer, "bearer", "", "")
	fs.DurationVar(&c.opts.Timeout, "timeout", DefaultTimeout, "")
	fs.StringVar(&c.opts.Protocol, "protocol", DefaultProtocol, "")
	fs.StringVar(&c.opts.Transport, "transport", TransportAuto, "")
	fs.StringVar(&c.opts.Tool, "tool", "", "")
	fs.StringVar(&argsJSON, "args", "", "")
	fs.StringVar(&c.opts.Expect, "expect", "", "")
	fs.StringVar(&c.opts.Resource, "resource", "", "")
	fs.StringVar(&c.opts.Prompt, "prompt", "", "")
	fs.StringVar(&promptArgs, "prompt-args", "", "")
	fs.StringVar(&c.otlp, "otlp", "", "")
	fs.StringVar(&c.viewer, "viewer", "", "")
	fs.BoolVar(&c.json, "json", false, "")
	fs.DurationVar(&c.interval, "interval", 0, "")
	fs.StringVar(&c.metricsListen, "metrics-listen", "", "")
	fs.BoolVar(&c.opts.Insecure, "insecure", false, "")

	// Flags may follow the URL: parse, take one positional, parse again.
	var positional []string
	rest := args
	for len(rest) > 0 {
		if err := fs.Parse(rest); err != nil {
			return nil, err
		}
		remaining := fs.Args()
		if consumed := len(rest) - len(remaining); consumed > 0 && rest[consumed-1] == "--" {
			positional = append(positional, remaining...)
			break
		}
		if len(remaining) == 0 {
			break
		}
		positional = append(positional, remaining[0])
		rest = remaining[1:]
	}
	switch len(positional) {
	case 0:
		return nil, errors.New("missing URL")
	case 1:
		c.opts.URL = positional[0]
	default:
		return nil, fmt.Errorf("want one URL, got %d arguments: %s", len(positional), strings.Join(positional, " "))
	}

	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["interval"] && c.interval <= 0 {
		return nil, fmt.Errorf("-interval %s: must be positive", c.interval)
	}
	if c.metricsListen != "" && c.interval == 0 {
		return nil, errors.New("-metrics-listen needs -interval")
	}
	if c.metricsListen != "" {
		if _, _, err := net.SplitHostPort(c.metricsListen); err != nil {
			return nil, fmt.Errorf("-metrics-listen %q: want HOST:PORT", c.metricsListen)
		}
	}
	if c.opts.Timeout <= 0 {
		return nil, fmt.Errorf("-timeout %s: must be positive", c.opts.Timeout)
	}
	if set["args"] {
		c.opts.Args = json.RawMessage(argsJSON)
	}
	if set["prompt-args"] {
		if err := json.Unmarshal([]byte(promptArgs), &c.opts.PromptArgs); err != nil || c.opts.PromptArgs == nil {
			return nil, errors.New("-prompt-args: want a JSON object of strings")
		}
	}
	c.opts.Header = headers.h
	if bearer != "" {
		if c.opts.Header == nil {
			c.opts.Header = http.Header{}
		}
		c.opts.Header.Set("Authorization", "Bearer "+bearer)
	}
	for _, u := range []struct{ name, value string }{{"otlp", c.otlp}, {"viewer", c.viewer}} {
		if u.value == "" {
			continue
		}
		if _, err := parseEndpoint(u.value); err != nil {
			return nil, fmt.Errorf("-%s: %w", u.name, err)
		}
	}
	if err := c.opts.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// headerFlag collects repeated -header K=V flags.
type headerFlag struct{ h http.Header }

func (f *headerFlag) String() string { return "" }

func (f *headerFlag) Set(kv string) error {
	k, v, ok := strings.Cut(kv, "=")
	if !ok {
		return fmt.Errorf("header %q: want K=V", kv)
	}
	k = strings.TrimSpace(k)
	if err := checkHeader(k, []string{v}); err != nil {
		return err
	}
	if f.h == nil {
		f.h = http.Header{}
	}
	f.h.Add(k, v)
	return nil
}

// viewerURL links to the trace in the tracegate viewer.
func (c *cli) viewerURL(traceID string) string {
	if c.viewer == "" {
		return ""
	}
	return strings.TrimSuffix(c.viewer, "/") + "/ui/?trace=" + url.QueryEscape(traceID)
}

// print writes one run's full report, as text or as one JSON line.
func (c *cli) print(w io.Writer, r Report) {
	if c.json {
		b, _ := json.Marshal(c.jsonReport(r))
		fmt.Fprintf(w, "%s\n", b)
		return
	}
	width := 14
	for _, s := range r.Steps {
		width = max(width, len(s.Name))
	}
	for _, s := range r.Steps {
		writeStep(w, "", s, width)
	}
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "warn %s\n", warn)
	}
	fmt.Fprintf(w, "trace_id=%s\n", r.TraceID)
	if v := c.viewerURL(r.TraceID); v != "" {
		fmt.Fprintf(w, "viewer_url=%s\n", v)
	}
}

func writeStep(w io.Writer, indent string, s Step, width int) {
	status, text := "ok  ", s.Detail
	if !s.OK {
		status, text = "FAIL", s.Error
	}
	fmt.Fprintf(w, "%s%s %-*s %8s  %s\n", indent, status, width, s.Name, formatLatency(s.Latency), text)
}

// printRunLine writes the one-line summary of a run in interval mode, then
// the failed steps.
func (c *cli) printRunLine(w io.Writer, r Report, sum Summary) {
	status, passed, total := "ok  ", 0, time.Duration(0)
	for _, s := range r.Steps {
		if s.OK {
			passed++
		}
		total += s.Latency
	}
	if !r.OK {
		status = "FAIL"
	}
	fmt.Fprintf(w, "%s %s %d/%d steps %8s  availability=%.1f%% (%d/%d)  trace_id=%s",
		r.Start.UTC().Format(time.RFC3339), status, passed, len(r.Steps), formatLatency(total),
		100*sum.Availability(), sum.OK, sum.Runs, r.TraceID)
	if v := c.viewerURL(r.TraceID); v != "" {
		fmt.Fprintf(w, "  viewer_url=%s", v)
	}
	fmt.Fprintln(w)
	for _, s := range r.Steps {
		if !s.OK {
			writeStep(w, "  ", s, len(s.Name))
		}
	}
}

func printSummary(w io.Writer, sum Summary) {
	fmt.Fprintf(w, "summary runs=%d ok=%d availability=%.1f%%\n", sum.Runs, sum.OK, 100*sum.Availability())
	width := 14
	for _, s := range sum.Steps {
		width = max(width, len(s.Name))
	}
	for _, s := range sum.Steps {
		fmt.Fprintf(w, "  %-*s p50=%s p90=%s p99=%s failures=%d/%d\n", width, s.Name,
			formatLatency(s.P50), formatLatency(s.P90), formatLatency(s.P99), s.Failures, s.Count)
	}
}

func formatLatency(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	}
}

// jsonReport is the -json form of a Report.
type jsonReport struct {
	Time      string     `json:"time"`
	URL       string     `json:"url"`
	OK        bool       `json:"ok"`
	TraceID   string     `json:"trace_id"`
	ViewerURL string     `json:"viewer_url,omitempty"`
	Transport string     `json:"transport"`
	Protocol  string     `json:"protocol,omitempty"`
	Server    string     `json:"server,omitempty"`
	SessionID string     `json:"session_id,omitempty"`
	Steps     []jsonStep `json:"steps"`
	Warnings  []string   `json:"warnings,omitempty"`
}

type jsonStep struct {
	Name      string  `json:"name"`
	OK        bool    `json:"ok"`
	LatencyMS float64 `json:"latency_ms"`
	Detail    string  `json:"detail,omitempty"`
	Error     string  `json:"error,omitempty"`
	ErrorType string  `json:"error_type,omitempty"`
}

func (c *cli) jsonReport(r Report) jsonReport {
	j := jsonReport{
		Time: r.Start.UTC().Format(time.RFC3339Nano), URL: r.URL, OK: r.OK, TraceID: r.TraceID,
		ViewerURL: c.viewerURL(r.TraceID), Transport: r.Transport, Protocol: r.Protocol,
		Server: r.Server, SessionID: r.SessionID, Steps: []jsonStep{}, Warnings: r.Warnings,
	}
	for _, s := range r.Steps {
		j.Steps = append(j.Steps, jsonStep{
			Name: s.Name, OK: s.OK, LatencyMS: float64(s.Latency.Microseconds()) / 1000,
			Detail: s.Detail, Error: s.Error, ErrorType: s.ErrorType,
		})
	}
	return j
}
