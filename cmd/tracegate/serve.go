package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/redact"
	"github.com/tracegate/tracegate/internal/tlsconf"
)

func serveCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("serve", "", "Run the gateway: the MCP listener and the admin listener, with the backends,\nplugins and telemetry of the configuration file. SIGHUP (or POST /admin/reload)\nreloads the file without dropping a session; an invalid file is refused and\nthe running configuration kept. SIGINT or SIGTERM shuts it down within\nshutdown_grace; a second signal exits at once.", stdout, stderr)
	path := fs.String("config", "tracegate.yaml", "configuration `file`; ${VAR} in values is expanded from the environment")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	// SIGHUP reloads the configuration; caught from the start, so that
	// one sent while the gateway starts is applied once it runs rather
	// than ending the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	r := loadConfig(*path, stderr)
	if r == nil {
		return exitFail
	}
	ctx, stop := signalContext(stderr)
	defer stop()
	if err := serve(ctx, r.Config, serveHooks{warnings: r.Warnings, configPath: *path, hup: hup}, stderr); err != nil {
		fmt.Fprintf(stderr, "tracegate: %v\n", err)
		return exitFail
	}
	return exitOK
}

// loadConfig reads and checks the configuration file at path for a
// command that runs the gateway. It reports every error, at file:line:column,
// and returns nil when there is one.
func loadConfig(path string, stderr io.Writer) *config.Result {
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(stderr, "tracegate: %v\n", err)
		return nil
	}
	r := config.Check(data, os.Getenv)
	if len(r.Errors) > 0 {
		for _, e := range r.Errors {
			fmt.Fprintln(stderr, problem{e.Line, e.Column, e.Path, e.Msg}.format(path, ""))
		}
		fmt.Fprintf(stderr, "tracegate: %s: %d errors; nothing started\n", path, len(r.Errors))
		return nil
	}
	return r
}

// signalContext is cancelled by the first SIGINT or SIGTERM; a second one
// exits at once, for a shutdown that hangs.
func signalContext(stderr io.Writer) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ch
		cancel()
		<-ch
		fmt.Fprintln(stderr, "tracegate: second signal, exiting now")
		os.Exit(exitFail)
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}

// serveHooks lets the demo add to a running gateway.
type serveHooks struct {
	// started is called once both listeners accept, with their addresses.
	started func(ctx context.Context, rt *runtime)
	// admin adds handlers to the admin mux.
	admin func(mux *http.ServeMux)
	// adminListener, if set, is the admin listener, already bound, in
	// place of cfg.AdminListen. The demo binds it first, because its
	// backends must know the viewer's address before the gateway starts,
	// and that address is only known once bound when the port is 0.
	adminListener net.Listener
	// warnings, if not nil, are logged at start in place of
	// cfg.Warnings(): serve passes config.Check's, which also name unset
	// variables and say where in the file each one is.
	warnings config.Errors
	// configPath is the file cfg came from, which a reload reads again;
	// "" when there is none (the demo): no reload.
	configPath string
	// hup receives SIGHUP, each a reload.
	hup <-chan os.Signal
}

// HTTP server bounds. No http.Server.WriteTimeout on the MCP listener: it
// bounds a whole response, and a stream of server-sent events lasts as long
// as its session. httplimit.WriteTimeout bounds each write instead, so a
// client that stops reading is cut while one that reads stays connected.
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 2 * time.Minute  // a keep-alive connection with no request
	maxHeaderBytes    = 64 << 10         // traceparent, baggage (8 KiB), a token, a session ID
	writeTimeout      = 30 * time.Second // per write on the MCP listener
	adminReadTimeout  = 30 * time.Second // the admin listener has no streams
	adminWriteTimeout = time.Minute
)

// serve runs the gateway for cfg until ctx is done, then shuts down:
// streams are closed and in-flight requests finish within
// cfg.ShutdownGrace, backends and their children stop, and telemetry is
// flushed last within cfg.Telemetry.FlushTimeout. A flush that loses
// spans is an error.
func serve(ctx context.Context, cfg *config.Config, hooks serveHooks, stderr io.Writer) error {
	rt, err := newRuntime(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	rt.path = hooks.configPath
	log := rt.log
	mcpHandler, err := rt.mcpHandler()
	if err != nil {
		rt.close(context.Background())
		return err
	}
	mcpLn, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		rt.close(context.Background())
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	rt.mcpAddr = mcpLn.Addr().String()
	errorLog := slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	mcpSrv := mcpServer(mcpHandler, errorLog)
	if mcpSrv.TLSConfig, err = listenerTLS(cfg.TLS, log); err != nil {
		mcpLn.Close()
		rt.close(context.Background())
		return fmt.Errorf("tls: %w", err)
	}
	servers := []*http.Server{mcpSrv}
	errc := make(chan error, 2)
	go func() { errc <- serveHTTP(mcpSrv, mcpLn) }()

	if adminLn := hooks.adminListener; adminLn != nil || cfg.AdminListen != "" && cfg.AdminListen != "off" {
		var err error
		if adminLn == nil {
			adminLn, err = net.Listen("tcp", cfg.AdminListen)
		}
		if err != nil {
			mcpSrv.Close()
			rt.close(context.Background())
			return fmt.Errorf("listen %s: %w", cfg.AdminListen, err)
		}
		rt.adminAddr = adminLn.Addr().String()
		adminSrv, err := rt.adminServer(hooks.admin, errorLog)
		if err != nil {
			adminLn.Close()
			mcpSrv.Close()
			rt.close(context.Background())
			return err
		}
		servers = append(servers, adminSrv)
		go func() { errc <- serveHTTP(adminSrv, adminLn) }()
	}
	if rt.cluster != nil {
		rt.cluster.Start(ctx)
		log.Info("cluster: joined", "replica", rt.cluster.Self().ID, "advertise_url", redact.URL(rt.cluster.Self().URL))
	}
	rt.gateway.Start(ctx)
	warnings := hooks.warnings
	if warnings == nil {
		warnings = cfg.Warnings()
	}
	rt.logStart(warnings)
	log.Info("tracegate listening", "mcp", scheme(cfg.TLS)+rt.mcpAddr+"/mcp", "admin", adminURL(rt.adminAddr, cfg.Admin.TLS), "backends", len(cfg.Backends))
	if hooks.started != nil {
		hooks.started(ctx, rt)
	}
	if hooks.hup != nil {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-hooks.hup:
					// The outcome is logged; there is no one to answer.
					rt.reload(ctx, "SIGHUP")
				}
			}
		}()
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	log.Info("shutting down", "grace", rt.grace().String(), "flush_timeout", rt.flushTimeout().String())
	rt.closeStreams()
	shutdownServers(rt.grace(), log, servers...)
	flushErr := rt.stop()
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return errors.Join(serveErr, flushErr)
	}
	return flushErr
}

