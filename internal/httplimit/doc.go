// Package httplimit bounds what HTTP clients can make the MCP listener
// hold: the size of a request body and the time taken to send it (Body),
// and the number of requests and long-lived streams in progress at once
// (Concurrency). Each refusal is counted in the tracegate.limit.refusals
// metric (Refusals), labelled by the limit that refused it.
//
// The middlewares are plain http.Handler wrappers, configured by their
// struct fields, and sit in front of the MCP handler.
package httplimit
