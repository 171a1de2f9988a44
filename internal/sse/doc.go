// Package sse reads and writes text/event-stream, the server-sent events
// format of the WHATWG HTML standard ("Server-sent events", section
// 9.2.5 "Parsing an event stream" and 9.2.6 "Interpreting an event
// stream").
//
// It is tracegate's one SSE implementation: the backend transports
// (Streamable HTTP and the legacy HTTP+SSE transport of MCP 2024-11-05)
// and the probe read with [Reader], and the gateway writes its own streams
// with [Writer].
//
// The points that matter for MCP, and that a hand-rolled reader tends to
// miss:
//   - An event whose data buffer is empty is not dispatched. TypeScript SDK
//     servers with resumability open every POST response stream with such a
//     priming event, which carries only an id.
//   - The last event id survives events without data, and an "id" field
//     with no value resets it. Resumption (MCP SEP-1699) sends it back in
//     Last-Event-ID.
//   - "retry" sets the reconnection time, which the caller honours.
//   - Lines end with LF, CRLF or a lone CR, and a CR that ends one read may
//     be followed by the LF at the start of the next.
package sse
