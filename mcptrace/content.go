package mcptrace

import (
	"encoding/json"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// captureArguments records tools/call arguments when the operator opted in
// with WithContentCapture and the span is sampled.
func (c *config) captureArguments(span trace.Span, params mcp.Params) {
	if c.captureMax <= 0 || !span.IsRecording() {
		return
	}
	var data []byte
	switch p := params.(type) {
	case *mcp.CallToolParamsRaw:
		if p != nil {
			data = p.Arguments
		}
	case *mcp.CallToolParams:
		if p != nil && p.Arguments != nil {
			data, _ = json.Marshal(p.Arguments)
		}
	}
	if len(data) > 0 {
		span.SetAttributes(c.captured(keyToolCallArgs, data))
	}
}

// captureResult records a tools/call result, under the same conditions.
func (c *config) captureResult(span trace.Span, res mcp.Result) {
	if c.captureMax <= 0 || !span.IsRecording() {
		return
	}
	r, ok := res.(*mcp.CallToolResult)
	if !ok || r == nil {
		return
	}
	if data, err := json.Marshal(r); err == nil {
		span.SetAttributes(c.captured(keyToolCallResult, data))
	}
}

// captured redacts data, then cuts it to the configured size on a UTF-8
// boundary.
func (c *config) captured(key attribute.Key, data []byte) attribute.KeyValue {
	if c.redact != nil {
		data = c.redact(string(key), data)
	}
	return key.String(truncate(data, c.captureMax))
}

func truncate(data []byte, max int) string {
	if len(data) <= max {
		return string(data)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(data[cut]) {
		cut--
	}
	return string(data[:cut])
}

// captureRaw records raw JSON content under key when the operator opted in
// with WithContentCapture and the span is sampled.
func (c *config) captureRaw(span trace.Span, key attribute.Key, data []byte) {
	if c.captureMax <= 0 || !span.IsRecording() {
		return
	}
	span.SetAttributes(c.captured(key, data))
}
