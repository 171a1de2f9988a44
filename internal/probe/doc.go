// Package probe implements `tracegate probe`, a synthetic check that proves
// an MCP server answers real protocol requests and leaves one trace behind.
//
// The probe speaks JSON-RPC over HTTP itself (Streamable HTTP, and the legacy
// HTTP+SSE transport of revision 2024-11-05) rather than through an SDK
// client, so that it controls every header and `_meta` key and can say
// exactly which step failed and why.
//
// A run is: a handshake (`initialize` for the stateful revisions 2025-03-26,
// 2025-06-18 and 2025-11-25, or `server/discover` for the stateless revision
// 2026-07-28, SEP-2575), `tools/list`, then optionally `tools/call`,
// `resources/read` and `prompts/get`. Each step is one CLIENT span named after
// the MCP semantic conventions, under one INTERNAL `probe` root span; the
// step's span context travels in the `traceparent` HTTP header and in
// `params._meta.traceparent` (SEP-414).
package probe
