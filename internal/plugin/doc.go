// Package plugin is tracegate's policy chain: operator-configured plugins
// that see every tool call, prompt fetch and resource read before it reaches
// a backend (pre hooks) and every result before it reaches the client (post
// hooks), and may let it pass, rewrite it, or deny it.
//
// Each hook run that has at least one applicable plugin becomes a
// plugin.hook.invoke span with one plugin.execute child per plugin run
// (DESIGN.md section 4), so a trace shows which plugin stopped a call and why.
// When no plugin applies, [Chain.Run] returns at once: no span, no allocation.
//
// Built-in types: deny, allow, ratelimit, redact, max_size and schema. Tests
// and embedders add their own through [Options.Registry].
//
// Plugins never see or record more than they need: span attributes and log
// lines carry names, decisions and counts, never tool arguments or results.
package plugin
