package otlptest_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tracegate/tracegate/internal/otlptest"
)

// treeJSON is one trace of four spans, sent out of order, whose root has a
// remote parent that tracegate never sees.
const treeJSON = `{"resourceSpans": [
 {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "backend"}}]},
  "scopeSpans": [{"spans": [
   {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "0000000000000003", "parentSpanId": "0000000000000002",
    "name": "tools/call echo", "kind": 2, "startTimeUnixNano": "300", "endTimeUnixNano": "400"}]}]},
 {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "tracegate"}}]},
  "scopeSpans": [{"spans": [
   {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "0000000000000002", "parentSpanId": "0000000000000001",
    "name": "tools/call echo", "kind": 3, "startTimeUnixNano": "200", "endTimeUnixNano": "500"},
   {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "0000000000000004", "parentSpanId": "0000000000000001",
    "name": "plugin.hook.invoke", "kind": 1, "startTimeUnixNano": "150", "endTimeUnixNano": "160",
    "status": {"code": 2, "message": "denied"}},
   {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "0000000000000001", "parentSpanId": "00000000000000ff",
    "name": "tools/call files_echo", "kind": 2, "startTimeUnixNano": "100", "endTimeUnixNano": "600"}]}]}
]}`

func TestTree(t *testing.T) {
	t.Parallel()
	rcv := otlptest.NewReceiver(t)
	resp := post(t, rcv.URL()+"/v1/traces", "application/json", "", []byte(treeJSON))
	if resp.StatusCode != 200 {
		t.Fatalf("status: got %d, want 200", resp.StatusCode)
	}
	got := rcv.Tree("0af7651916cd43dd8448eb211c80319c")
	want := `tools/call files_echo [server] tracegate (parent 00000000000000ff not received)
  plugin.hook.invoke [internal] tracegate error: denied
  tools/call echo [client] tracegate
    tools/call echo [server] backend
`
	if got != want {
		t.Errorf("Tree:\ngot\n%s\nwant\n%s", got, want)
	}
	if got := rcv.Tree("ffffffffffffffffffffffffffffffff"); got != "" {
		t.Errorf("Tree of an unknown trace: got %q, want empty", got)
	}
}

// fatalTB records a Fatalf instead of stopping the test.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
}

func TestWaitForSpansTimeoutDumps(t *testing.T) {
	t.Parallel()
	rcv := otlptest.NewReceiver(t)
	post(t, rcv.URL()+"/v1/traces", "application/json", "", []byte(treeJSON))

	ftb := &fatalTB{TB: t}
	got := rcv.WaitForSpans(ftb, 20*time.Millisecond, otlptest.HasSpanNamed("never sent"))
	if got != nil {
		t.Errorf("WaitForSpans on timeout: got %d spans, want nil", len(got))
	}
	for _, want := range []string{"within 20ms", "have 4", "trace 0af7651916cd43dd8448eb211c80319c", "    tools/call echo [server] backend"} {
		if !strings.Contains(ftb.msg, want) {
			t.Errorf("failure message lacks %q:\n%s", want, ftb.msg)
		}
	}

	if spans := rcv.WaitForSpans(t, time.Second, otlptest.HasSpanNamed("tools/call echo", "plugin.hook.invoke")); len(spans) != 4 {
		t.Errorf("WaitForSpans: got %d spans, want 4", len(spans))
	}
	ftb = &fatalTB{TB: t}
	rcv.WaitForMetric(ftb, 10*time.Millisecond, "absent.metric", nil)
	if !strings.Contains(ftb.msg, `metric "absent.metric"`) {
		t.Errorf("WaitForMetric failure message: got %q, want it to name the metric", ftb.msg)
	}
}
