package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// goodClient calls a tool of each backend in turn, every callEvery, on its
// own go-sdk session, and opens a new session when its own stops working.
func goodClient(ctx context.Context, endpoint string, n int, callEvery time.Duration, t *tally) {
	calls := []struct {
		backend, tool string
		args          map[string]any
	}{
		{"weather", "weather_get_weather", map[string]any{"city": "Lisbon"}},
		{"files", "files_list_files", map[string]any{}},
	}
	var cs *mcp.ClientSession
	defer func() {
		if cs != nil {
			cs.Close()
		}
	}()
	for i := 0; ctx.Err() == nil; i++ {
		if cs == nil {
			c := mcp.NewClient(&mcp.Implementation{Name: "soak-" + strconv.Itoa(n), Version: "1"}, nil)
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			var err error
			cs, err = c.Connect(cctx, &mcp.StreamableClientTransport{Endpoint: endpoint, MaxRetries: -1}, nil)
			cancel()
			if err != nil {
				t.add("good: connect failed", 1)
				sleep(ctx, time.Second)
				continue
			}
		}
		call := calls[i%len(calls)]
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		res, err := cs.CallTool(cctx, &mcp.CallToolParams{Name: call.tool, Arguments: call.args})
		cancel()
		var rpc *jsonrpc.Error
		switch {
		case ctx.Err() != nil:
			return
		case err == nil && !res.IsError:
			t.add("ok "+call.backend, 1)
		case err == nil:
			t.add("good: "+call.backend+" tool error", 1)
		case errors.As(err, &rpc):
			t.add(fmt.Sprintf("good: %s %d", call.backend, rpc.Code), 1)
		default:
			t.add("good: "+call.backend+" transport", 1)
			t.note("good transport", err.Error())
			cs.Close()
			cs = nil
		}
		sleep(ctx, callEvery)
	}
}

// abuse is one kind of bad input and what the gateway should answer.
type abuse struct {
	name    string
	status  int  // the HTTP status wanted
	code    int  // the JSON-RPC error code wanted, 0 for none
	session bool // sent on an open 2025-11-25 session
	body    func() []byte
	header  http.Header
	host    string
}

var (
	megabyteName = strings.Repeat("n", 1<<20)
	oversized    = bytes.Repeat([]byte(" "), 5<<20) // past max_request_bytes (4 MiB)
)

