package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/sse"
	"github.com/tracegate/tracegate/internal/wire"
)

func stdioCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("stdio", "", `Serve one MCP client over stdio (a desktop agent launches this command):
newline-delimited JSON-RPC on stdin and stdout, logs on stderr. The client
gets the same backends, plugins and tracing as over HTTP; the trace context
in its initialize _meta becomes the session's. Auth does not apply: the
client is the local user who launched tracegate. The admin listener (metrics,
viewer) runs if configured; no MCP listener is opened. When stdin ends, the
session is closed, telemetry flushed, and tracegate exits 0.`, stdout, stderr)
	path := fs.String("config", "tracegate.yaml", "configuration `file`; ${VAR} in values is expanded from the environment")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	r := loadConfig(*path, stderr)
	if r == nil {
		return exitFail
	}
	ctx, stop := signalContext(stderr)
	defer stop()
	if err := serveStdio(ctx, r.Config, r.Warnings, stdin, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "tracegate: %v\n", err)
		return exitFail
	}
	return exitOK
}

// serveStdio runs the gateway for one client on in and out until in ends
// or ctx is done, then shuts down as serve does.
func serveStdio(ctx context.Context, cfg *config.Config, warnings config.Errors, in io.Reader, out io.Writer, stderr io.Writer) error {
	if cfg.Cluster != nil {
		return errors.New("cluster: not used by tracegate stdio; remove the cluster section")
	}
	// The client is the local user who started this process; bearer
	// tokens and OAuth guard a network listener, which stdio has not.
	hadAuth := len(cfg.Auth.BearerTokens) > 0 || cfg.Auth.OAuth != nil
	cfg.Auth = config.Auth{}
	rt, err := newRuntimeTo(ctx, cfg, stderr, stderr)
	if err != nil {
		return err
	}
	log := rt.log
	if hadAuth {
		log.Info("auth is not applied to the stdio client")
	}
	var adminSrv *http.Server
	errc := make(chan error, 1)
	if cfg.AdminListen != "" && cfg.AdminListen != "off" {
		ln, err := net.Listen("tcp", cfg.AdminListen)
		if err != nil {
			rt.close(context.Background())
			return fmt.Errorf("listen %s: %w", cfg.AdminListen, err)
		}
		rt.adminAddr = ln.Addr().String()
		if adminSrv, err = rt.adminServer(nil, slog.NewLogLogger(log.Handler(), slog.LevelWarn)); err != nil {
			ln.Close()
			rt.close(context.Background())
			return err
		}
		go func() { errc <- serveHTTP(adminSrv, ln) }()
	}
	rt.gateway.Start(ctx)
	rt.logStart(warnings)
	log.Info("tracegate serving stdio", "admin", adminURL(rt.adminAddr, cfg.Admin.TLS), "backends", len(cfg.Backends))

	st := newStdioFront(rt.gateway.Handler(), out, log)
	done := make(chan error, 1)
	go func() { done <- st.read(in) }()
	var serveErr error
	select {
	case err := <-done:
		if err != nil {
			log.Warn("reading stdin", "error", err)
		}
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	grace := cfg.ShutdownGrace.D()
	if grace <= 0 {
		grace = config.DefaultShutdownGrace
	}
	log.Info("shutting down", "grace", grace.String(), "flush_timeout", rt.flushTimeout().String())
	sctx, cancel := context.WithTimeoutCause(context.Background(), grace, errors.New("shutdown grace period elapsed"))
	defer cancel()
	st.close(sctx)
	if adminSrv != nil {
		if err := adminSrv.Shutdown(sctx); err != nil {
			adminSrv.Close()
		}
	}
	rt.gateway.Close()
	flushErr := rt.flushTelemetry()
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return errors.Join(serveErr, flushErr)
	}
	return flushErr
}

