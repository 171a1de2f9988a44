package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

// Error types recorded as error.type and in reports. HTTP failures use the
// status code and JSON-RPC failures the error code, as the HTTP and MCP
// semantic conventions do.
const (
	errTimeout         = "timeout"
	errCancelled       = "cancelled"
	errDNS             = "dns"
	errRefused         = "connection_refused"
	errConnection      = "connection_error"
	errTLS             = "tls"
	errInvalidResponse = "invalid_response"
	errTool            = "tool_error"
	errExpect          = "expect_mismatch"
	errProtocol        = "unsupported_protocol"
	errInvalidURL      = "invalid_url"
)

// failure is a diagnosed step failure: typ is a low-cardinality error.type
// value and msg a one-line explanation for the operator.
type failure struct {
	typ     string
	msg     string
	rpcCode *int64 // set for JSON-RPC errors
	err     error
}

func (f *failure) Error() string { return f.msg }
func (f *failure) Unwrap() error { return f.err }

func failf(typ, format string, args ...any) *failure {
	return &failure{typ: typ, msg: fmt.Sprintf(format, args...)}
}

// asFailure diagnoses any error; failures pass through unchanged.
func asFailure(err error, timeout time.Duration) *failure {
	var f *failure
	if errors.As(err, &f) {
		return f
	}
	return diagnoseTransport(err, timeout)
}

// diagnoseTransport explains an error from http.Client.Do or from reading a
// response body. It never includes the request URL, whose query may hold
// secrets.
func diagnoseTransport(err error, timeout time.Duration) *failure {
	if errors.Is(err, context.DeadlineExceeded) {
		return &failure{typ: errTimeout, msg: "timeout after " + formatTimeout(timeout), err: err}
	}
	if errors.Is(err, context.Canceled) {
		return &failure{typ: errCancelled, msg: "cancelled", err: err}
	}
	inner := err
	var uerr *url.Error
	if errors.As(err, &uerr) {
		inner = uerr.Err
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return &failure{typ: errDNS, msg: fmt.Sprintf("cannot resolve host %q: %s (check the URL)", dnsErr.Name, dnsErr.Err), err: err}
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		addr := ""
		var opErr *net.OpError
		if errors.As(err, &opErr) && opErr.Addr != nil {
			addr = " by " + opErr.Addr.String()
		}
		return &failure{typ: errRefused, msg: "connection refused" + addr + " (is the server running on that port?)", err: err}
	}
	var verr *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	if errors.As(err, &verr) || errors.As(err, &unknownCA) || errors.As(err, &hostErr) || errors.As(err, &invalid) {
		return &failure{typ: errTLS, msg: "TLS certificate not trusted: " + oneLine(inner.Error(), 160) + " (pass -insecure to skip verification)", err: err}
	}
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		return &failure{typ: errTLS, msg: "TLS handshake failed: the server does not speak TLS (try http://)", err: err}
	}
	var alert tls.AlertError
	if errors.As(err, &alert) || strings.Contains(err.Error(), "tls:") {
		return &failure{typ: errTLS, msg: "TLS handshake failed: " + oneLine(inner.Error(), 160), err: err}
	}
	return &failure{typ: errConnection, msg: "request failed: " + oneLine(inner.Error(), 160), err: err}
}

// diagnoseStatus explains a non-2xx HTTP response. A JSON-RPC error body is
// reported as such: stateless servers answer bad requests with HTTP 4xx and
// a JSON-RPC error (SEP-2575).
func diagnoseStatus(resp *http.Response, body []byte, haveSession bool) *failure {
	code := resp.StatusCode
	status := fmt.Sprintf("HTTP %d %s", code, http.StatusText(code))
	if f := rpcErrorBody(resp, body); f != nil {
		f.msg += " (" + status + ")"
		return f
	}
	typ := strconv.Itoa(code)
	switch code {
	case http.StatusUnauthorized:
		msg := status + ": the server wants credentials (pass -bearer TOKEN or -header Authorization=...)"
		if wa := resp.Header.Get("WWW-Authenticate"); wa != "" {
			msg += "; WWW-Authenticate: " + oneLine(wa, 160)
		}
		return failf(typ, "%s", msg)
	case http.StatusForbidden:
		return failf(typ, "%s: the credentials were refused%s", status, bodyHint(body))
	case http.StatusNotFound:
		if haveSession {
			return failf(typ, "%s: the server no longer knows the session (expired or restarted?)", status)
		}
		return failf(typ, "%s: not an MCP endpoint? (check the path, often /mcp or /sse)", status)
	case http.StatusMethodNotAllowed:
		return failf(typ, "%s: not an MCP endpoint? (it refuses %s)", status, resp.Request.Method)
	}
	return failf(typ, "%s%s", status, bodyHint(body))
}

// rpcErrorBody returns the JSON-RPC error carried by body, if any.
func rpcErrorBody(resp *http.Response, body []byte) *failure {
	if mediaType(resp.Header.Get("Content-Type")) != "application/json" {
		return nil
	}
	var msg rpcMessage
	if json.Unmarshal(body, &msg) != nil || msg.Error == nil {
		return nil
	}
	return msg.Error.failure()
}

// diagnoseBody explains a 2xx body that is not the JSON-RPC response expected.
func diagnoseBody(contentType string, body []byte) *failure {
	mt := mediaType(contentType)
	trimmed := strings.TrimSpace(string(body))
	if mt == "text/html" || strings.HasPrefix(strings.ToLower(trimmed), "<!doctype html") || strings.HasPrefix(strings.ToLower(trimmed), "<html") {
		return failf(errInvalidResponse, "got an HTML page, not JSON-RPC: not an MCP endpoint?")
	}
	if mt != "application/json" && mt != "text/event-stream" {
		return failf(errInvalidResponse, "unexpected Content-Type %q (want application/json or text/event-stream): not an MCP endpoint?", contentType)
	}
	if !json.Valid(body) {
		return failf(errInvalidResponse, "response is not valid JSON: %s", oneLine(trimmed, 80))
	}
	return failf(errInvalidResponse, "response is JSON but not a JSON-RPC 2.0 response: %s", oneLine(trimmed, 80))
}

func bodyHint(body []byte) string {
	s := strings.TrimSpace(string(body))
	if s == "" || !utf8.ValidString(s) {
		return ""
	}
	return ": " + oneLine(s, 120)
}

func mediaType(contentType string) string {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return strings.ToLower(strings.TrimSpace(contentType))
	}
	return mt
}

// oneLine flattens s to a single line of at most n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}

func formatTimeout(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return d.String()
}
