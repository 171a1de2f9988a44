package otlptest

import (
	"context"
	"net"
	"net/http"
	"testing"

	collectormetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	grpcstatus "google.golang.org/grpc/status"
)

// NewGRPCReceiver starts an OTLP/gRPC receiver (trace and metrics services)
// on 127.0.0.1, plaintext. URL returns http://127.0.0.1:PORT. It is stopped
// when the test ends.
func NewGRPCReceiver(tb testing.TB, opts ...Option) *Receiver {
	tb.Helper()
	r := newReceiver(opts)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("otlptest: listen: %v", err)
	}
	srv := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(srv, grpcTraces{r: r})
	collectormetrics.RegisterMetricsServiceServer(srv, grpcMetrics{r: r})
	go func() { _ = srv.Serve(lis) }()
	r.url = "http://" + lis.Addr().String()
	tb.Cleanup(func() {
		close(r.stop)
		srv.Stop()
	})
	return r
}

// admit applies the receiver's behavior; a nil error means store the data.
func (r *Receiver) admit(ctx context.Context) error {
	r.requests.Add(1)
	h := http.Header{}
	md, _ := metadata.FromIncomingContext(ctx)
	for k, vs := range md {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	r.setHeaders(h)
	switch Behavior(r.behavior.Load()) {
	case Hang:
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.stop:
			return grpcstatus.Error(codes.Unavailable, "otlptest: stopped")
		}
	case Unavailable:
		return grpcstatus.Error(codes.Unavailable, "otlptest: unavailable")
	}
	return nil
}

type grpcTraces struct {
	collectortrace.UnimplementedTraceServiceServer
	r *Receiver
}

func (g grpcTraces) Export(ctx context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	if err := g.r.admit(ctx); err != nil {
		return nil, err
	}
	g.r.store(req)
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

type grpcMetrics struct {
	collectormetrics.UnimplementedMetricsServiceServer
	r *Receiver
}

func (g grpcMetrics) Export(ctx context.Context, req *collectormetrics.ExportMetricsServiceRequest) (*collectormetrics.ExportMetricsServiceResponse, error) {
	if err := g.r.admit(ctx); err != nil {
		return nil, err
	}
	g.r.store(req)
	return &collectormetrics.ExportMetricsServiceResponse{}, nil
}
