// Package redact removes credentials from every string that leaves the
// process: errors sent to clients, /readyz, span attributes and status,
// log lines and metric labels.
//
// Three kinds of secret are found:
//
//   - the user info of a URL (https://user:pass@host), anywhere in a text;
//   - the value of a query or fragment parameter whose name looks like a
//     credential (api_key, access_token, X-Amz-Signature, password, ...),
//     inside URLs and in bare key=value text, and the credential after
//     "Bearer" or "Basic";
//   - values the caller names, such as configured backend header values,
//     which may appear verbatim or percent-encoded in any text.
//
// Each is replaced by [Mask]. The rest of the text is kept byte for byte,
// so an error still says what failed and where.
package redact
