// Package traceview is tracegate's embedded trace viewer: a bounded
// in-memory span store, a JSON API over it, and a web UI served from the
// binary, so that a trace can be seen with nothing else installed.
//
// Spans reach the [Store] two ways, and merge by trace ID:
//   - in process, as an sdktrace.SpanProcessor registered on the gateway's
//     tracer provider;
//   - from other processes, over OTLP/HTTP ([Store.OTLPHandler], the
//     OpenTelemetry Protocol specification, "OTLP/HTTP"), in binary
//     protobuf or JSON encoding.
//
// The store holds at most a fixed number of spans. When it is full the
// oldest traces, by first arrival, are evicted whole, so a trace on screen
// is never missing its beginning because of eviction.
//
// [Store.Handler] serves, relative to the admin root:
//
//	GET /api/traces             trace summaries, newest first, with filters
//	GET /api/traces/{trace_id}  every span of one trace
//	GET /api/services           the service names in the store
//	GET /ui/                    the web UI; /ui/?trace=<32 hex> opens one trace
//	GET /                       redirects to /ui/
package traceview
