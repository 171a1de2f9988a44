package httplimit_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tracegate/tracegate/internal/httplimit"
)

// BenchmarkLimits measures one POST of a small JSON-RPC request through
// Body alone (the read that any handler needing the whole body pays), and
// through the three limits in the order serve stacks them:
//
//	go test -run '^$' -bench Limits -benchmem ./internal/httplimit
func BenchmarkLimits(b *testing.B) {
	const body = `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"weather_get_weather","arguments":{"city":"Lisbon"}}}`
	sink := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	bodyOnly := (&httplimit.Body{MaxBytes: 4 << 20, ReadTimeout: 10 * time.Second}).Wrap(sink)
	all := (&httplimit.WriteTimeout{Timeout: 30 * time.Second}).Wrap(
		(&httplimit.Concurrency{MaxRequests: 128, MaxStreams: 256}).Wrap(bodyOnly))
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{{"body", bodyOnly}, {"all", all}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				// Building the request is in both figures; compare them.
				bc.h.ServeHTTP(discard{}, httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(body)))
			}
		})
	}
}

// discard is a ResponseWriter that keeps nothing and, like a test
// recorder, supports no deadlines.
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(p []byte) (int, error) { return len(p), nil }
func (discard) WriteHeader(int)             {}
