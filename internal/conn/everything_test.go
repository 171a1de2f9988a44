package conn

// Interop with the TypeScript reference server,
// @modelcontextprotocol/server-everything, over its three transports.
// The Node packages are pinned in interop/package.json; install them with
// `cd interop && npm ci`. Without node or the packages these tests skip,
// unless TRACEGATE_REQUIRE_INTEROP=1.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tracegate/tracegate/internal/testlog"
)

const everythingEntry = "../../interop/node_modules/@modelcontextprotocol/server-everything/dist/index.js"

// everything returns the command that runs the reference server with the
// given transport, or skips.
func everything(t *testing.T, transport string) []string {
	t.Helper()
	node, err := exec.LookPath("node")
	missing := ""
	switch {
	case err != nil:
		missing = "node is not on PATH"
	default:
		if _, err := os.Stat(everythingEntry); err != nil {
			missing = "interop/node_modules is missing (run `npm ci` in interop/)"
		}
	}
	if missing != "" {
		if os.Getenv("TRACEGATE_REQUIRE_INTEROP") == "1" {
			t.Fatalf("TRACEGATE_REQUIRE_INTEROP=1 but %s", missing)
		}
		t.Skipf("skipping the TypeScript interop tests: %s; set TRACEGATE_REQUIRE_INTEROP=1 to make this an error", missing)
	}
	entry, err := filepath.Abs(everythingEntry)
	if err != nil {
		t.Fatal(err)
	}
	return []string{node, entry, transport}
}

// startEverything runs the reference server over HTTP on a free port and
// returns its base URL.
func startEverything(t *testing.T, transport string) string {
	t.Helper()
	argv := everything(t, transport)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out testlog.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if !settle(30*time.Second, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		t.Fatalf("server-everything %s did not listen on %s: %s", transport, addr, out.String())
	}
	return "http://" + addr
}

// callEverything calls a tool, retrying while the server has not yet
// registered it: tools that need a client capability appear only after
// notifications/initialized.
func callEverything(t *testing.T, c Conn, id int, tool, args string, related func([]byte)) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for attempt := 0; ; attempt++ {
		got, err := callTool(ctx, c, id, tool, args, related)
		if err == nil {
			return got
		}
		if attempt < 20 && strings.Contains(err.Error(), "not found") {
			time.Sleep(100 * time.Millisecond)
			id += 1000
			continue
		}
		t.Fatalf("%s: %v", tool, err)
	}
}

// exercise runs what every transport must carry: the handshake, a tool,
// a call that sends progress before its result, and a server request
// answered with Send. progress is where the notifications are expected.
func exercise(t *testing.T, c Conn, unsolicited *inbox, onStream bool) {
	t.Helper()
	initialize(t, c)
	if got := callEverything(t, c, 1, "echo", `{"message":"hi"}`, nil); got != "Echo: hi" {
		t.Errorf("echo: got %q", got)
	}
	related := &inbox{conn: c}
	got := callEverything(t, c, 2, "trigger-long-running-operation", `{"duration":0.4,"steps":3}`, related.add)
	if !strings.Contains(got, "completed") {
		t.Errorf("long-running operation: got %q", got)
	}
	where := unsolicited
	if onStream {
		where = related
	}
	if n := where.count("notifications/progress"); n != 3 {
		t.Errorf("got %d progress notifications before the result, want 3 (related %v, unsolicited %v)", n, related.methods(), unsolicited.methods())
	}
	related = &inbox{conn: c}
	got = callEverything(t, c, 3, "trigger-sampling-request", `{"prompt":"q","maxTokens":5}`, related.add)
	if !strings.Contains(got, "hello from the client") {
		t.Errorf("sampling: got %q", got)
	}
	related.wg.Wait()
}

