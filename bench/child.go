package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"sync"
	"time"
)

// With -own-process, a gateway or proxy runs in a process of its own, as
// it is deployed: the bench starts its own binary again as the path's
// process, whose heap, goroutines, scheduler and garbage collector are
// then apart from the load generator's and the backend's. The child
// serves the path and, on a second loopback listener, a small control
// API: its CPU time and allocations, CPU profiles, and telemetry flushes.

// Environment of a path's process.
const (
	pathChildEnv    = "TRACEGATE_BENCH_PATH"     // the scenario's name
	pathUpstreamEnv = "TRACEGATE_BENCH_UPSTREAM" // the upstream, as JSON
)

// childHello is the line a path's process writes on its stdout once the
// path is ready.
type childHello struct {
	Endpoint string `json:"endpoint"`
	Tool     string `json:"tool"`
	Control  string `json:"control"` // base URL of the control API
	Error    string `json:"error,omitempty"`
}

// procStats are a process's CPU time and allocation counters so far.
type procStats struct {
	CPU     time.Duration `json:"cpu_ns"`
	Mallocs uint64        `json:"mallocs"`
	Bytes   uint64        `json:"bytes"`
}

func currentProcStats() procStats {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return procStats{CPU: processCPU(), Mallocs: ms.Mallocs, Bytes: ms.TotalAlloc}
}

// servePathChild is the main of a path's process: it serves the scenario
// named in the environment until its stdin closes.
func servePathChild() error {
	name := os.Getenv(pathChildEnv)
	var up upstream
	if err := json.Unmarshal([]byte(os.Getenv(pathUpstreamEnv)), &up); err != nil {
		return fmt.Errorf("reading %s: %w", pathUpstreamEnv, err)
	}
	var sc *scenario
	for _, s := range scenarios() {
		if s.name == name {
			sc = &s
		}
	}
	hello := json.NewEncoder(os.Stdout)
	if sc == nil {
		err := fmt.Errorf("unknown scenario %q", name)
		hello.Encode(childHello{Error: err.Error()})
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := sc.serve(ctx, up)
	if err != nil {
		hello.Encode(childHello{Error: err.Error()})
		return err
	}
	defer p.close()
	srv, control, err := serveHTTP(ctx, controlHandler(p))
	if err != nil {
		hello.Encode(childHello{Error: err.Error()})
		return err
	}
	defer srv.Close()
	if err := hello.Encode(childHello{Endpoint: p.endpoint, Tool: p.tool, Control: control}); err != nil {
		return err
	}
	// The bench closes stdin to stop the path, or by exiting.
	io.Copy(io.Discard, os.Stdin)
	return nil
}

// controlHandler serves a path's process's control API.
func controlHandler(p *path) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(currentProcStats())
	})
	var mu sync.Mutex
	var prof *os.File
	mux.HandleFunc("PUT /profile", func(w http.ResponseWriter, r *http.Request) {
		name, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if prof != nil {
			http.Error(w, "a profile is already running", http.StatusConflict)
			return
		}
		f, err := os.Create(string(name))
		if err == nil {
			if err = pprof.StartCPUProfile(f); err != nil {
				f.Close()
			}
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		prof = f
	})
	mux.HandleFunc("DELETE /profile", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if prof == nil {
			http.Error(w, "no profile is running", http.StatusConflict)
			return
		}
		pprof.StopCPUProfile()
		err := prof.Close()
		prof = nil
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("POST /flush", func(w http.ResponseWriter, r *http.Request) {
		if p.flush == nil {
			http.Error(w, "the path exports no telemetry", http.StatusNotFound)
			return
		}
		dropped, err := p.flush(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		json.NewEncoder(w).Encode(dropped)
	})
	return mux
}

// startPathChild runs sc's path in a process of its own, in front of up,
// and returns it as a path whose stats, profiles and flushes are the
// child's.
func startPathChild(ctx context.Context, sc scenario, up upstream) (*path, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	upJSON, err := json.Marshal(up)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), pathChildEnv+"="+sc.name, pathUpstreamEnv+"="+string(upJSON))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the path's process: %w", err)
	}
	stop := func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	helloc := make(chan childHello, 1)
	go func() {
		var h childHello
		line, err := bufio.NewReader(stdout).ReadBytes('\n')
		if err == nil {
			err = json.Unmarshal(line, &h)
		}
		if err != nil {
			h.Error = fmt.Sprintf("the path's process said no hello: %v", err)
		}
		helloc <- h
		io.Copy(io.Discard, stdout)
	}()
	var h childHello
	select {
	case h = <-helloc:
	case <-time.After(30 * time.Second):
		h.Error = "the path's process did not start within 30s"
	case <-ctx.Done():
		h.Error = ctx.Err().Error()
	}
	if h.Error != "" {
		stop()
		return nil, errors.New(h.Error)
	}
	c := &controlClient{base: h.Control, hc: &http.Client{Timeout: 30 * time.Second}}
	p := &path{endpoint: h.Endpoint, tool: h.Tool, close: stop, stats: c.stats, profile: c.profile}
	if sc.otlp {
		p.flush = c.flush
	}
	return p, nil
}

// controlClient calls a path's process's control API.
type controlClient struct {
	base string
	hc   *http.Client
}

func (c *controlClient) do(ctx context.Context, method, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("the path's process: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the path's process: %s %s: HTTP %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

func (c *controlClient) stats(ctx context.Context) (procStats, error) {
	var s procStats
	err := c.do(ctx, http.MethodGet, "/stats", nil, &s)
	return s, err
}

func (c *controlClient) profile(ctx context.Context, file string) (func() error, error) {
	if err := c.do(ctx, http.MethodPut, "/profile", []byte(file), nil); err != nil {
		return nil, err
	}
	return func() error { return c.do(context.WithoutCancel(ctx), http.MethodDelete, "/profile", nil, nil) }, nil
}

func (c *controlClient) flush(ctx context.Context) (int64, error) {
	var dropped int64
	err := c.do(ctx, http.MethodPost, "/flush", nil, &dropped)
	return dropped, err
}