// mcpServer is the HTTP server of an MCP listener.
func mcpServer(h http.Handler, errorLog *log.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          errorLog,
	}
}

// grace is shutdown_grace, in force.
func (rt *runtime) grace() time.Duration {
	if d := rt.config().ShutdownGrace.D(); d > 0 {
		return d
	}
	return config.DefaultShutdownGrace
}

// closeStreams ends the gateway's streams, the first step of a shutdown: a
// stream's handler returns only when its client hangs up, and Shutdown
// would wait the whole grace period for it.
func (rt *runtime) closeStreams() {
	rt.limits.CloseStreams()
	rt.gateway.CloseStreams()
}

// shutdownServers lets the servers' in-flight requests finish within
// grace, then cuts what is left.
func shutdownServers(grace time.Duration, log *slog.Logger, servers ...*http.Server) {
	sctx, cancel := context.WithTimeoutCause(context.Background(), grace, errors.New("shutdown grace period elapsed"))
	defer cancel()
	for _, s := range servers {
		if err := s.Shutdown(sctx); err != nil {
			log.Warn("in-flight requests cut at the end of the grace period", "error", context.Cause(sctx))
			s.Close()
		}
	}
}

// stop closes the gateway, its backends and its cluster membership, then
// flushes telemetry, last and with a deadline of its own: the spans of
// the calls that just finished are in its queue.
func (rt *runtime) stop() error {
	rt.gateway.Close()
	rt.closeCluster()
	return rt.flushTelemetry()
}

// adminServer is the admin listener's server, over TLS when admin.tls is
// set; extra adds handlers to its mux.
func (rt *runtime) adminServer(extra func(*http.ServeMux), errorLog *log.Logger) (*http.Server, error) {
	srv := &http.Server{
		Handler:           rt.adminHandler(extra),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       adminReadTimeout,
		WriteTimeout:      adminWriteTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          errorLog,
	}
	var err error
	if srv.TLSConfig, err = listenerTLS(rt.cfg.Admin.TLS, rt.log); err != nil {
		return nil, fmt.Errorf("admin.tls: %w", err)
	}
	return srv, nil
}

// logStart logs the effective configuration, secrets redacted, and the
// warnings about it.
func (rt *runtime) logStart(warnings config.Errors) {
	if ec, err := rt.effectiveConfig(); err != nil {
		rt.log.Warn("effective configuration", "error", err)
	} else {
		rt.log.Info("effective configuration", "version", ec.Version, "exporters", ec.Exporters, "config", ec.Config)
	}
	for _, w := range warnings {
		attrs := []any{"path", w.Path}
		if w.Line > 0 {
			attrs = append(attrs, "line", w.Line, "column", w.Column)
		}
		rt.log.Warn("configuration: "+w.Msg, attrs...)
	}
}

func adminURL(addr string, tc *config.ServerTLS) string {
	if addr == "" {
		return "off"
	}
	return scheme(tc) + addr
}

func scheme(tc *config.ServerTLS) string {
	if tc != nil {
		return "https://"
	}
	return "http://"
}

// listenerTLS returns the TLS configuration of a listener, or nil for
// plain HTTP.
func listenerTLS(tc *config.ServerTLS, log *slog.Logger) (*tls.Config, error) {
	if tc == nil {
		return nil, nil
	}
	return tlsconf.Server(tc, log)
}

// serveHTTP serves ln over TLS when srv has a TLS configuration (with
// HTTP/2 offered, as ServeTLS sets it up), else over plain HTTP.
func serveHTTP(srv *http.Server, ln net.Listener) error {
	if srv.TLSConfig != nil {
		return srv.ServeTLS(ln, "", "") // the certificate comes from TLSConfig
	}
	return srv.Serve(ln)
}
