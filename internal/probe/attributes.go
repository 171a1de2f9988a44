package probe

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
)

// Span attributes, from the OpenTelemetry MCP, GenAI, RPC and network
// semantic conventions.
const (
	attrMethodName       = attribute.Key("mcp.method.name")
	attrProtocolVersion  = attribute.Key("mcp.protocol.version")
	attrSessionID        = attribute.Key("mcp.session.id")
	attrResourceURI      = attribute.Key("mcp.resource.uri")
	attrToolName         = attribute.Key("gen_ai.tool.name")
	attrPromptName       = attribute.Key("gen_ai.prompt.name")
	attrOperationName    = attribute.Key("gen_ai.operation.name")
	attrErrorType        = attribute.Key("error.type")
	attrRPCStatusCode    = attribute.Key("rpc.response.status_code")
	attrServerAddress    = attribute.Key("server.address")
	attrServerPort       = attribute.Key("server.port")
	attrNetworkProtocol  = attribute.Key("network.protocol.name")
	attrNetworkTransport = attribute.Key("network.transport")
)

// Per-request _meta keys of the stateless revision (SEP-2575).
const (
	metaProtocolVersion    = "io.modelcontextprotocol/protocolVersion"
	metaClientInfo         = "io.modelcontextprotocol/clientInfo"
	metaClientCapabilities = "io.modelcontextprotocol/clientCapabilities"
	metaServerInfo         = "io.modelcontextprotocol/serverInfo"
)

// paramHeaders returns the Mcp-Param-{Name} headers that the stateless
// revision requires for tool arguments whose input schema property carries
// an x-mcp-header annotation (SEP-2243). Absent, null and non-primitive
// arguments get no header.
func paramHeaders(schema, args json.RawMessage) map[string]string {
	var s schemaProps
	if json.Unmarshal(schema, &s) != nil || len(s.Properties) == 0 {
		return nil
	}
	var a map[string]json.RawMessage
	if json.Unmarshal(args, &a) != nil {
		return nil
	}
	out := map[string]string{}
	collectParamHeaders(s.Properties, a, out)
	return out
}

type schemaProps struct {
	Properties map[string]schemaProps `json:"properties"`
	Header     json.RawMessage        `json:"x-mcp-header"`
}

func collectParamHeaders(props map[string]schemaProps, args map[string]json.RawMessage, out map[string]string) {
	for name, prop := range props {
		arg, ok := args[name]
		if !ok {
			continue
		}
		var header string
		if json.Unmarshal(prop.Header, &header) == nil && header != "" {
			if v, ok := headerValue(arg); ok {
				out["Mcp-Param-"+header] = v
			}
		}
		if len(prop.Properties) > 0 {
			var nested map[string]json.RawMessage
			if json.Unmarshal(arg, &nested) == nil {
				collectParamHeaders(prop.Properties, nested, out)
			}
		}
	}
}

// headerValue renders a string, boolean or safe integer argument as a header
// value, base64-wrapped when it is not plain visible ASCII (SEP-2243).
func headerValue(raw json.RawMessage) (string, bool) {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return "", false
	}
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case bool:
		s = strconv.FormatBool(v)
	case float64:
		const maxSafe = 1<<53 - 1
		if v != math.Trunc(v) || math.Abs(v) > maxSafe {
			return "", false
		}
		s = strconv.FormatInt(int64(v), 10)
	default:
		return "", false
	}
	if needsBase64(s) {
		return "=?base64?" + base64.StdEncoding.EncodeToString([]byte(s)) + "?=", true
	}
	return s, true
}

func needsBase64(s string) bool {
	if s == "" {
		return false
	}
	if s[0] == ' ' || s[0] == '\t' || s[len(s)-1] == ' ' || s[len(s)-1] == '\t' {
		return true
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return true
		}
	}
	return strings.HasPrefix(s, "=?base64?") && strings.HasSuffix(s, "?=")
}
