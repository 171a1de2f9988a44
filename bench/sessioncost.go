package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// sessionCost is what a backend session costs to open, measured against
// the backend directly with the HTTP client the gateway uses by default:
// the price a gateway pays per client session if it does not share backend
// sessions, and per call if it opens one for each call.
type sessionCost struct {
	Samples int `json:"samples"`
	// Open is connect + initialize + notifications/initialized.
	OpenP50 time.Duration `json:"open_p50_ns"`
	OpenP99 time.Duration `json:"open_p99_ns"`
	// FreshCall is a call on a session opened for it and then closed.
	FreshCallP50 time.Duration `json:"fresh_call_p50_ns"`
	// OpenSessionCall is a call on a session kept open.
	OpenSessionCallP50 time.Duration `json:"open_session_call_p50_ns"`
}

func measureSessionCost(ctx context.Context, backendURL string, n int) (sessionCost, error) {
	sc := sessionCost{Samples: n}
	c := mcp.NewClient(&mcp.Implementation{Name: "bench-session-cost", Version: "1"}, &mcp.ClientOptions{Logger: discardLogger})
	hc := &http.Client{Transport: http.DefaultTransport}
	params := &mcp.CallToolParams{Name: "echo", Arguments: echoRaw}
	open := make([]time.Duration, n)
	fresh := make([]time.Duration, n)
	for i := range n {
		t0 := time.Now()
		cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: backendURL, HTTPClient: hc}, nil)
		if err != nil {
			return sc, fmt.Errorf("opening a backend session: %w", err)
		}
		open[i] = time.Since(t0)
		_, err = cs.CallTool(ctx, params)
		cs.Close()
		fresh[i] = time.Since(t0)
		if err != nil {
			return sc, fmt.Errorf("calling on a fresh backend session: %w", err)
		}
	}
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: backendURL, HTTPClient: hc}, nil)
	if err != nil {
		return sc, fmt.Errorf("opening a backend session: %w", err)
	}
	defer cs.Close()
	kept := make([]time.Duration, n)
	for i := range n {
		t0 := time.Now()
		if _, err := cs.CallTool(ctx, params); err != nil {
			return sc, fmt.Errorf("calling on an open backend session: %w", err)
		}
		kept[i] = time.Since(t0)
	}
	sc.OpenP50 = percentile(open, 0.50)
	sc.OpenP99 = percentile(open, 0.99)
	sc.FreshCallP50 = percentile(fresh, 0.50)
	sc.OpenSessionCallP50 = percentile(kept, 0.50)
	return sc, nil
}
