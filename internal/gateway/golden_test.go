package gateway_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tracegate/tracegate/examples/demo"
	"github.com/tracegate/tracegate/internal/backend"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.txtar with the gateway's answers")

// TestGolden replays the JSON-RPC exchanges in testdata/golden: each file
// holds a raw request body and the response the gateway must give, compared
// structurally after normalise. Every request is sent twice: in a stateful
// 2025-11-25 session, and as a stateless 2026-07-28 request carrying the
// SEP-2575 _meta triple. A file may hold a separate "response-2026-07-28"
// where the revisions differ.
//
// The gateway behind them has:
//   - weather: the demo server over HTTP;
//   - files: the demo server as a stdio child;
//   - lab and slow: the lab server over HTTP, slow with a 500ms timeout;
//   - gone: a weather server stopped once the gateway has listed it.
//
// Run `go test ./internal/gateway -run Golden -update` to rewrite them.
func TestGolden(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/golden/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	gw := startGoldenGateway(t)
	stateful := rawInitialize(t, gw.url+"/mcp", nil)
	stateless := &rawMCP{t: t, endpoint: gw.url + "/mcp"}

	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			ar := readTxtar(t, file)
			req := ar.get("request")
			if req == "" {
				t.Fatalf("%s: no request section", file)
			}
			got := normalise(t, answerOf(stateful.post(req, nil)))
			gotNew := normalise(t, answerOf(stateless.postStateless(req)))
			if *update {
				ar.set("response", got)
				ar.drop("response-" + statelessVersion)
				if !jsonEqual(t, got, gotNew) {
					ar.set("response-"+statelessVersion, gotNew)
				}
				if err := os.WriteFile(file, ar.format(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want := ar.get("response")
			if !jsonEqual(t, got, want) {
				t.Errorf("2025-11-25 session:\ngot  %s\nwant %s", got, want)
			}
			if w := ar.get("response-" + statelessVersion); w != "" {
				want = w
			}
			if !jsonEqual(t, gotNew, want) {
				t.Errorf("%s request:\ngot  %s\nwant %s", statelessVersion, gotNew, want)
			}
		})
	}
}

func startGoldenGateway(t *testing.T) *testGateway {
	t.Helper()
	w := startWeather(t, demo.WeatherOptions{})
	gone := startWeather(t, demo.WeatherOptions{})
	lab := startLab(t)
	goneCfg := weatherCfg(gone.url())
	goneCfg.Name = "gone"
	slow := labCfg(lab.url)
	slow.Name = "slow"
	slow.Timeout = durationOf(500 * time.Millisecond)
	gw := startGateway(t, baseConfig(weatherCfg(w.url()), filesCfg(), labCfg(lab.url), slow, goneCfg), calm())
	t.Cleanup(lab.unblock)
	var goneB *backend.Backend
	for _, b := range gw.gw.Backends() {
		if b.Name() == "gone" {
			goneB = b
		}
	}
	// WaitReady also settles on "down": wait for every backend to be up
	// once, so the golden answers do not depend on a slow start.
	eventually(t, 20*time.Second, "every backend ready", func() bool {
		return gw.gw.Readiness().Status == "ready"
	})
	gone.stop()
	// Nothing calls gone, which would find it dead at once: ask for the
	// health check such a call triggers, rather than wait for keepalive.
	eventually(t, 20*time.Second, "gone to be down", func() bool {
		goneB.Check()
		return goneB.State() != backend.StateReady
	})
	return gw
}

// answerOf is the JSON-RPC response of a, or, when the HTTP layer answered
// without one, {"http_status": N, "body": "..."}.
func answerOf(a rawAnswer) any {
	if a.msg != nil {
		return a.msg
	}
	return map[string]any{"http_status": a.status, "body": strings.TrimSpace(string(a.body))}
}

var volatile = []struct {
	re   *regexp.Regexp
	with string
}{
	// Why a backend is unavailable (its state, the dial error) varies with
	// timing; the code and the backend's name do not.
	{regexp.MustCompile(`^(backend "[^"]+" (is unavailable|failed)): .*$`), "$1: <detail>"},
	{regexp.MustCompile(`127\.0\.0\.1:\d+`), "127.0.0.1:<port>"},
}

// normalise renders v as indented JSON with volatile text replaced.
func normalise(t *testing.T, v any) string {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var generic any
	if err := json.Unmarshal(raw, &generic); err != nil {
		t.Fatal(err)
	}
	generic = scrub(generic)
	if m, ok := generic.(map[string]any); ok {
		dropServerInfo(m)
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(generic); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// dropServerInfo removes the serverInfo a 2026-07-28 result carries in its
// _meta (SEP-2575): it describes the gateway hop, not the exchange, and
// would make every stateless answer differ from its stateful twin.
func dropServerInfo(msg map[string]any) {
	res, _ := msg["result"].(map[string]any)
	meta, _ := res["_meta"].(map[string]any)
	if meta == nil {
		return
	}
	delete(meta, "io.modelcontextprotocol/serverInfo")
	if len(meta) == 0 {
		delete(res, "_meta")
	}
}

func scrub(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = scrub(e)
		}
	case []any:
		for i, e := range v {
			v[i] = scrub(e)
		}
	case string:
		for _, r := range volatile {
			v = r.re.ReplaceAllString(v, r.with)
		}
		return v
	}
	return v
}

func jsonEqual(t *testing.T, a, b string) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal([]byte(a), &x); err != nil {
		t.Fatalf("bad JSON %q: %v", a, err)
	}
	if err := json.Unmarshal([]byte(b), &y); err != nil {
		t.Fatalf("bad golden JSON %q: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}

// txtar is the archive format of golang.org/x/tools/txtar: a free-form
// comment, then sections that each start with a "-- name --" line.
type txtar struct {
	comment  string
	names    []string
	sections map[string]string
}

func readTxtar(t *testing.T, file string) *txtar {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	ar := &txtar{sections: map[string]string{}}
	cur := ""
	var buf bytes.Buffer
	flush := func() {
		if cur == "" {
			ar.comment = buf.String()
		} else {
			ar.sections[cur] = buf.String()
		}
		buf.Reset()
	}
	for line := range strings.Lines(string(data)) {
		trimmed := strings.TrimRight(line, "\r\n")
		if name, ok := strings.CutPrefix(trimmed, "-- "); ok && strings.HasSuffix(name, " --") {
			flush()
			cur = strings.TrimSuffix(name, " --")
			ar.names = append(ar.names, cur)
			continue
		}
		buf.WriteString(line)
	}
	flush()
	return ar
}

func (ar *txtar) get(name string) string { return ar.sections[name] }

func (ar *txtar) set(name, body string) {
	if _, ok := ar.sections[name]; !ok {
		ar.names = append(ar.names, name)
	}
	ar.sections[name] = body
}

func (ar *txtar) drop(name string) {
	delete(ar.sections, name)
	for i, n := range ar.names {
		if n == name {
			ar.names = append(ar.names[:i], ar.names[i+1:]...)
			break
		}
	}
}

func (ar *txtar) format() []byte {
	var b bytes.Buffer
	b.WriteString(ar.comment)
	for _, n := range ar.names {
		fmt.Fprintf(&b, "-- %s --\n", n)
		body := ar.sections[n]
		b.WriteString(body)
		if body != "" && !strings.HasSuffix(body, "\n") {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}
