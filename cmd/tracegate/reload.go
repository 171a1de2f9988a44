package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"sync/atomic"

	"github.com/tracegate/tracegate/internal/auth"
	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/gateway"
	"github.com/tracegate/tracegate/internal/plugin"
	"github.com/tracegate/tracegate/internal/telemetry"
)

// A reload (SIGHUP, or POST /admin/reload) reads the configuration file
// again and applies it to the running gateway without dropping a client
// session: backends added connect, backends removed drain then close, and
// plugins, auth, limits and telemetry change in place. It is all or
// nothing: a file that does not pass `tracegate validate`, or whose
// plugins, auth, backend TLS or telemetry cannot be built, is refused,
// the running configuration is kept, and the reason is logged (and
// returned to the caller of /admin/reload).
//
// The settings in restartOnly cannot change in a running process: a
// reload applies everything else, keeps the running value of each of
// these, and warns, naming each one the file changed. Refusing the whole
// reload instead would leave a deny rule unapplied because a listen
// address was edited at the same time.

// restartOnly are the settings a reload keeps from the running
// configuration: each gives a pointer to its field.
var restartOnly = []struct {
	path  string
	field func(*config.Config) any
}{
	{"listen", func(c *config.Config) any { return &c.Listen }},
	{"admin_listen", func(c *config.Config) any { return &c.AdminListen }},
	{"tls", func(c *config.Config) any { return &c.TLS }},
	{"admin.tls", func(c *config.Config) any { return &c.Admin.TLS }},
	{"cluster", func(c *config.Config) any { return &c.Cluster }},
	{"telemetry.service_name", func(c *config.Config) any { return &c.Telemetry.ServiceName }},
	{"telemetry.viewer", func(c *config.Config) any { return &c.Telemetry.Viewer }},
	{"log.format", func(c *config.Config) any { return &c.Log.Format }},
}

// keepRestartOnly sets each restartOnly setting of next to running's and
// returns the paths of those next had changed.
func keepRestartOnly(next, running *config.Config) []string {
	var changed []string
	for _, s := range restartOnly {
		dst, src := reflect.ValueOf(s.field(next)).Elem(), reflect.ValueOf(s.field(running)).Elem()
		if !reflect.DeepEqual(dst.Interface(), src.Interface()) {
			changed = append(changed, s.path)
			dst.Set(src)
		}
	}
	return changed
}

// reloadReport is the outcome of a reload, and the body of the answer to
// POST /admin/reload.
type reloadReport struct {
	// Status is reloaded, or refused when the configuration was kept.
	Status string `json:"status"`
	File   string `json:"file"`
	// Errors say why a reload was refused, at file:line:column where
	// they have a place in the file, as tracegate validate -json does.
	Errors []problem `json:"errors,omitempty"`
	// The rest is empty when the reload was refused.
	// Backends added, removed (they drain, then close) and changed (a
	// new connection replaces the old one, which drains).
	Added   []string `json:"added"`
	Removed []string `json:"removed"`
	Changed []string `json:"changed"`
	// RestartRequired names the settings the file changed that a running
	// gateway keeps until it restarts.
	RestartRequired []string  `json:"restart_required"`
	Warnings        []problem `json:"warnings"`

	status  int             // HTTP status of the answer
	drained <-chan struct{} // closed once removed backends have closed
}

// refused is the report of a reload that changed nothing.
func refused(file string, status int, errs ...problem) *reloadReport {
	return &reloadReport{Status: "refused", File: file, Errors: errs, status: status,
		Added: []string{}, Removed: []string{}, Changed: []string{}, RestartRequired: []string{}, Warnings: []problem{}}
}

// reload reads the configuration file again and applies it. trigger
// names what asked (SIGHUP, POST /admin/reload) for the log.
func (rt *runtime) reload(ctx context.Context, trigger string) *reloadReport {
	rt.reloadMu.Lock()
	defer rt.reloadMu.Unlock()
	rep := rt.tryReload(ctx)
	if rep.Status != "reloaded" {
		lines := make([]string, len(rep.Errors))
		for i, p := range rep.Errors {
			lines[i] = p.format(rep.File, "")
		}
		rt.log.Error("configuration reload refused; the running configuration is kept", "trigger", trigger, "file", rep.File, "errors", lines)
		return rep
	}
	rt.log.Info("configuration reloaded", "trigger", trigger, "file", rep.File, "added", rep.Added, "removed", rep.Removed, "changed", rep.Changed)
	for _, p := range rep.RestartRequired {
		rt.log.Warn("configuration: "+p+" changed, which takes effect at the next restart; the running value is kept", "path", p)
	}
	return rep
}

