package mcptrace

import (
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// Attribute keys of the OpenTelemetry MCP semantic conventions. The mcp.* and
// gen_ai.* keys moved to the GenAI semantic conventions repository and are no
// longer generated into go.opentelemetry.io/otel/semconv from v1.42.0 on, so
// they are spelled out here; the general keys come from semconv v1.43.0.
const (
	keyMethodName      = attribute.Key("mcp.method.name")
	keyProtocolVersion = attribute.Key("mcp.protocol.version")
	keyResourceURI     = attribute.Key("mcp.resource.uri")
	keySessionID       = attribute.Key("mcp.session.id")
	keyRequestID       = attribute.Key("jsonrpc.request.id")

	keyToolName       = attribute.Key("gen_ai.tool.name")
	keyPromptName     = attribute.Key("gen_ai.prompt.name")
	keyOperationName  = attribute.Key("gen_ai.operation.name")
	keyToolCallArgs   = attribute.Key("gen_ai.tool.call.arguments")
	keyToolCallResult = attribute.Key("gen_ai.tool.call.result")

	keyErrorType       = semconv.ErrorTypeKey
	keyStatusCode      = semconv.RPCResponseStatusCodeKey
	keyNetTransport    = semconv.NetworkTransportKey
	keyNetProtoName    = semconv.NetworkProtocolNameKey
	keyNetProtoVersion = semconv.NetworkProtocolVersionKey
	keyServerAddress   = semconv.ServerAddressKey
	keyServerPort      = semconv.ServerPortKey
)

// tracegate's own attributes.
const (
	// AttrTraceContextSource records which carrier gave a SERVER span its
	// parent: one of the [Source] values.
	AttrTraceContextSource = attribute.Key("tracegate.trace_context.source")
	// AttrTraceContextConflict is true on a SERVER span whose _meta and HTTP
	// headers both carried valid but different trace context. The span then
	// also links the header context.
	AttrTraceContextConflict = attribute.Key("tracegate.trace_context.conflict")

	// attrCarrier and attrReason label the dropped-context counter.
	attrCarrier = attribute.Key("tracegate.carrier")
	attrReason  = attribute.Key("tracegate.reason")
)

// Metric names. The four histograms are the MCP semantic conventions'.
const (
	metricServerOperation = "mcp.server.operation.duration"
	metricServerSession   = "mcp.server.session.duration"
	metricClientOperation = "mcp.client.operation.duration"
	metricClientSession   = "mcp.client.session.duration"
	// MetricDropped counts trace context values ignored on extraction, by
	// tracegate.carrier (header, meta) and tracegate.reason.
	MetricDropped = "tracegate.trace_context.dropped"
)

// durationBuckets are the ExplicitBucketBoundaries the MCP semantic
// conventions give for all four duration histograms, in seconds.
var durationBuckets = []float64{0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300}

// Values of well-known attributes.
const (
	opExecuteTool    = "execute_tool"
	errToolError     = "tool_error"
	errOther         = "_OTHER"
	transportTCP     = "tcp"
	transportPipe    = "pipe"
	protocolHTTP     = "http"
	methodCallTool   = "tools/call"
	methodGetPrompt  = "prompts/get"
	methodInitialize = "initialize"
)

// instrumentationName names the tracer and meter of this package.
const instrumentationName = "github.com/tracegate/tracegate/mcptrace"
