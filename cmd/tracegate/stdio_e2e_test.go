package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tracegate/tracegate/internal/otlptest"
)

// stdioConfig writes a configuration for `tracegate stdio`: the demo
// weather server and a witness over HTTP, a deny plugin, tracing to recv,
// and the admin listener on admin ("off" for none).
func stdioConfig(t *testing.T, recv *otlptest.Receiver, admin string) string {
	t.Helper()
	weatherURL := startDemoHTTPBackends(t, recv.URL())
	w := startWitness(t, witnessSpec{name: "w"}, recv.URL())
	path := filepath.Join(t.TempDir(), "tracegate.yaml")
	yaml := fmt.Sprintf(`
admin_listen: %q
backends:
  - {name: weather, url: %s}
  - {name: w, url: %s}
plugins:
  - {name: no-radar, type: deny, tools: ["weather_flaky*"], reason: the radar is off}
telemetry:
  exporter: otlp
  otlp: {endpoint: %s}
  viewer: {enabled: false}
`, admin, weatherURL, w.url, recv.URL())
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// metaOn sets _meta on the client's outgoing requests of one method.
func metaOn(method string, meta mcp.Meta) mcp.Middleware {
	return func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, m string, req mcp.Request) (mcp.Result, error) {
			if m == method {
				req.GetParams().SetMeta(meta)
			}
			return next(ctx, m, req)
		}
	}
}

// TestStdioServesAnAgent runs `tracegate stdio` as a desktop agent would,
// as the child of a go-sdk client over its stdin and stdout: the client
// lists tools, calls one through a real HTTP backend, gets a backend's log
// message and answers its sampling and elicitation requests, and the
// traceparent of its initialize is the context of the session's spans.
// Closing stdin ends the process with exit code 0, telemetry flushed.
func TestStdioServesAnAgent(t *testing.T) {
	recv := otlptest.NewReceiver(t)
	admin := freeAddr(t)
	path := stdioConfig(t, recv, admin)
	agent, tp := agentContext(true)

	var mu sync.Mutex
	var logs []string
	c := mcp.NewClient(&mcp.Implementation{Name: "desktop-agent"}, &mcp.ClientOptions{
		LoggingMessageHandler: func(_ context.Context, req *mcp.LoggingMessageRequest) {
			mu.Lock()
			defer mu.Unlock()
			logs = append(logs, fmt.Sprint(req.Params.Data))
		},
		CreateMessageHandler: func(context.Context, *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return &mcp.CreateMessageResult{Model: "m", Role: "assistant", Content: &mcp.TextContent{Text: "hello"}}, nil
		},
		ElicitationHandler: func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{}}, nil
		},
	})
	c.AddSendingMiddleware(metaOn("initialize", mcp.Meta{"traceparent": tp}))
	cmd := exec.Command(selfBin, "stdio", "-config", path)
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := c.Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatalf("connect: %v\n%s", err, stderr)
	}

	// Backends connect in the background; wait for both catalogs.
	var names []string
	for {
		res, err := cs.ListTools(ctx, nil)
		if err != nil {
			t.Fatalf("tools/list: %v\n%s", err, stderr)
		}
		names = names[:0]
		for _, tool := range res.Tools {
			names = append(names, tool.Name)
		}
		if strings.Contains(strings.Join(names, " "), "weather_get_weather") && strings.Contains(strings.Join(names, " "), "w_chatty") {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("tools/list: got %v, want weather_get_weather and w_chatty\n%s", names, stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}

	call, tpCall := agentContext(true)
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "weather_get_weather", Arguments: map[string]any{"city": "Lisbon"}, Meta: mcp.Meta{"traceparent": tpCall}})
	if err != nil || res.IsError {
		t.Fatalf("weather_get_weather: %v %+v", err, res)
	}
	if got := fmt.Sprint(res.StructuredContent); !strings.Contains(got, "Lisbon") {
		t.Errorf("weather_get_weather: got %s, want Lisbon's forecast", got)
	}
	_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "weather_flaky_radar", Arguments: map[string]any{"city": "Lisbon"}})
	if err == nil || !strings.Contains(err.Error(), `denied by plugin "no-radar"`) {
		t.Errorf("weather_flaky_radar: got %v, want the deny plugin's refusal", err)
	}

	// The gateway passes the level on to the backend in the background:
	// call until the call's log message arrives.
	if err := cs.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: "info"}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "w_chatty", Arguments: map[string]any{}})
		if err != nil || res.IsError {
			t.Fatalf("w_chatty: %v %+v", err, res)
		}
		mu.Lock()
		n := len(logs)
		mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	gotLogs := strings.Join(logs, ",")
	mu.Unlock()
	if gotLogs != "working" {
		t.Errorf("log messages: got %q, want the backend's %q once", gotLogs, "working")
	}

	// The admin listener runs beside the stdio session.
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !regexp.MustCompile(`(?m)^tracegate_backend_up\{.*tracegate_backend_name="weather"\} 1$`).Match(metrics) {
		t.Errorf("/metrics of the admin listener lacks tracegate_backend_up for weather:\n%s", grepLines(string(metrics), "tracegate_backend_up"))
	}

	if err := cs.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if code := cmd.ProcessState.ExitCode(); code != exitOK {
		t.Errorf("exit code %d, want 0\n%s", code, stderr)
	}
	for _, want := range []string{"tracegate serving stdio", "shutting down"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}

	// The spans were flushed before the exit. initialize, and tools/list
	// (which carries no context), are children of the agent's span; the
	// call carries its own context through the backend to its API.
	spans := inTrace(recv.Spans(), agent.TraceID().String())
	for _, name := range []string{"initialize", "tools/list"} {
		sp := find(spans, name, "server", "tracegate")
		if sp == nil {
			t.Fatalf("no %s SERVER span in the agent's trace\n%s", name, recv.Tree(agent.TraceID().String()))
		}
		if sp.ParentSpanID != agent.SpanID().String() {
			t.Errorf("%s SERVER span parent %s, want the agent's %s", name, sp.ParentSpanID, agent.SpanID())
		}
	}
	chain(t, recv, call.TraceID().String(), call.SpanID().String(), [][3]string{
		{"tools/call weather_get_weather", "server", "tracegate"},
		{"tools/call get_weather", "client", "tracegate"},
		{"tools/call get_weather", "server", "weather-demo"},
		{"GET /forecast", "client", "weather-demo"},
		{"GET /forecast", "server", "forecast-api"},
	})
}

// stdioTS is a TypeScript SDK client that launches `tracegate stdio` with
// StdioClientTransport, lists the tools and calls one.
const stdioTS = `
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const [bin, config] = process.argv.slice(2);
const client = new Client({ name: "ts-agent", version: "1.0.0" });
await client.connect(new StdioClientTransport({ command: bin, args: ["stdio", "-config", config], stderr: "inherit" }));
for (let i = 0; ; i++) {
  const { tools } = await client.listTools();
  if (tools.some((t) => t.name === "weather_get_weather")) break;
  if (i > 200) throw new Error("no weather_get_weather in " + tools.map((t) => t.name));
  await new Promise((r) => setTimeout(r, 50));
}
const res = await client.callTool({ name: "weather_get_weather", arguments: { city: "Lisbon" } });
console.log(JSON.stringify(res.structuredContent));
await client.close();
`

// TestStdioFromTypeScriptClient: the TypeScript SDK's stdio client talks
// to `tracegate stdio` as it would to any stdio server.
func TestStdioFromTypeScriptClient(t *testing.T) {
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat("../../interop/node_modules/@modelcontextprotocol/sdk/package.json")
	}
	if err != nil {
		if os.Getenv("TRACEGATE_REQUIRE_INTEROP") == "1" {
			t.Fatalf("TRACEGATE_REQUIRE_INTEROP=1 but node or interop's TypeScript SDK is missing: %v", err)
		}
		t.Skip("node or interop's TypeScript SDK is missing (npm ci in interop/)")
	}
	recv := otlptest.NewReceiver(t)
	path := stdioConfig(t, recv, "off")
	// Beside interop's node_modules, so that node resolves the SDK.
	f, err := os.CreateTemp("../../interop", ".stdio-client-*.mjs")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	f.WriteString(stdioTS)
	f.Close()
	script, _ := filepath.Abs(f.Name())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script, selfBin, path)
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("TypeScript client: %v\n%s", err, stderr)
	}
	if !strings.Contains(string(out), `"city":"Lisbon"`) {
		t.Errorf("TypeScript client printed %s, want Lisbon's forecast", out)
	}
}

