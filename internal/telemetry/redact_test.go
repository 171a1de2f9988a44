package telemetry_test

import (
	"context"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/telemetry"
	"github.com/tracegate/tracegate/internal/testlog"
)

// TestExportErrorsAreRedacted plants a secret in the OTLP endpoint's user
// info and query and in an OTLP header, makes every export fail (a refused
// connection quotes the URL; the http/json exporter quotes it too), and
// greps every output channel of the package for it: the log, the
// Exporters description, and the errors of ForceFlush and New.
func TestExportErrorsAreRedacted(t *testing.T) {
	t.Parallel()
	const secret = "pl4nted-S3CRET-value"
	for _, protocol := range []string{"http/protobuf", "http/json", "grpc"} {
		t.Run(protocol, func(t *testing.T) {
			t.Parallel()
			dead := strings.TrimPrefix(deadEndpoint(t), "http://")
			endpoint := "http://user:" + secret + "@" + dead + "/otel?api_key=" + secret
			var logs testlog.Buffer
			tel := newTelemetry(t, config.Telemetry{Exporter: "otlp"}, map[string]string{
				"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
				"OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
				"OTEL_EXPORTER_OTLP_HEADERS":  "Authorization=Bearer%20" + url.PathEscape(secret),
				"OTEL_EXPORTER_OTLP_TIMEOUT":  "200",
				"OTEL_METRICS_EXPORTER":       "none",
			}, telemetry.Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
			_, s := tel.TracerProvider.Tracer("test").Start(context.Background(), "lost")
			s.End()
			flushErr := tel.ForceFlush(context.Background())
			out := logs.String() + strings.Join(tel.Exporters, "\n")
			if flushErr != nil {
				out += flushErr.Error()
			}
			if strings.Contains(out, secret) {
				t.Errorf("secret leaked:\n%s", out)
			}
			if !strings.Contains(logs.String(), "span export failed") {
				t.Errorf("no export failure logged, so nothing was checked:\n%s", logs.String())
			}
		})
	}

	_, err := telemetry.New(context.Background(), config.Telemetry{Exporter: "otlp"}, telemetry.Options{Getenv: envOf(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "ftp://u:" + secret + "@h/?token=" + secret,
	})})
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("New with a bad endpoint: got %v, want an error without the secret", err)
	}
}
