// Package telemetry builds tracegate's tracer, meter and logger providers
// from config.Telemetry and the standard OTEL_* environment variables of
// the OpenTelemetry SDK configuration spec
// (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/).
// Environment variables win over the config file.
//
// Nothing here is global: New returns providers and a propagator that the
// caller passes on, and tests build as many as they like in parallel.
//
// Export never blocks a request. Ended spans go into a bounded queue that
// drops, and counts, what it cannot hold; a single worker batches them to
// the exporter under a timeout.
package telemetry
