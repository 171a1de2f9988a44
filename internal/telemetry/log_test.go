package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/telemetry"
)

func spanContext() (context.Context, trace.SpanContext) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled,
	})
	return trace.ContextWithSpanContext(context.Background(), sc), sc
}

func TestLoggerAddsTraceIDs(t *testing.T) {
	t.Parallel()
	ctx, sc := spanContext()
	tests := []struct {
		name string
		log  func(l *slog.Logger)
		want map[string]any // fields of the JSON line; nil value means absent
	}{
		{"inside a span", func(l *slog.Logger) { l.InfoContext(ctx, "hello", "k", 1) },
			map[string]any{"msg": "hello", "trace_id": sc.TraceID().String(), "span_id": sc.SpanID().String(), "k": 1.0}},
		{"no span", func(l *slog.Logger) { l.InfoContext(context.Background(), "hello") },
			map[string]any{"msg": "hello", "trace_id": nil, "span_id": nil}},
		{"no context", func(l *slog.Logger) { l.Info("hello") },
			map[string]any{"msg": "hello", "trace_id": nil}},
		{"invalid span context", func(l *slog.Logger) {
			l.InfoContext(trace.ContextWithSpanContext(context.Background(), trace.SpanContext{}), "hello")
		}, map[string]any{"trace_id": nil}},
		{"after With", func(l *slog.Logger) { l.With("backend", "weather").WarnContext(ctx, "slow") },
			map[string]any{"level": "WARN", "backend": "weather", "trace_id": sc.TraceID().String()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			l, err := telemetry.NewLogger(&buf, config.Log{})
			if err != nil {
				t.Fatal(err)
			}
			tt.log(l)
			var line map[string]any
			if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
				t.Fatalf("log line %q is not JSON: %v", buf.String(), err)
			}
			for k, want := range tt.want {
				got, ok := line[k]
				if want == nil && ok {
					t.Errorf("%s: got %v, want absent", k, got)
				}
				if want != nil && got != want {
					t.Errorf("%s: got %v, want %v", k, got, want)
				}
			}
		})
	}
}

func TestLoggerConfig(t *testing.T) {
	t.Parallel()
	ctx, sc := spanContext()
	tests := []struct {
		name    string
		cfg     config.Log
		want    []string // substrings of the output
		notWant []string
		wantErr string
	}{
		{"text", config.Log{Format: "text"}, []string{"level=INFO", "msg=shown", "trace_id=" + sc.TraceID().String()}, []string{"{"}, ""},
		{"default level hides debug", config.Log{}, []string{`"msg":"shown"`}, []string{"hidden"}, ""},
		{"debug", config.Log{Level: "DEBUG"}, []string{`"msg":"hidden"`, `"msg":"shown"`}, nil, ""},
		{"error hides info", config.Log{Level: "error"}, nil, []string{"shown"}, ""},
		{"bad level", config.Log{Level: "verbose"}, nil, nil, `log level "verbose"`},
		{"bad format", config.Log{Format: "xml"}, nil, nil, `log format "xml"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			l, err := telemetry.NewLogger(&buf, tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one containing %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			l.DebugContext(ctx, "hidden")
			l.InfoContext(ctx, "shown")
			for _, w := range tt.want {
				if !strings.Contains(buf.String(), w) {
					t.Errorf("output %q lacks %q", buf.String(), w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(buf.String(), w) {
					t.Errorf("output %q has %q", buf.String(), w)
				}
			}
		})
	}
}

// TestTraceHandlerNoSpanCostsNothing calls the wrapper's Handle directly
// over a handler that does nothing, so that only the wrapper's own work is
// counted (a JSON handler's buffer pool is randomised under -race). Not
// parallel: AllocsPerRun refuses to run beside other tests.
func TestTraceHandlerNoSpanCostsNothing(t *testing.T) {
	h := telemetry.TraceHandler(slog.DiscardHandler)
	r := slog.NewRecord(time.Now(), slog.LevelInfo, "m", 0)
	r.AddAttrs(slog.Int("k", 1))
	ctx := context.Background()
	if got := testing.AllocsPerRun(1000, func() { _ = h.Handle(ctx, r) }); got != 0 {
		t.Errorf("allocations per record without a span: got %v, want 0", got)
	}
}
