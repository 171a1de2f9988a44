package gateway_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel/attribute"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/gateway"
	"github.com/tracegate/tracegate/internal/otlptest"
	"github.com/tracegate/tracegate/internal/plugin"
	"github.com/tracegate/tracegate/internal/telemetry"
	"github.com/tracegate/tracegate/internal/testlog"
	"github.com/tracegate/tracegate/mcptrace"
)

// Secrets the kit backend receives or returns; redact must keep every one
// of them out of what it scrubs, of the exported spans and of the logs.
const (
	kitEmail        = "ann@example.com"
	kitAWSKey       = "AKIAIOSFODNN7EXAMPLE"
	kitContactEmail = "bob@example.org"
)

// kitBackend is a real go-sdk MCP server over Streamable HTTP, named "kit"
// in the gateway, that counts every call reaching it and keeps the last
// arguments each tool or prompt received.
type kitBackend struct {
	url string

	mu    sync.Mutex
	calls map[string]int    // tool name, "prompt:<name>" or "resource:<uri>"
	last  map[string]string // the last arguments, as JSON
}

func startKit(t *testing.T) *kitBackend {
	t.Helper()
	k := &kitBackend{calls: map[string]int{}, last: map[string]string{}}
	s := mcp.NewServer(&mcp.Implementation{Name: "kit", Version: "1"}, nil)
	object := json.RawMessage(`{"type":"object"}`)
	textTool := func(name string, schema json.RawMessage, reply func(args json.RawMessage) string) {
		s.AddTool(&mcp.Tool{Name: name, InputSchema: schema}, func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			k.saw(name, req.Params.Arguments)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: reply(req.Params.Arguments)}}}, nil
		})
	}
	textTool("echo", json.RawMessage(`{"type":"object","properties":{"text":{"type":"string"},"n":{"type":"integer"}},"required":["text"]}`),
		func(args json.RawMessage) string { return string(args) })
	textTool("delete_file", object, func(json.RawMessage) string { return "deleted" })
	textTool("leak", object, func(json.RawMessage) string { return "contact " + kitEmail + ", key " + kitAWSKey })
	textTool("big", json.RawMessage(`{"type":"object","properties":{"n":{"type":"integer"}}}`), func(args json.RawMessage) string {
		var a struct{ N int }
		_ = json.Unmarshal(args, &a)
		return strings.Repeat("x", a.N)
	})
	s.AddPrompt(&mcp.Prompt{Name: "greet", Arguments: []*mcp.PromptArgument{{Name: "name", Required: true}}},
		func(_ context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			args, _ := json.Marshal(req.Params.Arguments)
			k.saw("prompt:greet", args)
			return &mcp.GetPromptResult{Messages: []*mcp.PromptMessage{{Role: "user", Content: &mcp.TextContent{Text: "Hello, " + req.Params.Arguments["name"]}}}}, nil
		})
	for _, uri := range []string{"mem://notes/contact", "mem://secret/key"} {
		s.AddResource(&mcp.Resource{URI: uri, Name: uri[strings.LastIndex(uri, "/")+1:], MIMEType: "text/plain"},
			func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
				k.saw("resource:"+req.Params.URI, nil)
				return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, MIMEType: "text/plain", Text: "write to " + kitContactEmail}}}, nil
			})
	}
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(srv.Close)
	k.url = srv.URL
	return k
}

func (k *kitBackend) saw(what string, args json.RawMessage) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.calls[what]++
	k.last[what] = string(args)
}

func (k *kitBackend) count(what string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.calls[what]
}

func (k *kitBackend) lastArgs(what string) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.last[what]
}

// pluginRig is a gateway with a plugin chain in front of the kit backend,
// traced as tracegate serve traces it, exporting spans and metrics over
// OTLP/HTTP to a real receiver, and logging to a buffer.
type pluginRig struct {
	kit  *kitBackend
	gw   *testGateway
	recv *otlptest.Receiver
	logs *testlog.Buffer
}

type rigOptions struct {
	registry plugin.Registry
	// capture opts in to recording tool arguments and results on spans,
	// with the chain's redactor, as telemetry.capture_arguments does.
	capture bool
}

