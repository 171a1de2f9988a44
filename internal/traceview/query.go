package traceview

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
)

// Attribute keys the list filters match (OpenTelemetry MCP and GenAI
// semantic conventions, and tracegate's own).
const (
	keyMethod    = attribute.Key("mcp.method.name")
	keyTool      = attribute.Key("gen_ai.tool.name")
	keySession   = attribute.Key("mcp.session.id")
	keyBackend   = attribute.Key("tracegate.backend.name")
	keyErrorType = attribute.Key("error.type")
	keyUser      = attribute.Key("enduser.id") // with telemetry.capture_identity
)

const (
	defaultLimit = 100
	maxLimit     = 1000
)

// filter is a parsed /api/traces query. A trace matches a string filter
// when any of its spans does.
type filter struct {
	service, method, tool, backend, session string
	user                                    string // enduser.id
	errors                                  *bool  // nil: no filter
	minDuration                             time.Duration
	limit                                   int
}

// paramError names the query parameter at fault.
type paramError struct {
	param, msg string
}

func (e *paramError) Error() string { return e.param + ": " + e.msg }

func parseFilter(q url.Values) (filter, error) {
	f := filter{
		service: q.Get("service"),
		method:  q.Get("method"),
		tool:    q.Get("tool"),
		backend: q.Get("backend"),
		session: q.Get("session"),
		user:    q.Get("user"),
		limit:   defaultLimit,
	}
	if v := q.Get("error"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return f, &paramError{"error", fmt.Sprintf("%q is not true or false", v)}
		}
		f.errors = &b
	}
	if v := q.Get("min_duration"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return f, &paramError{"min_duration", fmt.Sprintf("%q is not a non-negative duration such as 50ms", v)}
		}
		f.minDuration = d
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return f, &paramError{"limit", fmt.Sprintf("%q is not an integer from 1 to %d", v, maxLimit)}
		}
		f.limit = n
	}
	return f, nil
}

// needsAttrs reports whether matching must look at span attributes.
func (f *filter) needsAttrs() bool {
	return f.method != "" || f.tool != "" || f.backend != "" || f.session != "" || f.user != ""
}

// summary describes one trace in the list. Once built it is never
// modified: it is cached on the trace and shared by concurrent requests.
type summary struct {
	TraceID     string   `json:"trace_id"`
	RootName    string   `json:"root_name"`
	RootService string   `json:"root_service"`
	Services    []string `json:"services"`
	SpanCount   int      `json:"span_count"`
	ErrorCount  int      `json:"error_count"`
	Error       bool     `json:"error"`
	DurationMS  float64  `json:"duration_ms"`
	StartTime   string   `json:"start_time"`

	start, duration int64
}

// summaryOf returns the trace's summary, from the cache when no span has
// arrived since it was built. The list is polled every few seconds by the
// UI, and most traces are finished, so most lookups hit.
func summaryOf(sn snapshot) *summary {
	if c := sn.entry.sum.Load(); c != nil && c.SpanCount == len(sn.spans) {
		return c
	}
	var (
		root, first *span
		start, end  int64
		errs        int
		svcs        []svcStart
	)
	for i, sp := range sn.spans {
		if i == 0 || sp.start < start {
			start = sp.start
		}
		if i == 0 || sp.end > end {
			end = sp.end
		}
		if !sp.parentID.IsValid() && (root == nil || sp.start < root.start) {
			root = sp
		}
		if first == nil || sp.start < first.start {
			first = sp
		}
		if sp.failed {
			errs++
		}
		svcs = addService(svcs, sp.service, sp.start)
	}
	if root == nil {
		// No span without a parent here: the root lives in a process that
		// did not export to this store. Show the earliest span instead.
		root = first
	}
	slices.SortStableFunc(svcs, func(a, b svcStart) int { return cmpInt64(a.start, b.start) })
	names := make([]string, len(svcs))
	for i, s := range svcs {
		names[i] = s.name
	}
	sum := &summary{
		TraceID:     sn.id.String(),
		RootName:    root.name,
		RootService: root.service,
		Services:    names,
		SpanCount:   len(sn.spans),
		ErrorCount:  errs,
		Error:       errs > 0,
		DurationMS:  millis(end - start),
		StartTime:   rfc3339(start),
		start:       start,
		duration:    end - start,
	}
	sn.entry.sum.Store(sum)
	return sum
}

// matches reports whether the trace passes f. The cheap checks use the
// summary; only attribute filters look at the spans.
func (f *filter) matches(sum *summary, spans []*span) bool {
	if f.service != "" && !slices.Contains(sum.Services, f.service) {
		return false
	}
	if f.errors != nil && *f.errors != sum.Error {
		return false
	}
	if time.Duration(sum.duration) < f.minDuration {
		return false
	}
	if !f.needsAttrs() {
		return true
	}
	found := [5]bool{f.method == "", f.tool == "", f.backend == "", f.session == "", f.user == ""}
	for _, sp := range spans {
		for _, kv := range sp.attrs {
			switch kv.Key {
			case keyMethod:
				found[0] = found[0] || kv.Value.String() == f.method
			case keyTool:
				found[1] = found[1] || kv.Value.String() == f.tool
			case keyBackend:
				found[2] = found[2] || kv.Value.String() == f.backend
			case keySession:
				found[3] = found[3] || kv.Value.String() == f.session
			case keyUser:
				found[4] = found[4] || kv.Value.String() == f.user
			}
		}
		if found == [5]bool{true, true, true, true, true} {
			return true
		}
	}
	return false
}

type svcStart struct {
	name  string
	start int64
}

// addService records the earliest start per service; traces name few
// services, so a slice beats a map.
func addService(svcs []svcStart, name string, start int64) []svcStart {
	for i := range svcs {
		if svcs[i].name == name {
			svcs[i].start = min(svcs[i].start, start)
			return svcs
		}
	}
	return append(svcs, svcStart{name, start})
}

// isFailed reports a failed span: status Error, or error.type set as the
// semantic conventions do for failed operations (for MCP, a tool result
// with isError is error.type=tool_error). It runs once per span, as the
// span is stored.
func isFailed(status codes.Code, attrs []attribute.KeyValue) bool {
	if status == codes.Error {
		return true
	}
	for _, kv := range attrs {
		if kv.Key == keyErrorType {
			return true
		}
	}
	return false
}

// list returns the summaries matching f, newest trace start first, and
// how many matched before the limit.
func (s *Store) list(f filter) ([]*summary, int) {
	var out []*summary
	for _, sn := range s.snapshotAll() {
		if sum := summaryOf(sn); f.matches(sum, sn.spans) {
			out = append(out, sum)
		}
	}
	slices.SortFunc(out, func(a, b *summary) int {
		if c := cmpInt64(b.start, a.start); c != 0 {
			return c
		}
		return strings.Compare(a.TraceID, b.TraceID)
	})
	matched := len(out)
	if len(out) > f.limit {
		out = out[:f.limit]
	}
	return out, matched
}

// services returns the distinct service names in the store, sorted.
func (s *Store) services() []string {
	seen := map[string]bool{}
	for _, sn := range s.snapshotAll() {
		for _, sp := range sn.spans {
			seen[sp.service] = true
		}
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func millis(ns int64) float64 { return float64(ns) / 1e6 }

func rfc3339(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }
