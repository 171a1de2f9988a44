package gateway_test

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tracegate/tracegate/examples/demo"
	"github.com/tracegate/tracegate/internal/gateway"
)

func toolNames(t *testing.T, cs *mcp.ClientSession) []string {
	t.Helper()
	var names []string
	for tool, err := range cs.Tools(ctxT(t), nil) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	return names
}

func rpcCode(err error) int64 {
	var e *jsonrpc.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

func TestAggregatesAndRoutesEveryMethod(t *testing.T) {
	t.Parallel()
	w := startWeather(t, demo.WeatherOptions{})
	gw := startGateway(t, baseConfig(weatherCfg(w.url()), filesCfg()), gatewayOptions{}.opts())
	cs := connect(t, gw.url+"/mcp", nil, nil)
	ctx := ctxT(t)

	names := toolNames(t, cs)
	for _, want := range []string{"weather_get_weather", "weather_slow_forecast", "files_read_file", "files_list_files"} {
		if !slices.Contains(names, want) {
			t.Errorf("tools/list: missing %q in %v", want, names)
		}
	}

	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "weather_get_weather", Arguments: map[string]any{"city": "Lisbon"}})
	if err != nil || res.IsError {
		t.Fatalf("weather_get_weather: %v %v", err, res)
	}
	if !strings.Contains(text(res), `"city":"Lisbon"`) {
		t.Errorf("weather_get_weather: got %q, want the Lisbon forecast", text(res))
	}
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "files_read_file", Arguments: map[string]any{"path": "notes/todo.md"}})
	if err != nil || !strings.Contains(text(res), "book flights") {
		t.Fatalf("files_read_file (stdio): got %v %q", err, text(res))
	}

	pr, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "weather_packing_list", Arguments: map[string]string{"city": "Oslo"}})
	if err != nil || !strings.Contains(pr.Description, "Oslo") {
		t.Fatalf("prompts/get: got %v %v", err, pr)
	}
	rr, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "weather://stations"})
	if err != nil || !strings.Contains(rr.Contents[0].Text, "Nairobi") {
		t.Fatalf("resources/read exact: got %v %v", err, rr)
	}
	rr, err = cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "file:///reports/q3.csv"})
	if err != nil || !strings.Contains(rr.Contents[0].Text, "emea,120") {
		t.Fatalf("resources/read template (stdio): got %v %v", err, rr)
	}
	var tmpls []string
	for rt, err := range cs.ResourceTemplates(ctx, nil) {
		if err != nil {
			t.Fatal(err)
		}
		tmpls = append(tmpls, rt.URITemplate)
	}
	if !slices.Contains(tmpls, "file:///{+path}") {
		t.Errorf("resources/templates/list: got %v", tmpls)
	}
	cr, err := cs.Complete(ctx, &mcp.CompleteParams{Ref: &mcp.CompleteReference{Type: "ref/prompt", Name: "weather_packing_list"}, Argument: mcp.CompleteParamsArgument{Name: "city", Value: "Li"}})
	if err != nil || cr == nil {
		t.Fatalf("completion/complete: %v", err)
	}
}

func TestSingleBackendEndpointKeepsOriginalNames(t *testing.T) {
	t.Parallel()
	w := startWeather(t, demo.WeatherOptions{})
	gw := startGateway(t, baseConfig(weatherCfg(w.url()), filesCfg()), gatewayOptions{}.opts())
	cs := connect(t, gw.url+"/mcp/files", nil, nil)
	names := toolNames(t, cs)
	if want := []string{"list_files", "read_file", "whoami"}; !slices.Equal(names, want) {
		t.Fatalf("/mcp/files tools: got %v, want %v", names, want)
	}
	res, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "list_files", Arguments: map[string]any{"prefix": "reports/"}})
	if err != nil || !strings.Contains(text(res), "reports/q4.csv") {
		t.Fatalf("list_files via /mcp/files: %v %q", err, text(res))
	}
}

func TestUnknownToolIsInvalidParamsNamingTheTool(t *testing.T) {
	t.Parallel()
	w := startWeather(t, demo.WeatherOptions{})
	gw := startGateway(t, baseConfig(weatherCfg(w.url())), gatewayOptions{}.opts())
	cs := connect(t, gw.url+"/mcp", nil, nil)
	_, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "weather_nope", Arguments: map[string]any{}})
	if rpcCode(err) != jsonrpc.CodeInvalidParams || !strings.Contains(err.Error(), `"weather_nope"`) {
		t.Fatalf("got %v, want -32602 naming weather_nope", err)
	}
}

