package otlptest_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	grpccodes "google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/tracegate/tracegate/internal/otlptest"
)

// exporterFor builds a real OTLP trace exporter of the given flavour
// pointed at a fresh receiver of the matching transport.
func exporterFor(t *testing.T, flavour string) (*otlptest.Receiver, sdktrace.SpanExporter) {
	t.Helper()
	ctx := context.Background()
	var (
		rcv *otlptest.Receiver
		exp sdktrace.SpanExporter
		err error
	)
	switch flavour {
	case "grpc":
		rcv = otlptest.NewGRPCReceiver(t)
		exp, err = otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(rcv.URL()),
			otlptracegrpc.WithHeaders(map[string]string{"x-flavour": flavour}))
	default:
		rcv = otlptest.NewReceiver(t)
		opts := []otlptracehttp.Option{
			otlptracehttp.WithEndpointURL(rcv.URL() + "/v1/traces"),
			otlptracehttp.WithHeaders(map[string]string{"x-flavour": flavour}),
		}
		switch flavour {
		case "http/protobuf+gzip":
			opts = append(opts, otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
		case "http/json":
			opts = append(opts, otlptracehttp.WithEncoding(otlptracehttp.EncodingJSON))
		}
		exp, err = otlptracehttp.New(ctx, opts...)
	}
	if err != nil {
		t.Fatalf("new %s exporter: %v", flavour, err)
	}
	return rcv, exp
}

func TestReceiverDecodesRealExporters(t *testing.T) {
	t.Parallel()
	for _, flavour := range []string{"http/protobuf", "http/protobuf+gzip", "http/json", "grpc"} {
		t.Run(flavour, func(t *testing.T) {
			t.Parallel()
			rcv, exp := exporterFor(t, flavour)
			tp := sdktrace.NewTracerProvider(
				sdktrace.WithSyncer(exp),
				sdktrace.WithResource(resource.NewSchemaless(
					attribute.String("service.name", "svc-under-test"),
					attribute.String("deployment.environment.name", "test"),
				)),
			)
			t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			tr := tp.Tracer("otlptest-scope")

			ctx, root := tr.Start(context.Background(), "tools/call echo", trace.WithSpanKind(trace.SpanKindServer),
				trace.WithAttributes(
					attribute.String("mcp.method.name", "tools/call"),
					attribute.Int64("jsonrpc.request.id", 42),
					attribute.Float64("ratio", 0.5),
					attribute.Bool("flag", true),
					attribute.StringSlice("list", []string{"a", "b"}),
				))
			linked := trace.NewSpanContext(trace.SpanContextConfig{
				TraceID: trace.TraceID{0xaa, 1}, SpanID: trace.SpanID{0xbb, 2}, TraceFlags: trace.FlagsSampled,
			})
			_, child := tr.Start(ctx, "tools/call echo backend", trace.WithSpanKind(trace.SpanKindClient),
				trace.WithLinks(trace.Link{SpanContext: linked, Attributes: []attribute.KeyValue{attribute.String("why", "header")}}))
			child.AddEvent("retry", trace.WithAttributes(attribute.Int("attempt", 2)))
			child.SetStatus(codes.Error, "backend down")
			child.End()
			root.SetStatus(codes.Ok, "")
			root.End()

			spans := rcv.WaitForSpans(t, 10*time.Second, otlptest.AtLeast(2))
			if len(spans) != 2 {
				t.Fatalf("got %d spans, want 2:\n%s", len(spans), rcv.Dump())
			}
			gotRoot, ok := rcv.SpanNamed("tools/call echo")
			if !ok {
				t.Fatalf("root span missing:\n%s", rcv.Dump())
			}
			gotChild, _ := rcv.SpanNamed("tools/call echo backend")

			rsc := root.SpanContext()
			checks := []struct {
				what      string
				got, want any
			}{
				{"root trace id", gotRoot.TraceID, rsc.TraceID().String()},
				{"root span id", gotRoot.SpanID, rsc.SpanID().String()},
				{"root parent", gotRoot.ParentSpanID, ""},
				{"root kind", gotRoot.Kind, "server"},
				{"root service", gotRoot.Service, "svc-under-test"},
				{"root resource attr", gotRoot.Resource["deployment.environment.name"], "test"},
				{"root scope", gotRoot.Scope, "otlptest-scope"},
				{"root status", gotRoot.StatusCode, "ok"},
				{"string attr", gotRoot.Attrs["mcp.method.name"], "tools/call"},
				{"int attr", gotRoot.Attrs["jsonrpc.request.id"], int64(42)},
				{"float attr", gotRoot.Attrs["ratio"], 0.5},
				{"bool attr", gotRoot.Attrs["flag"], true},
				{"slice attr", slices.Equal(gotRoot.Attrs["list"].([]any), []any{"a", "b"}), true},
				{"child trace id", gotChild.TraceID, rsc.TraceID().String()},
				{"child parent", gotChild.ParentSpanID, rsc.SpanID().String()},
				{"child span id", gotChild.SpanID, child.SpanContext().SpanID().String()},
				{"child kind", gotChild.Kind, "client"},
				{"child status", gotChild.StatusCode, "error"},
				{"child status message", gotChild.StatusMessage, "backend down"},
				{"link count", len(gotChild.Links), 1},
				{"event count", len(gotChild.Events), 1},
				{"start before end", gotChild.Start.After(gotChild.End), false},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s: got %v (%T), want %v (%T)", c.what, c.got, c.got, c.want, c.want)
				}
			}
			if len(gotChild.Links) == 1 {
				l := gotChild.Links[0]
				if l.TraceID != linked.TraceID().String() || l.SpanID != linked.SpanID().String() || l.Attrs["why"] != "header" {
					t.Errorf("link: got %+v, want trace %s span %s why=header", l, linked.TraceID(), linked.SpanID())
				}
			}
			if len(gotChild.Events) == 1 {
				e := gotChild.Events[0]
				if e.Name != "retry" || e.Attrs["attempt"] != int64(2) {
					t.Errorf("event: got %+v, want retry attempt=2", e)
				}
			}
			if got := rcv.LastHeaders().Get("X-Flavour"); got != flavour {
				t.Errorf("LastHeaders: got x-flavour %q, want %q", got, flavour)
			}
			if got := rcv.Trace(rsc.TraceID().String()); len(got) != 2 || got[0].Name != "tools/call echo" {
				t.Errorf("Trace: got %d spans starting %v, want 2 starting with the root", len(got), got)
			}
		})
	}
}

func TestReceiverFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		grpc     bool
		behavior otlptest.Behavior
	}{
		{"http unavailable", false, otlptest.Unavailable},
		{"http hang", false, otlptest.Hang},
		{"grpc unavailable", true, otlptest.Unavailable},
		{"grpc hang", true, otlptest.Hang},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			var (
				rcv *otlptest.Receiver
				exp sdktrace.SpanExporter
				err error
			)
			if tt.grpc {
				rcv = otlptest.NewGRPCReceiver(t, otlptest.WithBehavior(tt.behavior))
				exp, err = otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(rcv.URL()),
					otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}))
			} else {
				rcv = otlptest.NewReceiver(t, otlptest.WithBehavior(tt.behavior))
				exp, err = otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(rcv.URL()+"/v1/traces"),
					otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
			}
			if err != nil {
				t.Fatalf("new exporter: %v", err)
			}
			t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })

			tp := sdktrace.NewTracerProvider()
			_, s := tp.Tracer("t").Start(ctx, "lost")
			s.End()
			ectx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			defer cancel()
			err = exp.ExportSpans(ectx, []sdktrace.ReadOnlySpan{s.(sdktrace.ReadOnlySpan)})
			if err == nil {
				t.Fatalf("export to a %s receiver: got nil error, want one", tt.behavior)
			}
			if tt.behavior == otlptest.Hang && !errors.Is(err, context.DeadlineExceeded) && grpcstatus.Code(err) != grpccodes.DeadlineExceeded {
				t.Errorf("hang: got %v, want a deadline error", err)
			}
			if got := rcv.Requests(); got < 1 {
				t.Errorf("requests: got %d, want at least 1", got)
			}
			if got := len(rcv.Spans()); got != 0 {
				t.Errorf("stored spans: got %d, want 0", got)
			}

			// Recovery: the same receiver accepts once told to.
			rcv.SetBehavior(otlptest.Accept)
			if err := exp.ExportSpans(ctx, []sdktrace.ReadOnlySpan{s.(sdktrace.ReadOnlySpan)}); err != nil {
				t.Fatalf("export after recovery: %v", err)
			}
			if got := len(rcv.Spans()); got != 1 {
				t.Errorf("stored spans after recovery: got %d, want 1", got)
			}
		})
	}
}