// stdioFront is the MCP stdio transport over the gateway's HTTP handler:
// each message read is sent to the handler as an in-process POST, as a
// Streamable HTTP client would send it, and what comes back (a JSON body,
// the events of a stream, the events of the session's GET stream) is
// written out one message a line (MCP basic/transports, stdio).
type stdioFront struct {
	h   http.Handler
	log *slog.Logger

	outMu sync.Mutex
	out   *bufio.Writer

	// base is the context of every in-process request; stop ends them.
	base   context.Context
	stop   context.CancelFunc
	calls  sync.WaitGroup // requests in flight
	stream sync.WaitGroup // the GET stream

	mu      sync.Mutex
	session string // Mcp-Session-Id, once initialized
	version string // the negotiated protocol revision
	getOpen bool
}

func newStdioFront(h http.Handler, out io.Writer, log *slog.Logger) *stdioFront {
	base, stop := context.WithCancel(context.Background())
	return &stdioFront{h: h, log: log, out: bufio.NewWriter(out), base: base, stop: stop}
}

// read sends every line of in to the gateway until in ends. Requests run
// concurrently, as they would over HTTP (a call may be answered while the
// client answers the backend's sampling request); initialize waits for its
// answer, since everything after it needs the session.
func (st *stdioFront) read(in io.Reader) error {
	br := bufio.NewReaderSize(in, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if line = bytes.TrimSpace(line); len(line) > 0 {
			st.message(line)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (st *stdioFront) message(line []byte) {
	m, perr := wire.Parse(line)
	switch {
	case perr == nil && m.Method == "initialize":
		st.post(line, &m)
	case perr == nil && m.IsRequest():
		st.calls.Add(1)
		go func() { defer st.calls.Done(); st.post(line, &m) }()
	default:
		// Notifications, responses and what does not parse (the gateway
		// answers that) go in order.
		st.post(line, &m)
		if perr == nil && m.Method == "notifications/initialized" {
			st.openStream()
		}
	}
}

// request makes an in-process request to the MCP endpoint with the
// session's headers.
func (st *stdioFront) request(method string, body []byte) *http.Request {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	r, _ := http.NewRequestWithContext(st.base, method, "http://localhost/mcp", rd)
	r.Host = "localhost"
	r.RemoteAddr = "127.0.0.1:0"
	r.Header.Set("Accept", "application/json, text/event-stream")
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	st.mu.Lock()
	if st.session != "" {
		r.Header.Set("Mcp-Session-Id", st.session)
	}
	if st.version != "" {
		r.Header.Set("Mcp-Protocol-Version", st.version)
	}
	st.mu.Unlock()
	return r
}

func (st *stdioFront) post(line []byte, m *wire.Message) {
	resp := serveInProcess(st.h, st.request(http.MethodPost, line))
	defer resp.Body.Close()
	if m.Method == "initialize" && resp.StatusCode == http.StatusOK {
		st.mu.Lock()
		st.session = resp.Header.Get("Mcp-Session-Id")
		st.mu.Unlock()
	}
	if !st.copyBody(resp, m.ID, m.Method == "initialize") && m.IsRequest() {
		// A refusal in plain text (a wrong Host, a full gateway): the
		// client still gets an answer to its request.
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		st.write(wire.AppendError(nil, m.ID, -32603, fmt.Sprintf("tracegate: HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(msg))), nil))
	}
}

// copyBody writes the JSON-RPC messages of resp to out and reports
// whether the body held any. With initialize set, it keeps the protocol
// revision of the result.
func (st *stdioFront) copyBody(resp *http.Response, id []byte, initialize bool) bool {
	switch mediaTypeOf(resp.Header.Get("Content-Type")) {
	case "application/json":
		body, err := io.ReadAll(resp.Body)
		if err != nil || len(body) == 0 {
			return false
		}
		st.note(body, initialize)
		st.write(body)
		return true
	case "text/event-stream":
		rd := sse.NewReader(resp.Body, 0)
		defer rd.Release()
		n := 0
		for {
			ev, err := rd.Next()
			if err != nil {
				return n > 0
			}
			st.note(ev.Data, initialize)
			st.write(ev.Data)
			n++
		}
	}
	return false
}

// note keeps the protocol revision an initialize result negotiated; the
// client's later requests carry it (MCP basic/transports, protocol version
// header).
func (st *stdioFront) note(msg []byte, initialize bool) {
	if !initialize {
		return
	}
	m, err := wire.Parse(msg)
	if err != nil || m.Result == nil {
		return
	}
	if v, ok := wire.GetString(m.Result, "protocolVersion"); ok {
		st.mu.Lock()
		st.version = v
		st.mu.Unlock()
	}
}

// openStream opens the session's GET stream, which carries what the
// gateway sends outside any call (list changes, a backend's log messages),
// and copies its events out until it ends.
func (st *stdioFront) openStream() {
	st.mu.Lock()
	if st.getOpen || st.session == "" {
		st.mu.Unlock()
		return
	}
	st.getOpen = true
	st.mu.Unlock()
	st.stream.Add(1)
	go func() {
		defer st.stream.Done()
		resp := serveInProcess(st.h, st.request(http.MethodGet, nil))
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			st.log.Warn("stdio: the session's GET stream was refused", "status", resp.StatusCode)
			return
		}
		st.copyBody(resp, nil, false)
	}()
}

// write writes one message and a newline. A message is one line: JSON
// relayed from a backend may hold newlines between tokens, which are
// compacted away.
func (st *stdioFront) write(msg []byte) {
	if bytes.IndexByte(msg, '\n') >= 0 || bytes.IndexByte(msg, '\r') >= 0 {
		var b bytes.Buffer
		if json.Compact(&b, msg) == nil {
			msg = b.Bytes()
		}
	}
	st.outMu.Lock()
	defer st.outMu.Unlock()
	st.out.Write(msg)
	st.out.WriteByte('\n')
	if err := st.out.Flush(); err != nil {
		st.log.Debug("stdio: writing stdout", "error", err)
	}
}

// close ends the session: calls in flight finish within ctx, then the
// session is deleted (its GET stream ends with it) and whatever is left
// is cancelled.
func (st *stdioFront) close(ctx context.Context) {
	calls := make(chan struct{})
	go func() { st.calls.Wait(); close(calls) }()
	select {
	case <-calls:
	case <-ctx.Done():
		st.log.Warn("calls cut at the end of the grace period", "error", context.Cause(ctx))
	}
	st.mu.Lock()
	sid := st.session
	st.mu.Unlock()
	if sid != "" {
		resp := serveInProcess(st.h, st.request(http.MethodDelete, nil))
		resp.Body.Close()
	}
	st.stop()
	st.calls.Wait()
	st.stream.Wait()
}

// serveInProcess serves r with h on a goroutine and returns the response
// once h has written its header, with a body that streams what h writes.
func serveInProcess(h http.Handler, r *http.Request) *http.Response {
	pr, pw := io.Pipe()
	w := &pipeResponse{header: http.Header{}, pw: pw, ready: make(chan struct{})}
	go func() {
		defer func() {
			w.WriteHeader(http.StatusOK) // a handler that wrote nothing
			pw.Close()
		}()
		h.ServeHTTP(w, r)
	}()
	<-w.ready
	return &http.Response{StatusCode: w.status, Header: w.sent, Body: pr, Request: r}
}

// pipeResponse is the http.ResponseWriter of an in-process request: the
// header is handed over on WriteHeader, the body through a pipe, flushed
// as written (a stream's events arrive one by one).
type pipeResponse struct {
	header, sent http.Header
	status       int
	pw           *io.PipeWriter
	once         sync.Once
	ready        chan struct{}
}

func (w *pipeResponse) Header() http.Header { return w.header }

func (w *pipeResponse) WriteHeader(status int) {
	w.once.Do(func() {
		w.status, w.sent = status, w.header.Clone()
		close(w.ready)
	})
}

func (w *pipeResponse) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.pw.Write(b)
}

func (w *pipeResponse) Flush() {}

func mediaTypeOf(v string) string {
	v, _, _ = strings.Cut(v, ";")
	return strings.ToLower(strings.TrimSpace(v))
}