// TestStdioConsoleSpansGoToStderr: with the stdout span exporter, spans
// are written to stderr, since stdout carries the protocol; the client
// reads only JSON-RPC there.
func TestStdioConsoleSpansGoToStderr(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tracegate.yaml")
	yaml := fmt.Sprintf(`
admin_listen: "off"
backends:
  - {name: weather, url: %s}
telemetry:
  exporter: stdout
  viewer: {enabled: false}
`, startDemoHTTPBackends(t, otlptest.NewReceiver(t).URL()))
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(selfBin, "stdio", "-config", path)
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "agent"}, nil).Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatalf("connect: %v\n%s", err, stderr)
	}
	for {
		if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "weather_get_weather", Arguments: map[string]any{"city": "Oslo"}}); err == nil {
			break
		} else if ctx.Err() != nil {
			t.Fatalf("weather_get_weather: %v\n%s", err, stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := cs.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if code := cmd.ProcessState.ExitCode(); code != exitOK {
		t.Errorf("exit code %d, want 0\n%s", code, stderr)
	}
	if !strings.Contains(stderr.String(), `"Name":"tools/call weather_get_weather"`) {
		t.Errorf("stderr lacks the tools/call span:\n%s", stderr)
	}
}

// TestStdioEOFFinishesCallsInFlight: the client closes stdin while a call
// is in flight; the call's result still reaches stdout, then the session
// ends and tracegate exits 0.
func TestStdioEOFFinishesCallsInFlight(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tracegate.yaml")
	yaml := fmt.Sprintf(`
admin_listen: "off"
backends:
  - {name: weather, url: %s}
telemetry: {exporter: none, viewer: {enabled: false}}
`, startDemoHTTPBackends(t, otlptest.NewReceiver(t).URL()))
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(selfBin, "stdio", "-config", path)
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(stdout)
	lines.Buffer(nil, 1<<20)
	// answer sends msg and returns the line answering id.
	answer := func(msg string, id int) string {
		t.Helper()
		io.WriteString(stdin, msg+"\n")
		for lines.Scan() {
			if strings.Contains(lines.Text(), fmt.Sprintf(`"id":%d,`, id)) {
				return lines.Text()
			}
		}
		t.Fatalf("no answer to id %d\n%s", id, stderr)
		return ""
	}
	answer(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`, 1)
	io.WriteString(stdin, `{"jsonrpc":"2.0","method":"notifications/initialized"}`+"\n")
	for id := 2; !strings.Contains(answer(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/list"}`, id), id), "weather_slow_forecast"); id++ {
		if id > 200 {
			t.Fatalf("no weather_slow_forecast\n%s", stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The demo's slow_forecast takes 1.5s; stdin closes right after the call.
	io.WriteString(stdin, `{"jsonrpc":"2.0","id":1000,"method":"tools/call","params":{"name":"weather_slow_forecast","arguments":{"city":"Lisbon"}}}`+"\n")
	stdin.Close()
	var got string
	for lines.Scan() {
		if strings.Contains(lines.Text(), `"id":1000,`) {
			got = lines.Text()
		}
	}
	if !strings.Contains(got, `"result"`) || !strings.Contains(got, "Lisbon") {
		t.Errorf("the call in flight at EOF: got %q, want its result\n%s", got, stderr)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit: %v, want 0\n%s", err, stderr)
	}
}
