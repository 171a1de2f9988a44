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
// The store holds at most a fixed number of spans and, by its estimate, a
// fixed number of bytes ([Limits]); every string it keeps is bounded. When
// it is full the oldest traces, by first arrival, are evicted whole, so a
// trace on screen is never missing its beginning because of eviction.
//
// Beside spans, the store keeps each backend's recent states, which the
// gateway reports through [Store.RecordBackendState].
//
// [Store.Handler] serves, relative to the admin root:
//
//	GET /api/traces                  trace summaries: search, sort, pages
//	GET /api/traces/{trace_id}       every span of one trace
//	GET /api/traces/{trace_id}/otlp  one trace as OTLP/JSON, to download
//	GET /api/sessions                client sessions and stateless clients
//	GET /api/tools                   per tool and backend: rate, errors, percentiles
//	GET /api/backends                per backend: states, calls, connect traces
//	GET /api/services                the service names in the store
//	GET /ui/                         the web UI; /ui/?trace=<32 hex> opens one trace
//	GET /                            redirects to /ui/
package traceview