var abuses = []abuse{
	{name: "malformed JSON", status: 400, code: -32700, session: true, body: text(`{"jsonrpc":"2.0","id":1,"method":`)},
	{name: "oversized body", status: 413, code: -32600, session: true, body: func() []byte { return oversized }},
	{name: "unknown tool", status: 200, code: -32602, session: true, body: text(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"nope","arguments":{}}}`)},
	{name: "1 MB tool name", status: 200, code: -32602, session: true, body: text(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + megabyteName + `","arguments":{}}}`)},
	{name: "1 MB method", status: 200, code: -32600, session: true, body: text(`{"jsonrpc":"2.0","id":1,"method":"` + megabyteName + `"}`)},
	{name: "unknown method", status: 200, code: -32601, session: true, body: text(`{"jsonrpc":"2.0","id":1,"method":"no/such"}`)},
	{name: "batch on 2025-11-25", status: 400, code: -32600, session: true, body: text(`[{"jsonrpc":"2.0","id":1,"method":"ping"}]`)},
	{name: "no session", status: 400, code: -32600, body: text(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)},
	{name: "unknown session", status: 404, code: -32600, body: text(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`), header: http.Header{"Mcp-Session-Id": {"no-such-session"}}},
	{name: "wrong Content-Type", status: 415, session: true, body: text(`{"jsonrpc":"2.0","id":1,"method":"ping"}`), header: http.Header{"Content-Type": {"text/plain"}}},
	{name: "wrong Accept", status: 400, session: true, body: text(`{"jsonrpc":"2.0","id":1,"method":"ping"}`), header: http.Header{"Accept": {"text/html"}}},
	{name: "unknown protocol version", status: 400, session: true, body: text(`{"jsonrpc":"2.0","id":1,"method":"ping"}`), header: http.Header{"Mcp-Protocol-Version": {"1999-01-01"}}},
	{name: "foreign Host", status: 403, session: true, body: text(`{"jsonrpc":"2.0","id":1,"method":"ping"}`), host: "evil.example"},
	{name: "100 KB header", status: 431, body: text(`{}`), header: http.Header{"X-Junk": {strings.Repeat("j", 100<<10)}}},
}

func text(s string) func() []byte { return func() []byte { return []byte(s) } }

// badClient sends each abuse in turn, about five a second, and counts
// whether the gateway answered as it should.
func badClient(ctx context.Context, endpoint, addr string, t *tally) {
	hc := &http.Client{Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	var session string
	for i := 0; ctx.Err() == nil; i++ {
		a := abuses[i%len(abuses)]
		if a.session && session == "" {
			session = rawSession(ctx, hc, endpoint)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(a.body()))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if a.session {
			req.Header.Set("Mcp-Session-Id", session)
			req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
		}
		for k, v := range a.header {
			req.Header[k] = v
		}
		if a.host != "" {
			req.Host = a.host
		}
		status, code, err := send(hc, req)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			t.add("bad: "+a.name+": transport error", 1)
			t.note("bad "+a.name, err.Error())
		case status == a.status && code == a.code:
			t.add("bad: answered as documented", 1)
		case status == http.StatusNotFound && a.session:
			// The session was closed (idle, or a restart): open another.
			session = ""
		default:
			t.add(fmt.Sprintf("bad: %s: got %d/%d, want %d/%d", a.name, status, code, a.status, a.code), 1)
		}
		sleep(ctx, 200*time.Millisecond)
	}
}

// rawSession opens a 2025-11-25 session with plain HTTP.
func rawSession(ctx context.Context, hc *http.Client, endpoint string) string {
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"soak-bad","version":"1"}}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if resp, err := hc.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if sid := resp.Header.Get("Mcp-Session-Id"); sid != "" {
				return sid
			}
		}
		sleep(ctx, time.Second)
	}
	return ""
}

// send returns the HTTP status and, when the answer is a JSON-RPC error
// (in a JSON body or an event), its code.
func send(hc *http.Client, req *http.Request) (status, code int, err error) {
	resp, err := hc.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, 0, err
	}
	if i := bytes.Index(body, []byte("data: ")); i >= 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		body, _, _ = bytes.Cut(body[i+6:], []byte("\n"))
	}
	var m struct {
		Error *struct{ Code int } `json:"error"`
	}
	if json.Unmarshal(body, &m) == nil && m.Error != nil {
		code = m.Error.Code
	}
	return resp.StatusCode, code, nil
}

// slowBodies opens a connection every five seconds that sends a POST's
// headers and then its body at one byte a second; the gateway must cut
// it with 408 at limits.body_read_timeout (3 s in the soak's config).
func slowBodies(ctx context.Context, addr string, t *tally) {
	for ctx.Err() == nil {
		go func() {
			got := slowBody(ctx, addr)
			if ctx.Err() != nil {
				return
			}
			if got == "408" {
				t.add("bad: answered as documented", 1)
			} else {
				t.add("bad: slow body: got "+got+", want 408", 1)
			}
		}()
		sleep(ctx, 5*time.Second)
	}
}

func slowBody(ctx context.Context, addr string) string {
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "dial error"
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(conn, "POST /mcp HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 1000\r\n\r\n", addr)
	answer := make(chan string, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			answer <- "no answer"
			return
		}
		resp.Body.Close()
		answer <- strconv.Itoa(resp.StatusCode)
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case got := <-answer:
			return got
		case <-tick.C:
			conn.Write([]byte("{"))
		case <-ctx.Done():
			return "cancelled"
		}
	}
}

// killBackends kills the weather backend every killEvery and starts it
// again five seconds later; halfway between, it kills the gateway's stdio
// child's process group with SIGKILL, which the gateway must restart.
func killBackends(ctx context.Context, every time.Duration, weather *child, gateway int, filesBin string, t *tally) {
	for ctx.Err() == nil {
		if !sleep(ctx, every/2) {
			return
		}
		if pid := childOf(gateway, filesBin); pid > 0 {
			if syscall.Kill(-pid, syscall.SIGKILL) == nil {
				t.add("kill: stdio child", 1)
			}
		} else {
			t.add("kill: stdio child not found", 1)
		}
		if !sleep(ctx, every/2) {
			return
		}
		weather.kill()
		t.add("kill: weather backend", 1)
		sleep(ctx, 5*time.Second)
		for ctx.Err() == nil {
			if err := weather.start(); err == nil {
				break
			}
			sleep(ctx, time.Second)
		}
	}
}

// childOf finds the process whose parent is ppid and whose executable is
// exe, 0 when there is none.
func childOf(ppid int, exe string) int {
	procs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after ')'.
		i := bytes.LastIndexByte(b, ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 || f[1] != strconv.Itoa(ppid) {
			continue
		}
		dir := filepath.Dir(p)
		if target, _ := os.Readlink(dir + "/exe"); target == exe {
			pid, _ := strconv.Atoi(filepath.Base(dir))
			return pid
		}
	}
	return 0
}

// sleep waits d, false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}
