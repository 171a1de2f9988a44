package interop

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/tracegate/tracegate/internal/config"
)

// startEverythingServer runs the reference server over transport
// ("streamableHttp" or "sse") on a free loopback port and returns its
// endpoint URL.
func startEverythingServer(t *testing.T, node, transport string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	entry, _ := filepath.Abs(everythingJS)
	cmd := exec.Command(node, entry, transport)
	cmd.Env = append(os.Environ(), fmt.Sprintf("PORT=%d", port))
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the %s server did not listen on %s", transport, addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if transport == "sse" {
		return "http://" + addr + "/sse"
	}
	return "http://" + addr + "/mcp"
}

type everythingReport struct {
	Checks []struct {
		Name   string `json:"name"`
		OK     bool   `json:"ok"`
		Detail string `json:"detail"`
	} `json:"checks"`
}

func runEverything(t *testing.T, node string, args ...string) everythingReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, append([]string{"everything.mjs"}, args...)...).Output()
	var r everythingReport
	if jerr := json.Unmarshal(out, &r); jerr != nil {
		t.Fatalf("everything.mjs %v: %v %v\n%s", args, err, jerr, out)
	}
	return r
}

// The reference TypeScript server behind the gateway, over each backend
// transport, driven by the TypeScript SDK client: every tool, prompts,
// resources (read and subscribe), completion, logging inside and outside
// calls, progress, cancellation, sampling, elicitation, roots and their
// list_changed, and two clients sampling at the same time. A server whose
// tools ask their caller for things is configured with sessions:
// per_client where its transport cannot say which call a request belongs
// to (stdio and SSE); over Streamable HTTP a shared session routes
// exactly.
func TestEverythingOverEveryTransport(t *testing.T) {
	node := requireNode(t)
	entry, _ := filepath.Abs(everythingJS)
	timeout := config.Duration(30 * time.Second)
	for _, tc := range []struct {
		name    string
		backend func() config.Backend
	}{
		{"streamable-http", func() config.Backend {
			return config.Backend{Name: "se", URL: startEverythingServer(t, node, "streamableHttp"), Transport: config.TransportStreamable, Timeout: timeout}
		}},
		{"sse", func() config.Backend {
			return config.Backend{Name: "se", URL: startEverythingServer(t, node, "sse"), Transport: config.TransportSSE, Timeout: timeout, Sessions: config.SessionsPerClient}
		}},
		{"stdio", func() config.Backend {
			return config.Backend{Name: "se", Command: []string{node, entry, "stdio"}, Transport: config.TransportStdio, Timeout: timeout, Sessions: config.SessionsPerClient}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.backend()
			cfg := &config.Config{Backends: []config.Backend{b}}
			cfg.Tools.NameFormat = "{backend}_{tool}"
			url := serveGatewayConfig(t, cfg) + "/mcp"
			for _, args := range [][]string{{url, "se_"}, {"--pair", url, "se_"}} {
				r := runEverything(t, node, args...)
				if len(r.Checks) == 0 {
					t.Fatalf("everything.mjs %v made no checks", args)
				}
				for _, c := range r.Checks {
					if !c.OK {
						t.Errorf("%s: %s", c.Name, c.Detail)
					}
				}
			}
		})
	}
}
