package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// Helpers that read the trace viewer's JSON API, shared by the tests that
// run a gateway with its viewer.

// apiSpan is a span as GET /api/traces/{id} returns it.
type apiSpan struct {
	SpanID       string         `json:"span_id"`
	ParentSpanID string         `json:"parent_span_id"`
	Name         string         `json:"name"`
	Kind         string         `json:"kind"`
	Service      string         `json:"service"`
	Attributes   map[string]any `json:"attributes"`
	Resource     int            `json:"resource"` // index in the trace's resources
	Links        []struct {
		TraceID string `json:"trace_id"`
		SpanID  string `json:"span_id"`
		Present bool   `json:"present"`
	} `json:"links"`
}

// viewHop names a span by what the viewer shows of it.
type viewHop struct{ name, kind, service string }

func (h viewHop) String() string { return h.name + " " + h.kind + " (" + h.service + ")" }

func findSpan(spans []apiSpan, h viewHop) *apiSpan {
	for i := range spans {
		if s := &spans[i]; s.Name == h.name && s.Kind == h.kind && s.Service == h.service {
			return s
		}
	}
	return nil
}

// waitTrace polls the viewer's API at adminURL until the trace has a span
// for every viewHop and ready (if not nil) accepts the spans, and returns them.
// Spans from other processes arrive over OTLP a little after the call
// returns.
func waitTrace(t *testing.T, adminURL, traceID string, hops []viewHop, ready func([]apiSpan) bool) []apiSpan {
	t.Helper()
	var spans []apiSpan
	var last string
	poll(t, 20*time.Second, func() bool {
		var body struct{ Spans []apiSpan }
		code, err := getJSON(adminURL+"/api/traces/"+traceID, &body)
		last = fmt.Sprintf("GET /api/traces/%s: %d %v", traceID, code, err)
		if code != http.StatusOK {
			return false
		}
		spans = body.Spans
		for _, h := range hops {
			if findSpan(spans, h) == nil {
				last = fmt.Sprintf("%d spans, none is %s", len(spans), h)
				return false
			}
		}
		return ready == nil || ready(spans)
	}, func() string { return "trace " + traceID + " incomplete: " + last })
	return spans
}

func getJSON(url string, v any) (int, error) {
	res, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	return res.StatusCode, json.NewDecoder(res.Body).Decode(v)
}

// poll calls cond every 50ms until it holds, failing t after timeout with
// the message msg returns.
func poll(t *testing.T, timeout time.Duration, cond func() bool, msg func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, msg())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fourTiers is the probe's tool call, viewHop by viewHop, each the parent of the
// next: probe → gateway → weather backend → forecast API.
var fourTiers = []viewHop{
	{"tools/call weather_get_weather", "client", "tracegate-probe"},
	{"tools/call weather_get_weather", "server", "tracegate"},
	{"tools/call get_weather", "client", "tracegate"},
	{"tools/call get_weather", "server", "weather-demo"},
	{"GET /forecast", "client", "weather-demo"},
	{"GET /forecast", "server", "forecast-api"},
}

// checkChain asserts that each viewHop's span is the parent of the next one's.
func checkChain(t *testing.T, spans []apiSpan, hops []viewHop) {
	t.Helper()
	for i := 1; i < len(hops); i++ {
		parent, child := findSpan(spans, hops[i-1]), findSpan(spans, hops[i])
		if child.ParentSpanID != parent.SpanID {
			t.Errorf("%s: got parent %s, want %s, the span of %s", hops[i], child.ParentSpanID, parent.SpanID, hops[i-1])
		}
	}
}

// The hops of a weather_get_weather call below the agent.
var (
	gwServer = viewHop{"tools/call weather_get_weather", "server", "tracegate"}
	gwClient = viewHop{"tools/call get_weather", "client", "tracegate"}
	wxServer = viewHop{"tools/call get_weather", "server", "weather-demo"}
	forecast = viewHop{"GET /forecast", "server", "forecast-api"}
)
