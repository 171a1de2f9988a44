// Package mcptrace joins MCP clients and servers built on the official Go
// SDK (github.com/modelcontextprotocol/go-sdk) into one OpenTelemetry trace.
//
// Trace context travels in two carriers: the HTTP headers of the transport,
// and the unprefixed traceparent, tracestate and baggage keys of an MCP
// message's params._meta, which SEP-414 reserves for W3C trace context, with
// values formatted exactly as the HTTP headers. The package implements:
//
//   - W3C Trace Context (https://www.w3.org/TR/trace-context/) and W3C Baggage
//     (https://www.w3.org/TR/baggage/) in both carriers: [MetaCarrier] adapts
//     _meta to the OpenTelemetry propagation API, and a [Propagation] extracts
//     with _meta taking precedence over headers and injects into copies.
//     Values that are not well-formed, and baggage over 8 KiB, are ignored and
//     counted in tracegate.trace_context.dropped; extraction never fails.
//   - The OpenTelemetry semantic conventions for MCP
//     (https://opentelemetry.io/docs/specs/semconv/gen-ai/mcp/): SERVER spans
//     from [ServerMiddleware], CLIENT spans from [ClientMiddleware], named
//     "{mcp.method.name} {target}", and the mcp.{client,server}.operation.duration
//     and mcp.{client,server}.session.duration histograms.
//   - [Transport], an http.RoundTripper that puts the current context in the
//     headers of outgoing requests without making a span of its own.
//
// A typical server:
//
//	server := mcp.NewServer(impl, nil)
//	server.AddReceivingMiddleware(mcptrace.ServerMiddleware(mcptrace.WithTracerProvider(tp)))
//	server.AddSendingMiddleware(mcptrace.ServerSendingMiddleware())
//
// and client:
//
//	client := mcp.NewClient(impl, nil)
//	client.AddSendingMiddleware(mcptrace.ClientMiddleware(mcptrace.WithTracerProvider(tp)))
//	transport := &mcp.StreamableClientTransport{Endpoint: url,
//		HTTPClient: &http.Client{Transport: mcptrace.NewTransport(nil)}}
//
// Providers and propagators are captured when a middleware, Propagation or
// Transport is built (the global ones at that time when none is given);
// nothing global is read on the request path. The default propagator is W3C
// Trace Context plus W3C Baggage, not the global propagator.
//
// Spans get their attributes right after they start, and only when they
// are recorded, so that an unsampled request builds none: a sampler sees a
// span's name (method and target), kind and parent, not its attributes.
//
// Tool arguments and results are recorded only with [WithContentCapture].
package mcptrace
