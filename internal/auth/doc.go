// Package auth authenticates the clients of tracegate's MCP listener and
// gets the gateway's own credentials for its backends.
//
// Clients present "Authorization: Bearer" tokens: static tokens from the
// configuration, or JWT access tokens from one OAuth 2.1 authorization server,
// as the MCP authorization specification (revisions 2025-06-18 and
// 2025-11-25) asks of a resource server: signature checked against the
// issuer's JWKS (RFC 7517), iss, aud (RFC 8707 resource indicator), exp and
// nbf checked, and refusals that point to the protected resource metadata
// (RFC 9728).
//
// The caller's token stops here. [Authenticator.Middleware] removes the
// Authorization header before the request goes on, so no handler behind it,
// and no backend, ever sees it; backends get the gateway's own credentials
// ([BackendTransport]). What handlers get instead is an [Identity], from
// [FromContext].
package auth
