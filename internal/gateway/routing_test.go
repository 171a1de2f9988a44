package gateway_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/gateway"
)

// serveResourceBackend runs a go-sdk server with instructions and one
// resource whose text names the server.
func serveResourceBackend(t *testing.T, name, instructions, uri string) string {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: name, Version: "1"}, &mcp.ServerOptions{Instructions: instructions})
	s.AddResource(&mcp.Resource{URI: uri, Name: "r"}, func(context.Context, *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: uri, Text: "from " + name}}}, nil
	})
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(srv.Close)
	return srv.URL
}

// Instructions pass through at /mcp/{backend} and are merged at /mcp; a
// URI two backends list is served at /mcp by the first, listed once, and a
// read never reaches the other.
func TestInstructionsAndSharedResourceURIs(t *testing.T) {
	const uri = "res://same"
	a := serveResourceBackend(t, "alpha", "Use alpha for A.", uri)
	b := serveResourceBackend(t, "beta", "Use beta for B.", uri)
	timeout := config.Duration(5 * time.Second)
	cfg := baseConfig(
		config.Backend{Name: "alpha", URL: a, Transport: config.TransportStreamable, Timeout: timeout},
		config.Backend{Name: "beta", URL: b, Transport: config.TransportStreamable, Timeout: timeout},
	)
	gw := startGateway(t, cfg, gateway.Options{})

	single := connect(t, gw.url+"/mcp/beta", nil, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if got := single.InitializeResult().Instructions; got != "Use beta for B." {
		t.Errorf("/mcp/beta instructions %q, want the backend's", got)
	}
	all := connect(t, gw.url+"/mcp", nil, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	merged := all.InitializeResult().Instructions
	if !strings.Contains(merged, "## alpha\n\nUse alpha for A.") || !strings.Contains(merged, "## beta\n\nUse beta for B.") {
		t.Errorf("/mcp instructions %q, want both backends' under their names", merged)
	}

	res, err := all.ListResources(ctxT(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(res.Resources); n != 1 {
		t.Errorf("/mcp lists %d resources for a URI two backends list, want 1", n)
	}
	read, err := all.ReadResource(ctxT(t), &mcp.ReadResourceParams{URI: uri})
	if err != nil {
		t.Fatal(err)
	}
	if got := read.Contents[0].Text; got != "from alpha" {
		t.Errorf("/mcp read %q, want the first backend's", got)
	}
	read, err = single.ReadResource(ctxT(t), &mcp.ReadResourceParams{URI: uri})
	if err != nil {
		t.Fatal(err)
	}
	if got := read.Contents[0].Text; got != "from beta" {
		t.Errorf("/mcp/beta read %q, want beta's own", got)
	}
}