func startPluginRig(t *testing.T, plugins []config.Plugin, ro rigOptions) *pluginRig {
	t.Helper()
	r := &pluginRig{kit: startKit(t), recv: otlptest.NewReceiver(t), logs: &testlog.Buffer{}}
	log := slog.New(slog.NewJSONHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	tcfg := config.Default().Telemetry
	tcfg.Exporter = "otlp"
	tcfg.OTLP.Endpoint = r.recv.URL()
	env := map[string]string{"OTEL_BSP_SCHEDULE_DELAY": "20", "OTEL_METRIC_EXPORT_INTERVAL": "100"}
	tel, err := telemetry.New(context.Background(), tcfg, telemetry.Options{Getenv: func(k string) string { return env[k] }, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tel.Shutdown(context.Background()) })

	chain, err := plugin.New(plugins, plugin.Options{TracerProvider: tel.TracerProvider, Logger: log, Registry: ro.registry})
	if err != nil {
		t.Fatal(err)
	}
	common := []mcptrace.Option{
		mcptrace.WithTracerProvider(tel.TracerProvider),
		mcptrace.WithMeterProvider(tel.MeterProvider),
		mcptrace.WithPropagators(tel.Propagator),
	}
	if ro.capture {
		common = append(common, mcptrace.WithContentCapture(4096), mcptrace.WithContentRedactor(chain.ContentRedactor()))
	}
	opts := gateway.Options{
		Logger:  log,
		Plugins: chain,
		Server:  mcptrace.NewServerTracer(common...),
		Backend: func(b config.Backend) *mcptrace.ClientTracer {
			return mcptrace.NewClientTracer(append(common[:len(common):len(common)], mcptrace.WithAttributes(attribute.String("tracegate.backend.name", b.Name)))...)
		},
	}
	cfg := baseConfig(config.Backend{Name: "kit", URL: r.kit.url, Transport: config.TransportStreamable, Timeout: config.Duration(5 * time.Second)})
	cfg.Plugins = plugins
	r.gw = startGateway(t, cfg, opts)

	cs := connect(t, r.gw.url+"/mcp", nil, nil)
	eventually(t, 10*time.Second, "kit's catalog at /mcp", func() bool {
		return slices.Contains(toolNames(t, cs), "kit_echo")
	})
	return r
}

// Protocol revisions: with sessions, and without (where plugins see no
// session id).
const (
	stateful  = "2025-11-25"
	stateless = "2026-07-28"
)

// client connects at /mcp, or at /mcp/kit with single, speaking revision.
func (r *pluginRig) client(t *testing.T, single bool, revision string) *mcp.ClientSession {
	t.Helper()
	u := r.gw.url + "/mcp"
	if single {
		u += "/kit"
	}
	return connect(t, u, nil, &mcp.ClientSessionOptions{ProtocolVersion: revision})
}

// traced returns _meta carrying a fresh sampled traceparent, and its trace
// id, so that a test can find the trace of one call.
func traced() (mcp.Meta, string) {
	var id [24]byte
	rand.Read(id[:])
	traceID, spanID := hex.EncodeToString(id[:16]), hex.EncodeToString(id[16:])
	return mcp.Meta{"traceparent": "00-" + traceID + "-" + spanID + "-01"}, traceID
}

func (r *pluginRig) callTool(t *testing.T, cs *mcp.ClientSession, name string, args any) (*mcp.CallToolResult, string, error) {
	t.Helper()
	meta, traceID := traced()
	res, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: name, Arguments: args, Meta: meta})
	return res, traceID, err
}

// shape waits for the trace's SERVER span (it ends after every span under
// it, so they were exported no later) and draws the trace with the
// attributes these tests check.
func (r *pluginRig) shape(t *testing.T, traceID string) string {
	t.Helper()
	r.recv.WaitForSpans(t, 10*time.Second, func(spans []otlptest.Span) bool {
		return slices.ContainsFunc(spans, func(s otlptest.Span) bool { return s.TraceID == traceID && s.Kind == "server" })
	})
	spans := r.recv.Trace(traceID)
	children := map[string][]otlptest.Span{}
	var roots []otlptest.Span
	for _, s := range spans {
		if slices.ContainsFunc(spans, func(p otlptest.Span) bool { return p.SpanID == s.ParentSpanID }) {
			children[s.ParentSpanID] = append(children[s.ParentSpanID], s)
		} else {
			roots = append(roots, s)
		}
	}
	var b strings.Builder
	var walk func(s otlptest.Span, parent *otlptest.Span, depth int)
	walk = func(s otlptest.Span, parent *otlptest.Span, depth int) {
		b.WriteString(strings.Repeat("  ", depth) + s.Name)
		switch s.Name {
		case "plugin.hook.invoke":
			fmt.Fprintf(&b, " %v count=%v", s.Attrs["plugin.hook.name"], s.Attrs["plugin.count"])
			if by, ok := s.Attrs["plugin.stopped_by"]; ok {
				fmt.Fprintf(&b, " stopped_by=%v", by)
			}
		case "plugin.execute":
			fmt.Fprintf(&b, " %v %v", s.Attrs["plugin.name"], s.Attrs["plugin.decision"])
			if parent == nil || s.Attrs["plugin.hook.name"] != parent.Attrs["plugin.hook.name"] {
				fmt.Fprintf(&b, " hook=%v (not its parent's)", s.Attrs["plugin.hook.name"])
			}
		default:
			b.WriteString(" [" + s.Kind + "]")
			if et, ok := s.Attrs["error.type"]; ok {
				fmt.Fprintf(&b, " error.type=%v", et)
			}
		}
		if s.StatusCode == "error" {
			b.WriteString(" !")
		}
		b.WriteByte('\n')
		for _, c := range children[s.SpanID] {
			walk(c, &s, depth+1)
		}
	}
	for _, s := range roots {
		walk(s, nil, 0)
	}
	return b.String()
}

