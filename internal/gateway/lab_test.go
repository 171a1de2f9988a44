package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tracegate/tracegate/internal/config"
)

// The lab backend is a go-sdk server with tools that misbehave on purpose.
// It runs in-process over Streamable HTTP, or as a stdio child: the test
// binary re-executes itself with labChildEnv set, so no extra build is
// needed.
const (
	labChildEnv = "TRACEGATE_GW_TEST_CHILD"
	// labMarkEnv names a file the child's block tool creates once its
	// context is cancelled, so the parent can see the cancellation arrive.
	labMarkEnv = "TRACEGATE_GW_TEST_MARK"
)

func init() {
	if os.Getenv(labChildEnv) != "lab" {
		return
	}
	lab := &labBackend{started: make(chan struct{}, 16), cancelled: make(chan error, 16)}
	mark := os.Getenv(labMarkEnv)
	go func() {
		for range lab.cancelled {
			if mark != "" {
				os.WriteFile(mark, []byte("cancelled\n"), 0o644)
			}
		}
	}()
	err := lab.server().Run(context.Background(), &mcp.StdioTransport{})
	if err != nil {
		os.Stderr.WriteString("lab: " + err.Error() + "\n")
		os.Exit(1)
	}
	os.Exit(0)
}

// labBackend records what its tools saw.
type labBackend struct {
	url       string
	started   chan struct{} // one value per block call that began
	cancelled chan error    // the context error each block call ended with
	calls     atomic.Int64
	release   chan struct{} // closed to end blocked calls
	once      sync.Once
}

// unblock ends every block call still running, so a test that left one
// behind on purpose does not hold its servers open at cleanup.
func (l *labBackend) unblock() { l.once.Do(func() { close(l.release) }) }

// errQuota is what fail_rpc answers: a JSON-RPC error with data, which the
// gateway must pass through unchanged.
var errQuota = &jsonrpc.Error{Code: -32042, Message: "quota exceeded", Data: json.RawMessage(`{"retry_after_s":30}`)}

func (l *labBackend) server() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "lab", Version: "1.0.0"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "block", Description: "Blocks until cancelled."},
		func(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			l.calls.Add(1)
			l.started <- struct{}{}
			select {
			case <-ctx.Done():
				l.cancelled <- ctx.Err()
				return nil, nil, ctx.Err()
			case <-l.release:
				return nil, nil, nil
			}
		})
	mcp.AddTool(s, &mcp.Tool{Name: "fail_rpc", Description: "Answers with a JSON-RPC error."},
		func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
			l.calls.Add(1)
			return nil, nil, errQuota
		})
	type metaOut struct {
		Keys []string `json:"keys"`
	}
	mcp.AddTool(s, &mcp.Tool{Name: "meta_keys", Description: "Lists the _meta keys it received."},
		func(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, metaOut, error) {
			l.calls.Add(1)
			out := metaOut{Keys: []string{}}
			for k := range req.Params.Meta {
				out.Keys = append(out.Keys, k)
			}
			slices.Sort(out.Keys)
			return nil, out, nil
		})
	type pidOut struct {
		PID int `json:"pid"`
	}
	mcp.AddTool(s, &mcp.Tool{Name: "pid", Description: "The server's process id."},
		func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, pidOut, error) {
			return nil, pidOut{PID: os.Getpid()}, nil
		})
	return s
}

// startLab serves a lab backend over Streamable HTTP.
func startLab(t *testing.T) *labBackend {
	t.Helper()
	l := &labBackend{started: make(chan struct{}, 16), cancelled: make(chan error, 16), release: make(chan struct{})}
	s := l.server()
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(srv.Close)
	l.url = srv.URL
	return l
}

func labCfg(url string) config.Backend {
	return config.Backend{Name: "lab", URL: url, Transport: config.TransportStreamable, Timeout: config.Duration(5 * time.Second)}
}

// labChildCfg runs the lab backend as a stdio child; mark, if set, is the
// file its block tool creates when cancelled.
func labChildCfg(t *testing.T, name, mark string) config.Backend {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// A -race binary sleeps a second at exit (atexit_sleep_ms) unless told not to.
	env := map[string]string{labChildEnv: "lab", "GORACE": "atexit_sleep_ms=0"}
	if mark != "" {
		env[labMarkEnv] = mark
	}
	return config.Backend{Name: name, Command: []string{exe}, Env: env, Transport: config.TransportStdio, Timeout: config.Duration(5 * time.Second)}
}
