package main

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/otlptest"
)

// demoMCPURL is the MCP endpoint of `tracegate demo`, which the README's
// snippets name.
const demoMCPURL = "http://127.0.0.1:8080/mcp"

// readmeSection returns the fenced blocks of one README section, by
// language.
func readmeSection(t *testing.T, title string) map[string][]string {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	i := strings.Index(text, "\n## "+title+"\n")
	if i < 0 {
		t.Fatalf("README has no section %q", title)
	}
	text = text[i+1:]
	if j := strings.Index(text[3:], "\n## "); j >= 0 {
		text = text[:j+3]
	}
	blocks := map[string][]string{}
	for _, m := range regexp.MustCompile("(?s)```([a-z]+)\n(.*?)```").FindAllStringSubmatch(text, -1) {
		blocks[m[1]] = append(blocks[m[1]], m[2])
	}
	return blocks
}

// TestReadmeConnectSnippets runs the "Connect your agent" snippets against
// a gateway in front of the demo weather server, with the demo's URL
// replaced by the gateway's: the curl session and the TypeScript client
// (when Node and interop's modules are there), and checks the JSON
// client configurations and the stdio configuration file.
func TestReadmeConnectSnippets(t *testing.T) {
	blocks := readmeSection(t, "Connect your agent")
	if len(blocks["json"]) != 3 || len(blocks["sh"]) != 1 || len(blocks["js"]) != 1 || len(blocks["yaml"]) != 1 || len(blocks["python"]) != 1 {
		t.Fatalf("snippets by language: got %d json, %d sh, %d js, %d yaml, %d python; want 3, 1, 1, 1, 1",
			len(blocks["json"]), len(blocks["sh"]), len(blocks["js"]), len(blocks["yaml"]), len(blocks["python"]))
	}
	for _, b := range blocks["json"] {
		var v map[string]map[string]map[string]any
		if err := json.Unmarshal([]byte(b), &v); err != nil {
			t.Errorf("client configuration is not valid JSON: %v\n%s", err, b)
			continue
		}
		for _, servers := range v {
			s := servers["tracegate"]
			if url, ok := s["url"]; ok && url != demoMCPURL {
				t.Errorf("url %v, want the demo's %s", url, demoMCPURL)
			}
			if args, ok := s["args"].([]any); ok && (len(args) != 3 || args[0] != "stdio" || args[1] != "-config") {
				t.Errorf("args %v, want stdio -config FILE", args)
			}
		}
	}
	if r := config.Check([]byte(blocks["yaml"][0]), os.Getenv); len(r.Errors) > 0 {
		t.Errorf("the stdio configuration does not validate: %v", r.Errors)
	}

	cfg := config.Default()
	cfg.Telemetry.Viewer.Enabled = new(false)
	cfg.Backends = []config.Backend{{Name: "weather", URL: startDemoHTTPBackends(t, otlptest.NewReceiver(t).URL()), Transport: config.TransportStreamable, Timeout: config.Duration(10 * time.Second)}}
	_, mcpURL, _ := runRuntime(t, cfg, io.Discard)

	t.Run("curl", func(t *testing.T) {
		if _, err := exec.LookPath("curl"); err != nil {
			t.Skip("no curl")
		}
		out, err := exec.Command("bash", "-ec", strings.ReplaceAll(blocks["sh"][0], demoMCPURL, mcpURL)).CombinedOutput()
		if err != nil || !strings.Contains(string(out), `"name":"weather_get_weather"`) {
			t.Errorf("curl snippet: %v\n%s", err, out)
		}
	})
	t.Run("typescript", func(t *testing.T) {
		if _, err := exec.LookPath("node"); err != nil {
			t.Skip("no node")
		}
		if _, err := os.Stat("../../interop/node_modules/@modelcontextprotocol/sdk"); err != nil {
			t.Skip("no TypeScript SDK in interop/node_modules (npm ci in interop/)")
		}
		// Beside interop's node_modules, so that node resolves the SDK.
		f, err := os.CreateTemp("../../interop", ".readme-snippet-*.mjs")
		if err != nil {
			t.Fatal(err)
		}
		defer os.Remove(f.Name())
		f.WriteString(strings.ReplaceAll(blocks["js"][0], demoMCPURL, mcpURL))
		f.Close()
		abs, _ := filepath.Abs(f.Name())
		out, err := exec.Command("node", abs).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "'weather_get_weather'") || !strings.Contains(string(out), "Lisbon") {
			t.Errorf("TypeScript snippet: %v\n%s", err, out)
		}
	})
}
