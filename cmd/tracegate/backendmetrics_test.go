package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tracegate/tracegate/internal/config"
)

// TestBackendMetricsFollowState runs a gateway with a stdio backend and an
// HTTP backend nobody listens on, kills the stdio child, and reads the
// backend metrics from /metrics: the dead backend is down, the child's
// backend went down and came back ready, with one restart.
func TestBackendMetricsFollowState(t *testing.T) {
	cfg := config.Default()
	cfg.Telemetry.Viewer.Enabled = new(false)
	cfg.Backends = []config.Backend{
		{Name: "files", Command: []string{selfBin, demoBackendCmd, "files"}, Transport: config.TransportStdio, Timeout: config.Duration(10 * time.Second)},
		{Name: "gone", URL: closedURL(t) + "/mcp", Transport: config.TransportStreamable},
	}
	_, mcpURL, admin := runRuntime(t, cfg, io.Discard)
	scrape := func() string {
		resp, err := http.Get(admin + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	// want polls /metrics until every pattern matches.
	want := func(patterns ...string) string {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			text, missing := scrape(), ""
			for _, p := range patterns {
				if !regexp.MustCompile(`(?m)^` + p + `$`).MatchString(text) {
					missing = p
					break
				}
			}
			if missing == "" {
				return text
			}
			if time.Now().After(deadline) {
				t.Fatalf("/metrics never matched %s:\n%s", missing, grepLines(text, "tracegate_backend"))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	const (
		filesUp   = `tracegate_backend_up\{.*tracegate_backend_name="files".*\} `
		goneUp    = `tracegate_backend_up\{.*tracegate_backend_name="gone".*\} 0`
		restarts  = `tracegate_backend_restarts_total\{.*tracegate_backend_name="files".*\} `
		readyOnce = `tracegate_backend_state_changes_total\{.*tracegate_backend_name="files",tracegate_backend_state="ready".*\} `
		downFiles = `tracegate_backend_state_changes_total\{.*tracegate_backend_name="files",tracegate_backend_state="down".*\} `
		downGone  = `tracegate_backend_state_changes_total\{.*tracegate_backend_name="gone",tracegate_backend_state="down".*\} [1-9][0-9]*`
	)
	want(filesUp+"1", goneUp, restarts+"0", readyOnce+"1", downGone)

	ctx := context.Background()
	c := mcp.NewClient(&mcp.Implementation{Name: "agent"}, nil)
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: mcpURL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "files_whoami", Arguments: map[string]any{}})
	if err != nil || res.IsError {
		t.Fatalf("files_whoami: %v %+v", err, res)
	}
	pid := int(res.StructuredContent.(map[string]any)["pid"].(float64))
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	want(filesUp+"1", restarts+"1", downFiles+"1", readyOnce+"2", goneUp)
}