func wantShape(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s: span tree\n%s\nwant\n%s", what, got, want)
	}
}

// wantRefusal checks the JSON-RPC error a refused call got.
func wantRefusal(t *testing.T, what string, err error, code int64, msg string) *jsonrpc.Error {
	t.Helper()
	var rpc *jsonrpc.Error
	if !errors.As(err, &rpc) {
		t.Fatalf("%s: got %v, want JSON-RPC error %d", what, err, code)
	}
	if rpc.Code != code || !strings.Contains(rpc.Message, msg) {
		t.Errorf("%s: got %d %q, want %d containing %q", what, rpc.Code, rpc.Message, code, msg)
	}
	return rpc
}

// everything renders every exported span, attribute, event and status as
// text, to search for values that must not be there.
func (r *pluginRig) everything() string {
	var b strings.Builder
	for _, s := range r.recv.Spans() {
		fmt.Fprintf(&b, "%s %s %q %v\n", s.Name, s.StatusCode, s.StatusMessage, s.Attrs)
		for _, e := range s.Events {
			fmt.Fprintf(&b, "  %s %v\n", e.Name, e.Attrs)
		}
	}
	return b.String()
}

func TestPluginDenyAndAllowGlobs(t *testing.T) {
	t.Parallel()
	r := startPluginRig(t, []config.Plugin{
		{Name: "no-deletes", Type: "deny", Tools: []string{"kit_delete*"}},
		{Name: "listed", Type: "allow", Options: map[string]any{"patterns": []any{"kit_echo", "kit_delete_*", "mem://notes/*"}}},
	}, rigOptions{})
	cs := r.client(t, false, stateful)

	res, echoTrace, err := r.callTool(t, cs, "kit_echo", map[string]any{"text": "hi"})
	if err != nil || res.IsError {
		t.Fatalf("kit_echo: %v %v", err, res)
	}
	_, delTrace, err := r.callTool(t, cs, "kit_delete_file", map[string]any{"path": "/etc"})
	rpc := wantRefusal(t, "kit_delete_file", err, plugin.CodeDenied, `denied by plugin "no-deletes": tool "kit_delete_file" matches "kit_delete*"`)
	if string(rpc.Data) != `{"plugin":"no-deletes"}` {
		t.Errorf("kit_delete_file: error data %s, want the plugin's name", rpc.Data)
	}
	_, _, err = r.callTool(t, cs, "kit_leak", nil)
	wantRefusal(t, "kit_leak", err, plugin.CodeDenied, `denied by plugin "listed"`)

	// /mcp/kit uses the backend's own names; the filters still see the
	// namespaced ones, so the policy holds there too.
	single := r.client(t, true, stateful)
	_, _, err = r.callTool(t, single, "delete_file", nil)
	wantRefusal(t, "delete_file at /mcp/kit", err, plugin.CodeDenied, `denied by plugin "no-deletes"`)
	_, err = single.ReadResource(ctxT(t), &mcp.ReadResourceParams{URI: "mem://secret/key"})
	wantRefusal(t, "mem://secret/key", err, plugin.CodeDenied, `denied by plugin "listed"`)
	if _, err := single.ReadResource(ctxT(t), &mcp.ReadResourceParams{URI: "mem://notes/contact"}); err != nil {
		t.Errorf("mem://notes/contact is allowed: %v", err)
	}

	for what, want := range map[string]int{"echo": 1, "delete_file": 0, "leak": 0, "resource:mem://secret/key": 0, "resource:mem://notes/contact": 1} {
		if got := r.kit.count(what); got != want {
			t.Errorf("backend saw %s %d times, want %d", what, got, want)
		}
	}

	// no-deletes applies only to kit_delete*: it makes no span here.
	wantShape(t, "allowed call", r.shape(t, echoTrace), `tools/call kit_echo [server]
  plugin.hook.invoke tool_pre_invoke count=1
    plugin.execute listed continue
  tools/call echo [client]
`)
	wantShape(t, "denied call", r.shape(t, delTrace), `tools/call kit_delete_file [server] error.type=-32030 !
  plugin.hook.invoke tool_pre_invoke count=1 stopped_by=no-deletes
    plugin.execute no-deletes deny
`)

	// The semconv operation metric still counts the denied call, with its
	// error.type.
	r.recv.WaitForMetric(t, 10*time.Second, "mcp.server.operation.duration", func(pts []otlptest.Point) bool {
		return slices.ContainsFunc(pts, func(p otlptest.Point) bool {
			return p.Attrs["error.type"] == "-32030" && p.Attrs["mcp.method.name"] == "tools/call" && p.Count >= 1
		})
	})
}