func TestEverythingStdio(t *testing.T) {
	t.Parallel()
	argv := everything(t, "stdio")
	in := &inbox{}
	c, err := Dial(context.Background(), Endpoint{Transport: TransportStdio, Command: argv}, Options{Unsolicited: in.add, KillGrace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	in.conn = c
	defer c.Close()
	exercise(t, c, in, false)
	pid := c.(*stdio).cmd.Process.Pid
	c.Close()
	in.wg.Wait()
	if st := procState(pid); st != "" {
		t.Errorf("node %d remains after Close, state %s", pid, st)
	}
	if m := groupMembers(pid); len(m) > 0 {
		t.Errorf("process group %d still has %v", pid, m)
	}
}

// A child killed from outside ends the session with its status.
func TestEverythingStdioKilled(t *testing.T) {
	t.Parallel()
	argv := everything(t, "stdio")
	c, err := Dial(context.Background(), Endpoint{Transport: TransportStdio, Command: argv}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	initialize(t, c)
	pid := c.(*stdio).cmd.Process.Pid
	syscall.Kill(pid, syscall.SIGKILL)
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed after the child was killed")
	}
	var exit *exec.ExitError
	if !errors.As(c.Err(), &exit) || !strings.Contains(c.Err().Error(), "killed") {
		t.Errorf("got %v, want an exit error saying the child was killed", c.Err())
	}
	if st := procState(pid); st != "" {
		t.Errorf("killed child %d not reaped, state %s", pid, st)
	}
}

func TestEverythingSSE(t *testing.T) {
	t.Parallel()
	base := startEverything(t, "sse")
	c, in := dialHTTP(t, TransportSSE, base+"/sse", Options{})
	exercise(t, c, in, false)
}

func TestEverythingStreamable(t *testing.T) {
	t.Parallel()
	base := startEverything(t, "streamableHttp")
	c, in := dialHTTP(t, TransportStreamable, base+"/mcp", Options{})
	exercise(t, c, in, true)
	if c.SessionID() == "" {
		t.Error("no session id")
	}
}

// The reference server opens each POST stream with a priming event that
// has an id and an empty data line; a cut after an event with an id is
// resumed with GET and Last-Event-ID, and the server replays the rest.
//
// The proxy holds the resuming GET until the call has finished: the
// reference server's event store returns the last event id where the SDK
// expects a stream id (replayEventsAfter), so a stream resumed while the
// call still runs is registered under the wrong id, and receives only the
// replay. A client can only wait for its context then.
func TestEverythingStreamableResume(t *testing.T) {
	t.Parallel()
	base := startEverything(t, "streamableHttp")
	p := &cutProxy{upstream: base, resumeDelay: 1500 * time.Millisecond}
	ts := httptest.NewServer(p)
	t.Cleanup(ts.Close) // after the Conn's Close, registered later, ends its streams
	c, _ := dialHTTP(t, TransportStreamable, ts.URL+"/mcp", Options{})
	initialize(t, c)
	p.armed.Store(true)
	related := &inbox{}
	got := callEverything(t, c, 1, "trigger-long-running-operation", `{"duration":0.3,"steps":3}`, related.add)
	if !strings.Contains(got, "completed") {
		t.Errorf("got %q", got)
	}
	if p.cuts.Load() != 1 {
		t.Fatalf("the proxy cut %d streams, want 1", p.cuts.Load())
	}
	if p.resumes.Load() == 0 {
		t.Error("no GET with Last-Event-ID reached the server")
	}
	if n := related.count("notifications/progress"); n != 3 {
		t.Errorf("got %d progress notifications across the cut, want 3: %v", n, related.methods())
	}
}

// The reference server answers a session it does not know with HTTP 400
// and a JSON-RPC error, not the 404 of the specification: the error
// comes back as the response, and Request does not hang.
func TestEverythingStreamableUnknownSession(t *testing.T) {
	t.Parallel()
	base := startEverything(t, "streamableHttp")
	c, _ := dialHTTP(t, TransportStreamable, base+"/mcp", Options{})
	initialize(t, c)
	req, _ := http.NewRequest(http.MethodDelete, base+"/mcp", nil)
	req.Header.Set("Mcp-Session-Id", c.SessionID())
	req.Header.Set("Mcp-Protocol-Version", testProtocol)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = callTool(ctx, c, 1, "echo", `{"message":"x"}`, nil)
	if err == nil || !strings.Contains(err.Error(), "JSON-RPC error") {
		t.Errorf("got %v, want the server's JSON-RPC error", err)
	}
}

// cutProxy forwards to upstream, and when armed, cuts the first POST
// event stream right after its first progress notification.
type cutProxy struct {
	upstream    string
	resumeDelay time.Duration
	armed       atomic.Bool
	cuts        atomic.Int32
	resumes     atomic.Int32
}

func (p *cutProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.Header.Get("Last-Event-ID") != "" {
		p.resumes.Add(1)
		time.Sleep(p.resumeDelay)
	}
	out, err := http.NewRequestWithContext(r.Context(), r.Method, p.upstream+r.URL.RequestURI(), r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out.Header = r.Header.Clone()
	resp, err := http.DefaultTransport.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	cut := r.Method == http.MethodPost && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") && p.armed.CompareAndSwap(true, false)
	var seen []byte
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		chunk := buf[:n]
		if cut {
			seen = append(seen, chunk...)
			if i := bytes.Index(seen, []byte("notifications/progress")); i >= 0 {
				if j := bytes.Index(seen[i:], []byte("\n\n")); j >= 0 {
					end := len(chunk) - (len(seen) - (i + j + 2))
					w.Write(chunk[:end])
					w.(http.Flusher).Flush()
					p.cuts.Add(1)
					panic(http.ErrAbortHandler) // drop the connection mid-stream
				}
			}
		}
		if n > 0 {
			w.Write(chunk)
			w.(http.Flusher).Flush()
		}
		if err != nil {
			if err != io.EOF {
				panic(http.ErrAbortHandler)
			}
			return
		}
	}
}

var _ = fmt.Sprint
