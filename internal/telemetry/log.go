package telemetry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel/trace"

	"github.com/tracegate/tracegate/internal/config"
)

// NewLogger returns the process logger: JSON (default) or text, at the
// configured level (default info). Every record written with a context
// that carries a valid span gets trace_id and span_id (DESIGN.md section
// 4), so a log line leads to its trace.
func NewLogger(w io.Writer, cfg config.Log) (*slog.Logger, error) {
	return NewLoggerLevel(w, cfg, new(slog.LevelVar))
}

// NewLoggerLevel is NewLogger with its level in level, which it sets to
// cfg.Level: the caller changes the level of the running logger there.
func NewLoggerLevel(w io.Writer, cfg config.Log, level *slog.LevelVar) (*slog.Logger, error) {
	l, err := LogLevel(cfg.Level)
	if err != nil {
		return nil, err
	}
	level.Set(l)
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch strings.ToLower(cfg.Format) {
	case "", "json":
		h = slog.NewJSONHandler(w, opts)
	case "text":
		h = slog.NewTextHandler(w, opts)
	default:
		return nil, fmt.Errorf("log format %q: want json or text", cfg.Format)
	}
	return slog.New(TraceHandler(h)), nil
}

// LogLevel reads log.level: debug, info (also the default), warn or error.
func LogLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "", "info":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("log level %q: want debug, info, warn or error", s)
}

// TraceHandler wraps h so that records written with a context carrying a
// valid span get trace_id and span_id attributes. Without a span it adds
// nothing and allocates nothing.
func TraceHandler(h slog.Handler) slog.Handler { return traceHandler{h} }

type traceHandler struct{ slog.Handler }

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(
			slog.String("trace_id", sc.TraceID().String()),
			slog.String("span_id", sc.SpanID().String()),
		)
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(attrs)}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(name)}
}