func TestPluginRateLimitSaysWhenToRetry(t *testing.T) {
	t.Parallel()
	r := startPluginRig(t, []config.Plugin{
		{Name: "per-session", Type: "ratelimit", Tools: []string{"kit_echo"}, Options: map[string]any{"rate": "1/m", "burst": 2}},
	}, rigOptions{})
	cs := r.client(t, false, stateful)
	for i := range 2 {
		if _, _, err := r.callTool(t, cs, "kit_echo", map[string]any{"text": "hi"}); err != nil {
			t.Fatalf("call %d within the burst: %v", i+1, err)
		}
	}
	_, traceID, err := r.callTool(t, cs, "kit_echo", map[string]any{"text": "hi"})
	rpc := wantRefusal(t, "third call", err, plugin.CodeRateLimited, `denied by plugin "per-session": rate limit of 1/m per session exceeded, retry after`)
	var data struct {
		Plugin       string
		RetryAfterMs int64
	}
	if err := json.Unmarshal(rpc.Data, &data); err != nil || data.Plugin != "per-session" || data.RetryAfterMs <= 0 || data.RetryAfterMs > 60_000 {
		t.Errorf("error data %s: want the plugin and 0 < retryAfterMs <= 60000", rpc.Data)
	}
	if got := r.kit.count("echo"); got != 2 {
		t.Errorf("backend saw %d calls, want the 2 within the burst", got)
	}
	// Another tool is not limited, and another session has its own bucket.
	if _, _, err := r.callTool(t, cs, "kit_big", map[string]any{"n": 1}); err != nil {
		t.Errorf("kit_big is not limited: %v", err)
	}
	if _, _, err := r.callTool(t, r.client(t, false, stateful), "kit_echo", map[string]any{"text": "hi"}); err != nil {
		t.Errorf("a new session has its own bucket: %v", err)
	}
	// Stateless clients have no session: they share one bucket, so leaving
	// sessions out does not escape the limit.
	a, b := r.client(t, false, stateless), r.client(t, true, stateless)
	if _, _, err := r.callTool(t, a, "kit_echo", map[string]any{"text": "hi"}); err != nil {
		t.Fatalf("stateless call at /mcp: %v", err)
	}
	if _, _, err := r.callTool(t, b, "echo", map[string]any{"text": "hi"}); err != nil {
		t.Fatalf("stateless call at /mcp/kit: %v", err)
	}
	_, _, err = r.callTool(t, a, "kit_echo", map[string]any{"text": "hi"})
	wantRefusal(t, "third stateless call", err, plugin.CodeRateLimited, "retry after")
	wantShape(t, "limited call", r.shape(t, traceID), `tools/call kit_echo [server] error.type=-32031 !
  plugin.hook.invoke tool_pre_invoke count=1 stopped_by=per-session
    plugin.execute per-session deny
`)
}

