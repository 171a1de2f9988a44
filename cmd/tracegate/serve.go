package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/tlsconf"
)

func serveCmd(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "tracegate.yaml", "configuration file")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "tracegate: %s:\n%v\n", *path, err)
		return exitFail
	}
	ctx, stop := signalContext(stderr)
	defer stop()
	if err := serve(ctx, cfg, serveHooks{}, stderr); err != nil {
		fmt.Fprintf(stderr, "tracegate: %v\n", err)
		return exitFail
	}
	return exitOK
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
}

// serve runs the gateway for cfg until ctx is done, then shuts down within
// cfg.ShutdownGrace: stop accepting, let in-flight requests finish, stop
// backends and their children, and flush telemetry last.
func serve(ctx context.Context, cfg *config.Config, hooks serveHooks, stderr io.Writer) error {
	if cfg.Cluster != nil {
		// Better to refuse than to run one replica that the operator
		// believes shares sessions with others.
		return errors.New("cluster: sharing sessions between replicas through Redis is not built yet; run one replica and remove the cluster section")
	}
	rt, err := newRuntime(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	log := rt.log
	mcpLn, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		rt.close(context.Background())
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	rt.mcpAddr = mcpLn.Addr().String()
	mcpSrv := &http.Server{Handler: rt.gateway.Handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
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
		mux := rt.adminMux()
		if hooks.admin != nil {
			hooks.admin(mux)
		}
		adminSrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		if adminSrv.TLSConfig, err = listenerTLS(cfg.Admin.TLS, log); err != nil {
			adminLn.Close()
			mcpSrv.Close()
			rt.close(context.Background())
			return fmt.Errorf("admin.tls: %w", err)
		}
		servers = append(servers, adminSrv)
		go func() { errc <- serveHTTP(adminSrv, adminLn) }()
	}
	rt.gateway.Start(ctx)
	log.Info("tracegate listening", "mcp", scheme(cfg.TLS)+rt.mcpAddr+"/mcp", "admin", adminURL(rt.adminAddr, cfg.Admin.TLS), "backends", len(cfg.Backends))
	if hooks.started != nil {
		hooks.started(ctx, rt)
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	grace := cfg.ShutdownGrace.D()
	if grace <= 0 {
		grace = 10 * time.Second
	}
	log.Info("shutting down", "grace", grace.String())
	sctx, cancel := context.WithTimeoutCause(context.Background(), grace, errors.New("shutdown grace period elapsed"))
	defer cancel()
	for _, s := range servers {
		if err := s.Shutdown(sctx); err != nil {
			log.Warn("in-flight requests cut at the end of the grace period", "error", context.Cause(sctx))
			s.Close()
		}
	}
	rt.close(sctx)
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return nil
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
