// Package wire is tracegate's one model of a JSON-RPC 2.0 message, at the
// byte level.
//
// The gateway rewrites little in what it forwards: an id, a tool or prompt
// name, the trace fields of params._meta. Decoding a message into typed
// structs and encoding it again would cost more than everything else the
// gateway does, and would lose what a client sent that tracegate does not
// model. So a small scanner finds the members of an object and the extent
// of their values without decoding them; a [Message] records where the
// top-level members are, and the append functions build rewritten copies.
// The scanner checks structure as it goes and reports malformed input as
// [ErrSyntax]; it allocates only to unescape a string that has escapes.
package wire
