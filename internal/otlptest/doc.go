// Package otlptest is a real OTLP receiver for tests. It speaks OTLP/HTTP
// (binary protobuf and the JSON encoding, optionally gzipped) and OTLP/gRPC,
// as the OTLP specification describes them
// (https://opentelemetry.io/docs/specs/otlp/), and keeps what it receives as
// flat values that tests can assert on: spans with hex ids, string kinds and
// plain attribute maps, and metric data points by name.
//
// Point an exporter at URL() and read the spans back:
//
//	rcv := otlptest.NewReceiver(t)
//	exp, _ := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(rcv.URL()+"/v1/traces"))
//	...
//	spans := rcv.WaitForSpans(t, 5*time.Second, otlptest.HasSpanNamed("tools/call echo"))
//
// A receiver can also hang or answer 503 (SetBehavior), so that tests can
// check that a broken collector never slows the request path.
package otlptest
