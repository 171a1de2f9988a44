// Package plugin is tracegate's policy chain: operator-configured plugins
// that see every tool call, prompt fetch and resource read before it reaches
// a backend (pre hooks) and every result before it reaches the client (post
// hooks), and may let it pass, rewrite it, or deny it.
//
// Each hook run that has at least one applicable plugin becomes a
// plugin.hook.invoke span with one plugin.execute child per plugin run
// (DESIGN.md section 4), so a trace shows which plugin stopped a call and
// why. When no plugin applies, [Chain.Run] returns at once: no span, no
// allocation. A denial reaches the client as a JSON-RPC error ([RPCError]):
// [CodeDenied], [CodeRateLimited] or [CodePluginFailed].
//
// Every plugin entry takes the common keys name, type, backends and tools
// (globs, path.Match style, on backend names and on namespaced tool and
// prompt names or resource URIs; empty means everywhere), priority (lower
// runs first), on_error (fail or ignore) and timeout. The built-in types and
// their own keys:
//
//	deny       patterns: [glob, ...]   deny matching names; without patterns,
//	                                   deny every call the entry applies to,
//	                                   so {type: deny, tools: ["files_delete*"]}
//	                                   denies those tools. reason: optional text.
//	allow      patterns: [glob, ...]   required; deny names matching none.
//	ratelimit  rate: 20/s | 100/m | 1000/h (required), burst: n (default: the
//	           rate per second, rounded up), per: session | tool |
//	           session+tool | subject | subject+tool | global (default
//	           session); with [Options.SharedLimiter] the buckets are the
//	           replicas' common ones, and its own stand in while it fails
//	redact     patterns: [email, bearer_token, aws_access_key, credit_card,
//	           jwt], regex: [expr | {name, pattern}, ...], replacement
//	           (default [REDACTED]), apply_to: [arguments, results] (default both)
//	max_size   max_argument_bytes, max_result_bytes: 65536 or "64KiB"
//	schema     (no keys) check tool arguments against the tool's inputSchema
//
// deny, allow and ratelimit run on the pre hooks; redact and max_size where
// apply_to or their limits say; schema on tool_pre_invoke. Tests and
// embedders add their own types through [Options.Registry].
//
// Plugins never record more than they need: span attributes, denial
// reasons and log lines carry names, decisions, sizes and counts, never
// tool arguments or results.
package plugin