// Redaction rewrites arguments before the backend sees them and results
// before the client does, reports counts on the span, and the secrets reach
// no exported span and no log line, even with content capture on.
func TestPluginRedactArgumentsAndResults(t *testing.T) {
	t.Parallel()
	r := startPluginRig(t, []config.Plugin{
		{Name: "scrub", Type: "redact", Options: map[string]any{"patterns": []any{"email", "aws_access_key"}}},
	}, rigOptions{capture: true})
	cs := r.client(t, false, stateful)

	res, echoTrace, err := r.callTool(t, cs, "kit_echo", map[string]any{"text": "mail " + kitEmail + " now"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.kit.lastArgs("echo"), `{"text":"mail [REDACTED] now"}`; got != want {
		t.Errorf("backend got arguments %s, want %s", got, want)
	}
	if got, want := text(res), `{"text":"mail [REDACTED] now"}`; got != want {
		t.Errorf("client got %s, want %s", got, want)
	}
	res, leakTrace, err := r.callTool(t, cs, "kit_leak", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := text(res), "contact [REDACTED], key [REDACTED]"; got != want {
		t.Errorf("client got result %q, want %q", got, want)
	}

	wantShape(t, "echo", r.shape(t, echoTrace), `tools/call kit_echo [server]
  plugin.hook.invoke tool_pre_invoke count=1
    plugin.execute scrub modify
  tools/call echo [client]
  plugin.hook.invoke tool_post_invoke count=1
    plugin.execute scrub continue
`)
	wantShape(t, "leak", r.shape(t, leakTrace), `tools/call kit_leak [server]
  plugin.hook.invoke tool_pre_invoke count=1
    plugin.execute scrub continue
  tools/call leak [client]
  plugin.hook.invoke tool_post_invoke count=1
    plugin.execute scrub modify
`)
	// The events carry pattern names and counts only.
	events := map[string]int64{}
	for _, s := range r.recv.FindSpans(func(s otlptest.Span) bool { return s.Name == "plugin.execute" }) {
		for _, e := range s.Events {
			if e.Name == "redact" {
				events[fmt.Sprintf("%v/%v", e.Attrs["redact.target"], e.Attrs["redact.pattern"])] += e.Attrs["redact.count"].(int64)
			}
		}
	}
	if want := map[string]int64{"arguments/email": 1, "result/email": 1, "result/aws_access_key": 1}; fmt.Sprint(events) != fmt.Sprint(want) {
		t.Errorf("redact events %v, want %v", events, want)
	}

	all, logs := r.everything(), r.logs.String()
	if !strings.Contains(all, "gen_ai.tool.call.arguments") || !strings.Contains(all, "[REDACTED]") {
		t.Errorf("content capture recorded nothing redacted; the check below would be empty:\n%s", all)
	}
	for _, secret := range []string{kitEmail, kitAWSKey} {
		if strings.Contains(all, secret) {
			t.Errorf("exported spans hold %q:\n%s", secret, all)
		}
		if strings.Contains(logs, secret) {
			t.Errorf("logs hold %q:\n%s", secret, logs)
		}
	}
}

func TestPluginMaxSize(t *testing.T) {
	t.Parallel()
	r := startPluginRig(t, []config.Plugin{
		{Name: "limits", Type: "max_size", Options: map[string]any{"max_argument_bytes": 64, "max_result_bytes": "1KiB"}},
	}, rigOptions{})
	cs := r.client(t, false, stateful)
	if _, _, err := r.callTool(t, cs, "kit_echo", map[string]any{"text": "short"}); err != nil {
		t.Fatalf("small call: %v", err)
	}
	_, _, err := r.callTool(t, cs, "kit_echo", map[string]any{"text": strings.Repeat("y", 100)})
	wantRefusal(t, "large arguments", err, plugin.CodeDenied, `denied by plugin "limits": arguments are 111 bytes, over the limit of 64 bytes`)
	if got := r.kit.count("echo"); got != 1 {
		t.Errorf("backend saw %d echo calls, want only the small one", got)
	}
	if _, _, err := r.callTool(t, cs, "kit_big", map[string]any{"n": 100}); err != nil {
		t.Fatalf("small result: %v", err)
	}
	_, traceID, err := r.callTool(t, cs, "kit_big", map[string]any{"n": 2000})
	wantRefusal(t, "large result", err, plugin.CodeDenied, `denied by plugin "limits": result is `)
	if got := r.kit.count("big"); got != 2 {
		t.Errorf("backend saw %d big calls, want 2 (the result is checked after the call)", got)
	}
	wantShape(t, "large result", r.shape(t, traceID), `tools/call kit_big [server] error.type=-32030 !
  plugin.hook.invoke tool_pre_invoke count=1
    plugin.execute limits continue
  tools/call big [client]
  plugin.hook.invoke tool_post_invoke count=1 stopped_by=limits
    plugin.execute limits deny
`)
}

func TestPluginSchemaStopsBadCalls(t *testing.T) {
	t.Parallel()
	r := startPluginRig(t, []config.Plugin{{Name: "validate-args", Type: "schema"}}, rigOptions{})
	cs := r.client(t, false, stateful)
	if _, _, err := r.callTool(t, cs, "kit_echo", map[string]any{"text": "hi", "n": 2}); err != nil {
		t.Fatalf("valid call: %v", err)
	}
	tests := []struct {
		args any
		msg  string
	}{
		{map[string]any{"n": 2}, `denied by plugin "validate-args": tool "kit_echo": arguments: missing required properties`},
		{map[string]any{"text": 7}, `denied by plugin "validate-args": tool "kit_echo": argument "text": type`},
		{map[string]any{"text": "hi", "n": "two"}, `argument "n": type`},
	}
	for _, tt := range tests {
		_, _, err := r.callTool(t, cs, "kit_echo", tt.args)
		wantRefusal(t, fmt.Sprint(tt.args), err, plugin.CodeDenied, tt.msg)
	}
	if got := r.kit.count("echo"); got != 1 {
		t.Errorf("backend saw %d echo calls, want only the valid one", got)
	}
}

// probe is a test plugin type: it counts its runs and answers with handle.
type probe struct {
	runs   atomic.Int64
	handle func(ctx context.Context, c *plugin.Call) (plugin.Outcome, error)
}

func (p *probe) Handle(ctx context.Context, c *plugin.Call) (plugin.Outcome, error) {
	p.runs.Add(1)
	if p.handle == nil {
		return plugin.Outcome{}, nil
	}
	return p.handle(ctx, c)
}

// probes registers each probe as plugin type "t:<name>".
func probes(ps map[string]*probe) plugin.Registry {
	reg := plugin.Registry{}
	for name, p := range ps {
		reg["t:"+name] = func(config.Plugin, plugin.Options) (plugin.Plugin, error) { return p, nil }
	}
	return reg
}

func TestPluginSecondOfThreeDenies(t *testing.T) {
	t.Parallel()
	first, second, third := &probe{}, &probe{}, &probe{}
	second.handle = func(context.Context, *plugin.Call) (plugin.Outcome, error) {
		return plugin.Outcome{Decision: plugin.Deny, Reason: "not today"}, nil
	}
	// Listed out of order: priority decides.
	r := startPluginRig(t, []config.Plugin{
		{Name: "third", Type: "t:third", Priority: 30},
		{Name: "first", Type: "t:first", Priority: 10},
		{Name: "second", Type: "t:second", Priority: 20},
	}, rigOptions{registry: probes(map[string]*probe{"first": first, "second": second, "third": third})})
	_, traceID, err := r.callTool(t, r.client(t, false, stateful), "kit_echo", map[string]any{"text": "hi"})
	wantRefusal(t, "kit_echo", err, plugin.CodeDenied, `denied by plugin "second": not today`)
	if f, s, th := first.runs.Load(), second.runs.Load(), third.runs.Load(); f != 1 || s != 1 || th != 0 {
		t.Errorf("runs: first %d, second %d, third %d; want 1, 1, 0", f, s, th)
	}
	if got := r.kit.count("echo"); got != 0 {
		t.Errorf("backend saw %d calls, want none", got)
	}
	wantShape(t, "kit_echo", r.shape(t, traceID), `tools/call kit_echo [server] error.type=-32030 !
  plugin.hook.invoke tool_pre_invoke count=2 stopped_by=second
    plugin.execute first continue
    plugin.execute second deny
`)
}

// A plugin that panics, errors or overruns its timeout is reported, and
// on_error decides whether the call goes on; the gateway keeps serving.
func TestPluginFailures(t *testing.T) {
	t.Parallel()
	panics := &probe{handle: func(context.Context, *plugin.Call) (plugin.Outcome, error) { panic("plugin bug") }}
	slow := &probe{handle: func(ctx context.Context, _ *plugin.Call) (plugin.Outcome, error) {
		<-ctx.Done() // a plugin stuck on I/O, released only by its deadline
		return plugin.Outcome{}, ctx.Err()
	}}
	// A rewrite the gateway cannot send on: not a prompt result, and prompt
	// arguments that are not strings.
	mangle := &probe{handle: func(_ context.Context, c *plugin.Call) (plugin.Outcome, error) {
		if c.Hook == plugin.PromptPreFetch && strings.Contains(string(c.Arguments), "mangle-args") {
			return plugin.Outcome{Decision: plugin.Modify, Arguments: json.RawMessage(`{"name":7}`)}, nil
		}
		if c.Hook == plugin.PromptPostFetch {
			return plugin.Outcome{Decision: plugin.Modify, Result: json.RawMessage(`["not","a","result"]`)}, nil
		}
		return plugin.Outcome{}, nil
	}}
	r := startPluginRig(t, []config.Plugin{
		{Name: "mangle", Type: "t:mangle", Tools: []string{"kit_greet"}},
		{Name: "strict", Type: "t:panics", Tools: []string{"kit_echo"}},
		{Name: "lenient", Type: "t:panics2", Tools: []string{"kit_delete_file"}, OnError: "ignore"},
		{Name: "slow", Type: "t:slow", Tools: []string{"kit_big"}, Timeout: config.Duration(50 * time.Millisecond)},
	}, rigOptions{registry: probes(map[string]*probe{"panics": panics, "panics2": panics, "slow": slow, "mangle": mangle})})
	cs := r.client(t, false, stateful)

	_, traceID, err := r.callTool(t, cs, "kit_echo", map[string]any{"text": "hi"})
	wantRefusal(t, "on_error fail", err, plugin.CodePluginFailed, `plugin "strict" failed: panic: plugin bug`)
	if got := r.kit.count("echo"); got != 0 {
		t.Errorf("backend saw %d echo calls after a failed plugin, want none", got)
	}
	res, _, err := r.callTool(t, cs, "kit_delete_file", nil)
	if err != nil || text(res) != "deleted" {
		t.Errorf("on_error ignore: got %v %v, want the call to go on", res, err)
	}
	_, _, err = r.callTool(t, cs, "kit_big", map[string]any{"n": 1})
	wantRefusal(t, "timeout", err, plugin.CodePluginFailed, `plugin "slow" failed: timed out after 50ms`)
	if got := r.kit.count("big"); got != 0 {
		t.Errorf("backend saw %d big calls after a timeout, want none", got)
	}

	_, err = cs.GetPrompt(ctxT(t), &mcp.GetPromptParams{Name: "kit_greet", Arguments: map[string]string{"name": "mangle-args"}})
	wantRefusal(t, "prompt arguments rewritten to a number", err, plugin.CodePluginFailed, "a plugin on prompt_pre_fetch rewrote the arguments into JSON that is not valid prompt arguments")
	if got := r.kit.count("prompt:greet"); got != 0 {
		t.Errorf("backend got %d prompts with mangled arguments, want none", got)
	}
	_, err = cs.GetPrompt(ctxT(t), &mcp.GetPromptParams{Name: "kit_greet", Arguments: map[string]string{"name": "x"}})
	wantRefusal(t, "prompt result rewritten to a list", err, plugin.CodePluginFailed, "a plugin on prompt_post_fetch rewrote the result into JSON that is not valid prompt result")

	// Still serving: the same session and a new one.
	if _, _, err := r.callTool(t, cs, "kit_leak", nil); err != nil {
		t.Errorf("after the panics, the same session: %v", err)
	}
	if _, _, err := r.callTool(t, r.client(t, false, stateful), "kit_leak", nil); err != nil {
		t.Errorf("after the panics, a new session: %v", err)
	}

	wantShape(t, "panic", r.shape(t, traceID), `tools/call kit_echo [server] error.type=-32032 !
  plugin.hook.invoke tool_pre_invoke count=1 stopped_by=strict !
    plugin.execute strict deny !
`)
	exec, ok := r.recv.FindSpan(func(s otlptest.Span) bool { return s.TraceID == traceID && s.Name == "plugin.execute" })
	if !ok || exec.Attrs["error.type"] != "panic" || !slices.ContainsFunc(exec.Events, func(e otlptest.Event) bool { return e.Name == "exception" }) {
		t.Errorf("panicking plugin's span: %+v, want error.type=panic and an exception event", exec)
	}
	logs := r.logs.String()
	for _, want := range []string{`"plugin":"strict"`, `"plugin":"lenient"`, `"plugin":"slow"`, `"error_type":"panic"`, `"error_type":"timeout"`, `"on_error":"ignore"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
}

// seen is what a recording plugin saw of one call.
type seen struct {
	hook                 plugin.Hook
	backend, name, orig  string
	session              bool
	args, result, schema bool
}

// Every hook runs with what the gateway knows of the call, on both
// endpoints; prompts and resources are rewritten and denied like tools.
func TestPluginPromptAndResourceHooks(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var calls []seen
	recorder := &probe{handle: func(_ context.Context, c *plugin.Call) (plugin.Outcome, error) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, seen{c.Hook, c.Backend, c.Name, c.Original, c.SessionID != "", len(c.Arguments) > 0, len(c.Result) > 0, len(c.InputSchema) > 0})
		return plugin.Outcome{}, nil
	}}
	r := startPluginRig(t, []config.Plugin{
		{Name: "recorder", Type: "t:recorder"},
		{Name: "scrub", Type: "redact", Options: map[string]any{"patterns": "email"}},
		{Name: "no-secrets", Type: "deny", Tools: []string{"mem://secret/*"}},
	}, rigOptions{registry: probes(map[string]*probe{"recorder": recorder})})

	// /mcp with a session, /mcp/kit without one.
	for _, single := range []bool{false, true} {
		revision := stateful
		if single {
			revision = stateless
		}
		cs := r.client(t, single, revision)
		prompt, tool := "kit_greet", "kit_echo"
		if single {
			prompt, tool = "greet", "echo"
		}
		meta, promptTrace := traced()
		pr, err := cs.GetPrompt(ctxT(t), &mcp.GetPromptParams{Name: prompt, Arguments: map[string]string{"name": kitEmail}, Meta: meta})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := r.kit.lastArgs("prompt:greet"), `{"name":"[REDACTED]"}`; got != want {
			t.Errorf("backend got prompt arguments %s, want %s", got, want)
		}
		if got := pr.Messages[0].Content.(*mcp.TextContent).Text; got != "Hello, [REDACTED]" {
			t.Errorf("client got prompt %q", got)
		}
		meta, resTrace := traced()
		rr, err := cs.ReadResource(ctxT(t), &mcp.ReadResourceParams{URI: "mem://notes/contact", Meta: meta})
		if err != nil {
			t.Fatal(err)
		}
		if got := rr.Contents[0].Text; got != "write to [REDACTED]" {
			t.Errorf("client got resource %q", got)
		}
		_, err = cs.ReadResource(ctxT(t), &mcp.ReadResourceParams{URI: "mem://secret/key"})
		wantRefusal(t, "mem://secret/key", err, plugin.CodeDenied, `denied by plugin "no-secrets": resource "mem://secret/key" matches "mem://secret/*"`)
		if _, _, err := r.callTool(t, cs, tool, map[string]any{"text": "hi"}); err != nil {
			t.Fatal(err)
		}
		if single {
			continue
		}
		wantShape(t, "prompt", r.shape(t, promptTrace), `prompts/get kit_greet [server]
  plugin.hook.invoke prompt_pre_fetch count=2
    plugin.execute recorder continue
    plugin.execute scrub modify
  prompts/get greet [client]
  plugin.hook.invoke prompt_post_fetch count=2
    plugin.execute recorder continue
    plugin.execute scrub continue
`)
		wantShape(t, "resource", r.shape(t, resTrace), `resources/read [server]
  plugin.hook.invoke resource_pre_fetch count=1
    plugin.execute recorder continue
  resources/read [client]
  plugin.hook.invoke resource_post_fetch count=2
    plugin.execute recorder continue
    plugin.execute scrub modify
`)
	}
	if got := r.kit.count("resource:mem://secret/key"); got != 0 {
		t.Errorf("backend read the denied resource %d times", got)
	}

	// Per endpoint: prompt pre and post, resource pre and post, the denied
	// resource's pre (the recorder runs before the denial), tool pre and
	// post. Names are namespaced on /mcp/kit too.
	var want []seen
	for _, session := range []bool{true, false} {
		tool := func(h plugin.Hook, args, result, schema bool) seen {
			return seen{h, "kit", "kit_echo", "echo", session, args, result, schema}
		}
		// Post hooks see the arguments that were sent, too.
		prompt := func(h plugin.Hook, result bool) seen {
			return seen{h, "kit", "kit_greet", "greet", session, true, result, false}
		}
		res := func(h plugin.Hook, uri string, result bool) seen {
			return seen{h, "kit", uri, uri, session, false, result, false}
		}
		want = append(want,
			prompt(plugin.PromptPreFetch, false), prompt(plugin.PromptPostFetch, true),
			res(plugin.ResourcePreFetch, "mem://notes/contact", false), res(plugin.ResourcePostFetch, "mem://notes/contact", true),
			res(plugin.ResourcePreFetch, "mem://secret/key", false),
			tool(plugin.ToolPreInvoke, true, false, true), tool(plugin.ToolPostInvoke, true, true, false),
		)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(calls, want) {
		t.Errorf("the recorder saw\n%+v\nwant\n%+v", calls, want)
	}
}