func TestProgressIsRelayedToTheCallingSession(t *testing.T) {
	t.Parallel()
	w := startWeather(t, demo.WeatherOptions{SlowDelay: 100 * time.Millisecond})
	gw := startGateway(t, baseConfig(weatherCfg(w.url())), gatewayOptions{}.opts())

	type seen struct {
		mu     sync.Mutex
		tokens []any
	}
	var a, b seen
	mk := func(s *seen) *mcp.ClientOptions {
		return &mcp.ClientOptions{ProgressNotificationHandler: func(_ ctxAlias, req *mcp.ProgressNotificationClientRequest) {
			s.mu.Lock()
			s.tokens = append(s.tokens, req.Params.ProgressToken)
			s.mu.Unlock()
		}}
	}
	csA := connect(t, gw.url+"/mcp", mk(&a), nil)
	csB := connect(t, gw.url+"/mcp", mk(&b), nil)
	// Both sessions use the same token at the same time: each must get only
	// its own progress, under its own token.
	var wg sync.WaitGroup
	for _, cs := range []*mcp.ClientSession{csA, csB} {
		wg.Go(func() {
			p := &mcp.CallToolParams{Name: "weather_slow_forecast", Arguments: map[string]any{"city": "Oslo"}}
			p.SetProgressToken("tok-1")
			if _, err := cs.CallTool(ctxT(t), p); err != nil {
				t.Errorf("slow_forecast: %v", err)
			}
		})
	}
	wg.Wait()
	// The client SDK may return from CallTool before it has run the
	// handler for the last notification, which was sent before the result.
	for name, s := range map[string]*seen{"A": &a, "B": &b} {
		eventually(t, 2*time.Second, "5 progress notifications for session "+name, func() bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			return len(s.tokens) >= 5
		})
	}
	for name, s := range map[string]*seen{"A": &a, "B": &b} {
		s.mu.Lock()
		if len(s.tokens) != 5 {
			t.Errorf("session %s: got %d progress notifications, want 5", name, len(s.tokens))
		}
		for _, tok := range s.tokens {
			if tok != "tok-1" {
				t.Errorf("session %s: progress token %v, want tok-1", name, tok)
			}
		}
		s.mu.Unlock()
	}
}

func TestSamplingAndElicitationReachTheClient(t *testing.T) {
	t.Parallel()
	w := startWeather(t, demo.WeatherOptions{})
	gw := startGateway(t, baseConfig(weatherCfg(w.url())), gatewayOptions{}.opts())
	cs := connect(t, gw.url+"/mcp", &mcp.ClientOptions{
		CreateMessageHandler: func(_ ctxAlias, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return &mcp.CreateMessageResult{Model: "test-model", Role: "assistant", Content: &mcp.TextContent{Text: "drizzle, " + req.Params.Messages[0].Content.(*mcp.TextContent).Text}}, nil
		},
		ElicitationHandler: func(_ ctxAlias, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"confirm": true}}, nil
		},
	}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"}) // 2026-07-28 has no server-to-client requests
	res, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "weather_ask_assistant", Arguments: map[string]any{"city": "Oslo"}})
	if err != nil || !strings.Contains(text(res), "drizzle, Describe the weather in Oslo") {
		t.Fatalf("sampling relay: %v %q", err, text(res))
	}
	res, err = cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "weather_confirm_trip", Arguments: map[string]any{"city": "Oslo"}})
	if err != nil || text(res) != "trip accept" {
		t.Fatalf("elicitation relay: %v %q", err, text(res))
	}
}

func TestStatelessRevisionOnTheSameEndpoint(t *testing.T) {
	t.Parallel()
	w := startWeather(t, demo.WeatherOptions{})
	gw := startGateway(t, baseConfig(weatherCfg(w.url()), filesCfg()), gatewayOptions{}.opts())
	for _, v := range []string{"2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"} {
		cs := connect(t, gw.url+"/mcp", nil, &mcp.ClientSessionOptions{ProtocolVersion: v})
		if got := cs.InitializeResult().ProtocolVersion; got != v {
			t.Errorf("negotiated %q, want %q", got, v)
		}
		res, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "files_read_file", Arguments: map[string]any{"path": "config/app.yaml"}})
		if err != nil || !strings.Contains(text(res), "retries") {
			t.Errorf("protocol %s: tools/call: %v %q", v, err, text(res))
		}
	}
}

func TestBackendTimeoutMapsToError(t *testing.T) {
	t.Parallel()
	w := startWeather(t, demo.WeatherOptions{SlowDelay: 10 * time.Second})
	bc := weatherCfg(w.url())
	bc.Timeout = durationOf(time.Second)
	gw := startGateway(t, baseConfig(bc), gatewayOptions{}.opts())
	cs := connect(t, gw.url+"/mcp", nil, nil)
	start := time.Now()
	_, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "weather_slow_forecast", Arguments: map[string]any{"city": "Oslo"}})
	if rpcCode(err) != gateway.CodeTimeout || !strings.Contains(err.Error(), `"weather"`) {
		t.Fatalf("got %v, want code %d naming the backend", err, gateway.CodeTimeout)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("timeout took %v", time.Since(start))
	}
	// The session keeps serving.
	if _, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "weather_get_weather", Arguments: map[string]any{"city": "Oslo"}}); err != nil {
		t.Fatalf("after timeout: %v", err)
	}
}
