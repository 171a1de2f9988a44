package main

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/tlsconf/tlstest"
)

// TestServeOverTLS runs tracegate serve with TLS everywhere: the MCP
// listener, the admin listener with required client certificates, and an
// https backend signed by a private CA under another server name.
func TestServeOverTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	gwCA := tlstest.NewCA(t, "gateway CA")
	clientCA := tlstest.NewCA(t, "operators")
	backendCA := tlstest.NewCA(t, "backend CA")
	certFile, keyFile := gwCA.Server(t, "127.0.0.1").Files(t, dir)

	// The backend: a go-sdk server over TLS, its certificate for
	// backend.internal, not for the address tracegate dials.
	s := mcp.NewServer(&mcp.Implementation{Name: "secure", Version: "1"}, nil)
	s.AddTool(&mcp.Tool{Name: "hello", InputSchema: map[string]any{"type": "object"}}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "hello over TLS"}}}, nil
	})
	leaf := backendCA.Server(t, "backend.internal")
	pair, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	bln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bsrv := &http.Server{Handler: mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)}
	go bsrv.Serve(tls.NewListener(bln, &tls.Config{Certificates: []tls.Certificate{pair}}))
	t.Cleanup(func() { bsrv.Close() })

	cfg := &config.Config{
		Listen:      "127.0.0.1:0",
		AdminListen: "127.0.0.1:0",
		TLS:         &config.ServerTLS{CertFile: certFile, KeyFile: keyFile},
		Admin: config.Admin{TLS: &config.ServerTLS{CertFile: certFile, KeyFile: keyFile,
			ClientCAFile: tlstest.Write(t, dir, "operators.pem", clientCA.CertPEM), RequireClientCert: true}},
		Backends: []config.Backend{{Name: "secure", URL: "https://" + bln.Addr().String() + "/mcp",
			TLS: &config.BackendTLS{CAFile: tlstest.Write(t, dir, "backend-ca.pem", backendCA.CertPEM), ServerName: "backend.internal"}}},
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan *runtime, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, cfg, serveHooks{started: func(_ context.Context, rt *runtime) { started <- rt }}, io.Discard)
	}()
	var rt *runtime
	select {
	case rt = <-started:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not start")
	}
	t.Cleanup(func() {
		cancel()
		<-done
	})

	trusting := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: gwCA.Pool(), Certificates: certs}}}
	}
	c := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, nil)
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: "https://" + rt.mcpAddr + "/mcp/secure", HTTPClient: trusting()}, nil)
	if err != nil {
		t.Fatalf("connect over TLS: %v", err)
	}
	defer cs.Close()
	var res *mcp.CallToolResult
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "hello", Arguments: map[string]any{}})
		if err == nil && !res.IsError || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil || res.IsError || res.Content[0].(*mcp.TextContent).Text != "hello over TLS" {
		t.Fatalf("call through TLS to a TLS backend: %v %+v", err, res)
	}

	// Plain HTTP to the TLS listener is refused.
	if resp, err := http.Get("http://" + rt.mcpAddr + "/mcp"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP to the TLS listener: got %d, want 400", resp.StatusCode)
		}
	}

	// The admin listener wants an operator's certificate.
	if _, err := trusting().Get("https://" + rt.adminAddr + "/healthz"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("admin without a client certificate: got %v, want a TLS refusal", err)
	}
	op := clientCA.Client(t, "operator")
	opPair, _ := tls.X509KeyPair(op.CertPEM, op.KeyPEM)
	resp, err := trusting(opPair).Get("https://" + rt.adminAddr + "/healthz")
	if err != nil {
		t.Fatalf("admin with a client certificate: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("admin /healthz: %d", resp.StatusCode)
	}
}
