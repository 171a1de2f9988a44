package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/testnet"
)

// adminGet sends GET path to the admin listener with token, if any, and
// returns the status and body.
func adminGet(t *testing.T, base, path, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// deadBackendConfig has one backend that refuses connections, so /readyz
// has an error to show or hide.
func deadBackendConfig(t *testing.T) *config.Config {
	cfg := config.Default()
	cfg.Backends = []config.Backend{{Name: "dead", URL: "http://" + testnet.RefusedAddr(t) + "/mcp"}}
	return cfg
}

func TestAdminTokensGuardAllButProbes(t *testing.T) {
	tests := []struct {
		name  string
		admin []string // admin.bearer_tokens
		mcp   []string // auth.bearer_tokens
		good  string   // a token the admin listener takes, "" when open
	}{
		{"admin tokens", []string{"admin-secret-1", "admin-secret-2"}, []string{"mcp-secret"}, "admin-secret-2"},
		{"falls back to auth tokens", nil, []string{"mcp-secret"}, "mcp-secret"},
		{"open without tokens", nil, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := deadBackendConfig(t)
			cfg.Admin.BearerTokens = tc.admin
			for _, tok := range tc.mcp {
				cfg.Auth.BearerTokens = append(cfg.Auth.BearerTokens, config.BearerToken{Token: tok})
			}
			_, _, admin := runRuntime(t, cfg, io.Discard)

			// The kubelet's probes carry no token.
			if code, body := adminGet(t, admin, "/healthz", ""); code != 200 || body != "ok\n" {
				t.Errorf("/healthz without a token: %d %q, want 200 ok", code, body)
			}
			code, body := adminGet(t, admin, "/readyz", "")
			if code != http.StatusServiceUnavailable {
				t.Errorf("/readyz without a token: %d, want 503 (the only backend is down)", code)
			}
			if hidden := tc.good != ""; hidden == strings.Contains(body, "last_error") {
				t.Errorf("/readyz without a token, tokens set %v: body %s", hidden, body)
			}
			if tc.good != "" {
				if _, body := adminGet(t, admin, "/readyz", tc.good); !strings.Contains(body, `"last_error"`) || !strings.Contains(body, `"dead"`) {
					t.Errorf("/readyz with a token hides the details: %s", body)
				}
			}

			for _, path := range []string{"/metrics", "/admin/config", "/api/traces", "/ui/"} {
				code, _ := adminGet(t, admin, path, "")
				if tc.good == "" {
					if code != 200 {
						t.Errorf("%s on an open admin listener: %d, want 200", path, code)
					}
					continue
				}
				if code != http.StatusUnauthorized {
					t.Errorf("%s without a token: %d, want 401", path, code)
				}
				if code, _ := adminGet(t, admin, path, "wrong-"+tc.good); code != http.StatusUnauthorized {
					t.Errorf("%s with a wrong token: %d, want 401", path, code)
				}
				if code, _ := adminGet(t, admin, path, tc.good); code != 200 {
					t.Errorf("%s with the token: %d, want 200", path, code)
				}
			}
			if tc.admin != nil {
				// The MCP token does not open the admin listener when it
				// has tokens of its own.
				if code, _ := adminGet(t, admin, "/metrics", tc.mcp[0]); code != http.StatusUnauthorized {
					t.Errorf("/metrics with the MCP token: %d, want 401", code)
				}
			}
		})
	}
}

func TestAdminConfigIsRedacted(t *testing.T) {
	cfg := deadBackendConfig(t)
	cfg.Admin.BearerTokens = []string{"admin-s3cret"}
	cfg.Backends[0].Headers = map[string]string{"Authorization": "Bearer backend-s3cret"}
	cfg.Telemetry.OTLP.Headers = map[string]string{"x-api-key": "otlp-s3cret"}
	var logs syncBuffer
	rt, _, admin := runRuntime(t, cfg, &logs)
	rt.logStart(nil)

	code, body := adminGet(t, admin, "/admin/config", "admin-s3cret")
	if code != 200 {
		t.Fatalf("/admin/config: %d %s", code, body)
	}
	var got effectiveConfig
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("/admin/config is not JSON: %v\n%s", err, body)
	}
	if got.Config["admin_listen"] != config.DefaultAdminListen || got.Config["telemetry"] == nil || len(got.Exporters) == 0 {
		t.Errorf("/admin/config lacks the effective settings:\n%s", body)
	}
	for what, text := range map[string]string{"/admin/config": body, "the startup log": logs.String()} {
		if strings.Contains(text, "s3cret") {
			t.Errorf("%s shows a secret:\n%s", what, text)
		}
		if !strings.Contains(text, config.Redacted) {
			t.Errorf("%s does not show where secrets were:\n%s", what, text)
		}
	}
	if !strings.Contains(logs.String(), `"msg":"effective configuration"`) {
		t.Errorf("no effective configuration in the startup log:\n%s", logs.String())
	}
}

// TestServeWarnsOfAnOpenAdminListener runs serve with the admin listener
// on every interface and no token.
func TestServeWarnsOfAnOpenAdminListener(t *testing.T) {
	cfg := config.Default()
	cfg.Listen, cfg.AdminListen = "127.0.0.1:0", "0.0.0.0:0"
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, cfg, serveHooks{started: func(context.Context, *runtime) { cancel() }}, &logs)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("serve did not stop")
	}
	for _, want := range []string{
		`"level":"WARN","msg":"configuration: binds beyond loopback and no admin.bearer_tokens or auth.bearer_tokens are set`,
		`"path":"admin_listen"`,
		`"level":"WARN","msg":"configuration: no backends`,
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	}
}

// TestServeFromAFile: serve reports config errors at file:line:column and
// starts nothing; with a valid file it logs Check's warnings, unset
// variables included, with their place.
func TestServeFromAFile(t *testing.T) {
	bad := writeFile(t, "bad.yaml", "listen: 127.0.0.1:0\nbackends:\n  - {name: Weather, url: 'http://127.0.0.1:1/mcp'}\n")
	out, err := exec.Command(selfBin, "serve", "-config", bad).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitFail {
		t.Fatalf("got %v, want exit %d\n%s", err, exitFail, out)
	}
	if want := bad + `:3:12: backends[0].name: "Weather" must match [a-z0-9_-]+`; !strings.Contains(string(out), want) {
		t.Errorf("output lacks %s:\n%s", want, out)
	}

	good := writeFile(t, "good.yaml", "listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\ntelemetry: {service_name: 'gw${TRACEGATE_TEST_REGION}'}\n")
	cmd := exec.Command(selfBin, "serve", "-config", good)
	cmd.Env = append(os.Environ(), "TRACEGATE_TEST_REGION=")
	var logs syncBuffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Signal(os.Interrupt)
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(logs.String(), "tracegate listening") {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, want := range []string{
		`"msg":"configuration: ${TRACEGATE_TEST_REGION} unset or empty, so the value is \"gw\"","path":"telemetry.service_name","line":3,"column":27`,
		`"msg":"configuration: no backends: the gateway will serve no tools, prompts or resources","path":"backends"}`,
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	}
}