// tryReload is reload, without the log of its outcome. Caller holds
// rt.reloadMu.
func (rt *runtime) tryReload(ctx context.Context) *reloadReport {
	if rt.path == "" {
		return refused("", http.StatusConflict, problem{Message: "this gateway was not started from a configuration file (tracegate serve -config FILE), so there is nothing to reload"})
	}
	data, err := os.ReadFile(rt.path)
	if err != nil {
		return refused(rt.path, http.StatusBadRequest, problem{Message: err.Error()})
	}
	r := config.Check(data, os.Getenv)
	if errs := checkErrors(r); len(errs) > 0 {
		return refused(rt.path, http.StatusBadRequest, errs...)
	}
	cfg, running := r.Config, rt.config()
	restart := keepRestartOnly(cfg, running)
	at := func(path string, err error) problem {
		line, col := r.Position(path)
		return problem{line, col, path, err.Error()}
	}

	// Everything that can fail is built before anything changes.
	for i, b := range cfg.Backends {
		if err := checkBackendTLS([]config.Backend{b}, rt.log); err != nil {
			return refused(rt.path, http.StatusBadRequest, at("backends["+strconv.Itoa(i)+"]", err))
		}
	}
	level, err := telemetry.LogLevel(cfg.Log.Level)
	if err != nil {
		return refused(rt.path, http.StatusBadRequest, at("log.level", err))
	}
	chain := rt.chain
	if !reflect.DeepEqual(cfg.Plugins, running.Plugins) {
		// Unchanged entries keep their plugin, and its rate-limit buckets.
		popts, _ := rt.pluginOptions(rt.chain) // the cluster, if any, is open since start
		if chain, err = plugin.New(cfg.Plugins, popts); err != nil {
			return refused(rt.path, http.StatusBadRequest, at("plugins", err))
		}
	}
	var tel *telemetry.Change
	if !reflect.DeepEqual(exportSettings(cfg.Telemetry), exportSettings(running.Telemetry)) {
		if tel, err = rt.tel.Prepare(ctx, cfg.Telemetry); err != nil {
			return refused(rt.path, http.StatusBadRequest, at("telemetry", err))
		}
	}
	done, err := rt.gateway.Reload(ctx, cfg, rt.configOptions(cfg, chain))
	if err != nil {
		if tel != nil {
			tel.Discard()
		}
		if errors.Is(err, gateway.ErrClosed) || ctx.Err() != nil {
			return refused(rt.path, http.StatusServiceUnavailable, problem{Message: err.Error()})
		}
		return refused(rt.path, http.StatusBadRequest, at("auth", err))
	}

	// The gateway runs the new configuration; the rest follows.
	if tel != nil {
		tel.Apply(flushTimeout(cfg))
		rt.exporters.Store(&tel.Exporters)
	}
	rt.chain = chain
	if rt.limits != nil {
		rt.limits.SetLimits(cfg.Limits.MaxConcurrentRequests, cfg.Limits.MaxStreams)
	}
	rt.adminAuth.Store(newBearerCheck(cfg.AdminTokens()))
	rt.level.Set(level)
	rt.identity.Store(cfg.Telemetry.CaptureIdentity)
	rt.current.Store(cfg)
	rt.logStart(r.Warnings)

	rep := &reloadReport{
		Status: "reloaded", File: rt.path, status: http.StatusOK, drained: done.Drained,
		Added: nonNil(done.Added), Removed: nonNil(done.Removed), Changed: nonNil(done.Changed),
		RestartRequired: nonNil(restart), Warnings: []problem{},
	}
	for _, w := range r.Warnings {
		rep.Warnings = append(rep.Warnings, problem{w.Line, w.Column, w.Path, w.Msg})
	}
	return rep
}

// exportSettings are the telemetry settings the providers' switches hold
// (telemetry.Telemetry.Prepare): when they are unchanged, the exporters
// keep their connections. The rest of the section is read per request
// (gateway.TracingOptions) or at shutdown.
func exportSettings(t config.Telemetry) any {
	return struct {
		Exporter    string
		OTLP        config.OTLP
		Sampler     config.Sampler
		Propagators []string
	}{t.Exporter, t.OTLP, t.Sampler, t.Propagators}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// serveReload serves POST /admin/reload: 200 with what changed, 400 with
// the errors of a file that is refused, 409 when there is no file.
func (rt *runtime) serveReload(w http.ResponseWriter, r *http.Request) {
	rep := rt.reload(r.Context(), "POST /admin/reload")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(rep.status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(rep)
}

// identityLogHandler adds the caller's identity to log records while on
// is set (telemetry.capture_identity, which a reload may change).
type identityLogHandler struct {
	slog.Handler
	on *atomic.Bool
}

func (h identityLogHandler) Handle(ctx context.Context, r slog.Record) error {
	if h.on.Load() {
		return auth.LogHandler(h.Handler).Handle(ctx, r)
	}
	return h.Handler.Handle(ctx, r)
}

func (h identityLogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return identityLogHandler{h.Handler.WithAttrs(as), h.on}
}

func (h identityLogHandler) WithGroup(name string) slog.Handler {
	return identityLogHandler{h.Handler.WithGroup(name), h.on}
}
