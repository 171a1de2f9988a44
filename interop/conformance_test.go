package interop

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/gateway"
)

// The official MCP conformance suite's server scenarios, run against the
// go-sdk's conformance server directly and through the gateway over each
// backend transport. A scenario that passes directly must pass through the
// gateway: that is the gateway's contract.

const conformanceJS = "node_modules/@modelcontextprotocol/conformance/dist/index.js"

// requireConformance returns the Node (22 or newer, installed by npm ci
// here) that runs the suite.
func requireConformance(t *testing.T) string {
	t.Helper()
	node, _ := filepath.Abs("node_modules/.bin/node")
	requireFiles(t, "the conformance suite", "node_modules/.bin/node", conformanceJS)
	return node
}

// buildEverythingServer builds the go-sdk's conformance server, at the
// version go.mod pins.
func buildEverythingServer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "everything-server")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/modelcontextprotocol/go-sdk/conformance/everything-server").CombinedOutput()
	if err != nil {
		t.Fatalf("building the conformance server: %v\n%s", err, out)
	}
	return bin
}

// startHTTPServer runs bin as a stateful Streamable HTTP server on a free
// loopback port and returns its URL.
func startHTTPServer(t *testing.T, bin string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "-http", addr, "-stateless=false")
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return "http://" + addr + "/"
		}
		if time.Now().After(deadline) {
			t.Fatalf("the conformance server did not listen on %s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serveGateway runs a gateway in-process with backends, tool names
// unprefixed, and returns its base URL.
func serveGateway(t *testing.T, backends ...config.Backend) string {
	t.Helper()
	cfg := &config.Config{Backends: backends}
	cfg.Tools.NameFormat = "{tool}"
	return serveGatewayConfig(t, cfg)
}

// serveGatewayConfig runs a gateway in-process and returns its base URL
// once every backend is ready.
func serveGatewayConfig(t *testing.T, cfg *config.Config) string {
	t.Helper()
	gw, err := gateway.New(cfg, gateway.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	gw.Start(context.Background())
	t.Cleanup(func() { gw.Close() })
	deadline := time.Now().Add(30 * time.Second)
	for gw.Readiness().Status != "ready" {
		if time.Now().After(deadline) {
			t.Fatalf("backends not ready: %+v", gw.Readiness())
		}
		time.Sleep(20 * time.Millisecond)
	}
	srv := httptest.NewServer(gw.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

var scenarioLine = regexp.MustCompile(`^[✓✗] ([a-z0-9-]+): (\d+) passed, (\d+) failed`)

// runConformance runs the server scenarios against url and returns, for
// each, whether it passed.
func runConformance(t *testing.T, node, url string) map[string]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, conformanceJS, "server", "--suite", "all", "--url", url)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// The suite exits 1 when any scenario fails; the summary says which.
	cmd.Run()
	got := map[string]bool{}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		if m := scenarioLine.FindStringSubmatch(strings.TrimSpace(sc.Text())); m != nil {
			got[m[1]] = m[3] == "0" && m[2] != "0"
		}
	}
	if len(got) == 0 {
		t.Fatalf("no scenario results from the suite against %s:\n%s", url, out.String())
	}
	return got
}

func TestConformanceThroughGateway(t *testing.T) {
	node := requireConformance(t)
	bin := buildEverythingServer(t)
	direct := startHTTPServer(t, bin)
	timeout := config.Duration(20 * time.Second)
	httpBackend := config.Backend{Name: "ev", URL: direct, Transport: config.TransportStreamable, Timeout: timeout}
	stdioBackend := config.Backend{Name: "evs", Command: []string{bin}, Transport: config.TransportStdio, Timeout: timeout}
	both := serveGateway(t, httpBackend, stdioBackend)
	stdioOnly := serveGateway(t, stdioBackend)

	want := runConformance(t, node, direct)
	passed := 0
	for _, ok := range want {
		if ok {
			passed++
		}
	}
	// The suite itself must work, or the comparison below proves nothing.
	if passed < 25 {
		t.Fatalf("only %d scenarios pass against the server directly: %v", passed, want)
	}
	t.Logf("directly: %d of %d scenarios pass", passed, len(want))

	for _, target := range []struct{ name, url string }{
		{"/mcp/{backend} over Streamable HTTP", both + "/mcp/ev"},
		{"/mcp/{backend} over stdio", both + "/mcp/evs"},
		{"/mcp over Streamable HTTP", both + "/mcp"},
		{"/mcp over stdio", stdioOnly + "/mcp"},
	} {
		got := runConformance(t, node, target.url)
		n := 0
		for scenario, ok := range want {
			if !ok {
				continue
			}
			if got[scenario] {
				n++
			} else {
				t.Errorf("%s: scenario %s passes directly but not through the gateway", target.name, scenario)
			}
		}
		t.Logf("%s: %d of the %d scenarios that pass directly pass", target.name, n, passed)
	}
}
