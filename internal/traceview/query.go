package traceview

import (
	"fmt"
	"hash/maphash"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
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
	attrs                                   []attrMatch // all must match, each on some span
	errors                                  *bool       // nil: no filter
	minDuration, maxDuration                time.Duration
	from, to                                int64 // trace start bounds, unix ns; 0: none
	sort                                    string
	asc                                     bool
	limit, offset                           int
}

// attrMatch is one attr=key=value filter. It matches a span attribute or
// the span's resource attribute of that key whose value, as text, is
// value.
type attrMatch struct {
	key   attribute.Key
	value string
	hash  uint64 // attrHash of the pair
}

const (
	maxAttrFilters = 16
	sortStart      = "start"
	sortDuration   = "duration"
	sortSpans      = "spans"
)

// paramError names the query parameter at fault.
type paramError struct {
	param, msg string
}

func (e *paramError) Error() string { return e.param + ": " + e.msg }

func parseFilter(q url.Values, now time.Time) (filter, error) {
	f := filter{
		service: q.Get("service"),
		method:  q.Get("method"),
		tool:    q.Get("tool"),
		backend: q.Get("backend"),
		session: q.Get("session"),
		limit:   defaultLimit,
		sort:    sortStart,
	}
	var err error
	if f.errors, err = parseBool(q, "error"); err != nil {
		return f, err
	}
	if f.minDuration, err = parseDuration(q, "min_duration"); err != nil {
		return f, err
	}
	if f.maxDuration, err = parseDuration(q, "max_duration"); err != nil {
		return f, err
	}
	if f.maxDuration > 0 && f.maxDuration < f.minDuration {
		return f, &paramError{"max_duration", "is less than min_duration"}
	}
	attrs := q["attr"]
	if u := q.Get("user"); u != "" {
		// user= is attr=enduser.id=..., the caller identity the gateway
		// records with telemetry.capture_identity.
		attrs = append(attrs[:len(attrs):len(attrs)], string(keyUser)+"="+u)
	}
	if len(attrs) > maxAttrFilters {
		return f, &paramError{"attr", fmt.Sprintf("at most %d attr filters", maxAttrFilters)}
	}
	var h maphash.Hash
	h.SetSeed(attrSeed)
	for _, a := range attrs {
		k, v, ok := strings.Cut(a, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return f, &paramError{"attr", fmt.Sprintf("%q is not key=value", a)}
		}
		key := attribute.Key(strings.TrimSpace(k))
		f.attrs = append(f.attrs, attrMatch{key: key, value: v, hash: attrHash(&h, key, v)})
	}
	if f.from, err = parseTime(q, "start"); err != nil {
		return f, err
	}
	if f.to, err = parseTime(q, "end"); err != nil {
		return f, err
	}
	if v := q.Get("lookback"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return f, &paramError{"lookback", fmt.Sprintf("%q is not a positive duration such as 15m", v)}
		}
		if f.from != 0 {
			return f, &paramError{"lookback", "give start or lookback, not both"}
		}
		f.from = now.Add(-d).UnixNano()
	}
	if f.from != 0 && f.to != 0 && f.to < f.from {
		return f, &paramError{"end", "is before start"}
	}
	switch v := q.Get("sort"); v {
	case "", sortStart, sortDuration, sortSpans:
		if v != "" {
			f.sort = v
		}
	default:
		return f, &paramError{"sort", fmt.Sprintf("%q is not start, duration or spans", v)}
	}
	if f.asc, err = parseOrder(q); err != nil {
		return f, err
	}
	if f.limit, err = parseInt(q, "limit", 1, maxLimit, defaultLimit); err != nil {
		return f, err
	}
	if f.offset, err = parseInt(q, "offset", 0, math.MaxInt32, 0); err != nil {
		return f, err
	}
	return f, nil
}

// parseOrder reads order=asc|desc; it returns true for asc.
func parseOrder(q url.Values) (bool, error) {
	switch v := q.Get("order"); v {
	case "", "desc":
		return false, nil
	case "asc":
		return true, nil
	default:
		return false, &paramError{"order", fmt.Sprintf("%q is not asc or desc", v)}
	}
}

// parseBool reads a boolean parameter as strconv.ParseBool does; nil
// when it is absent.
func parseBool(q url.Values, name string) (*bool, error) {
	v := q.Get(name)
	if v == "" {
		return nil, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return nil, &paramError{name, fmt.Sprintf("%q is not true or false", v)}
	}
	return &b, nil
}

func parseDuration(q url.Values, name string) (time.Duration, error) {
	v := q.Get(name)
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, &paramError{name, fmt.Sprintf("%q is not a non-negative duration such as 50ms", v)}
	}
	return d, nil
}

// parseTime reads an RFC 3339 time, or a Unix time in milliseconds.
func parseTime(q url.Values, name string) (int64, error) {
	v := q.Get(name)
	if v == "" {
		return 0, nil
	}
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil && ms > 0 && ms < math.MaxInt64/1_000_000 {
		return ms * 1e6, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil || t.UnixNano() <= 0 {
		return 0, &paramError{name, fmt.Sprintf("%q is not an RFC 3339 time such as 2026-03-01T12:00:00Z, or Unix milliseconds", v)}
	}
	return t.UnixNano(), nil
}

func parseInt(q url.Values, name string, lo, hi, def int) (int, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, &paramError{name, fmt.Sprintf("%q is not an integer from %d to %d", v, lo, hi)}
	}
	return n, nil
}

// needsSpans reports whether matching must look at the spans themselves.
func (f *filter) needsSpans() bool {
	return f.method != "" || f.tool != "" || f.backend != "" || f.session != "" || len(f.attrs) > 0
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
		TraceID:     sn.entry.id.String(),
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
func (f *filter) matches(sum *summary, sn snapshot) bool {
	spans := sn.spans
	if f.service != "" && !slices.Contains(sum.Services, f.service) {
		return false
	}
	if f.errors != nil && *f.errors != sum.Error {
		return false
	}
	if d := time.Duration(sum.duration); d < f.minDuration || f.maxDuration > 0 && d > f.maxDuration {
		return false
	}
	if f.from != 0 && sum.start < f.from || f.to != 0 && sum.start > f.to {
		return false
	}
	if !f.needsSpans() {
		return true
	}
	if len(f.attrs) > 0 {
		ix := attrIndexOf(sn)
		for _, m := range f.attrs {
			if !ix.mayHave(m.hash) {
				return false
			}
		}
	}
	named := [4]bool{f.method == "", f.tool == "", f.backend == "", f.session == ""}
	anyNamed := named != [4]bool{true, true, true, true}
	var found uint64 // bit i: f.attrs[i] matched
	all := uint64(1)<<len(f.attrs) - 1
	var lastRes *origin
	for _, sp := range spans {
		for _, kv := range sp.attrs {
			if anyNamed {
				switch kv.Key {
				case keyMethod:
					named[0] = named[0] || valueText(kv.Value) == f.method
				case keyTool:
					named[1] = named[1] || valueText(kv.Value) == f.tool
				case keyBackend:
					named[2] = named[2] || valueText(kv.Value) == f.backend
				case keySession:
					named[3] = named[3] || valueText(kv.Value) == f.session
				}
			}
			if len(f.attrs) > 0 {
				found |= matchAttr(f.attrs, kv)
			}
		}
		// Spans of one process share their resource: look at it once.
		if len(f.attrs) > 0 && sp.res != nil && sp.res != lastRes {
			lastRes = sp.res
			for _, kv := range sp.res.attrs {
				found |= matchAttr(f.attrs, kv)
			}
		}
		if named == [4]bool{true, true, true, true} && found == all {
			return true
		}
	}
	return false
}

// matchAttr returns the bits of the filters kv satisfies.
func matchAttr(ms []attrMatch, kv attribute.KeyValue) uint64 {
	var bits uint64
	for i, m := range ms {
		if m.key == kv.Key && valueText(kv.Value) == m.value {
			bits |= 1 << i
		}
	}
	return bits
}

// valueText is an attribute value as the filters compare it: strings as
// they are, other types as the SDK's Emit writes them (true, 42, [a b]).
func valueText(v attribute.Value) string {
	if v.Type() == attribute.STRING {
		return v.AsString()
	}
	return v.Emit()
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

// listEntry is one matching trace of a list. Sort keys sit beside the
// pointer, so that sorting does not chase 25000 summaries scattered over
// the heap.
type listEntry struct {
	key, start int64
	sum        *summary
}

// listPool holds the buffers of list, which has an entry per matching
// trace; see snapshotPool.
var listPool = sync.Pool{New: func() any { return new([]listEntry) }}

// list returns one page of the summaries matching f, in f's order, and
// how many matched in all.
func (s *Store) list(f filter) ([]*summary, int) {
	buf := s.snapshotAll()
	defer releaseSnapshots(buf)
	sns := *buf
	lbuf := listPool.Get().(*[]listEntry)
	defer func() {
		clear(*lbuf)
		*lbuf = (*lbuf)[:0]
		listPool.Put(lbuf)
	}()
	all := (*lbuf)[:0]
	// Newest traces last: walking backwards fills the page's heap with
	// them first, and for the usual order, newest first, older ones then
	// fail its first comparison.
	for i := len(sns) - 1; i >= 0; i-- {
		sn := sns[i]
		if sum := summaryOf(sn); f.matches(sum, sn) {
			e := listEntry{key: sum.start, start: sum.start, sum: sum}
			switch f.sort {
			case sortDuration:
				e.key = sum.duration
			case sortSpans:
				e.key = int64(sum.SpanCount)
			}
			all = append(all, e)
		}
	}
	*lbuf = all // grown: keep it for the next request
	matched := len(all)
	all = firstSorted(all, f.offset+f.limit, func(a, b listEntry) int {
		c := cmpInt64(b.key, a.key)
		if f.asc {
			c = -c
		}
		if c == 0 {
			c = cmpInt64(b.start, a.start)
		}
		if c == 0 {
			c = strings.Compare(a.sum.TraceID, b.sum.TraceID)
		}
		return c
	})
	all = all[min(f.offset, len(all)):]
	out := make([]*summary, min(len(all), f.limit))
	for i := range out {
		out[i] = all[i].sum
	}
	return out, matched
}

// services returns the distinct service names in the store, sorted.
func (s *Store) services() []string {
	buf := s.snapshotAll()
	defer releaseSnapshots(buf)
	seen := map[string]bool{}
	// The summaries, cached, name each trace's services.
	for _, sn := range *buf {
		for _, name := range summaryOf(sn).Services {
			seen[name] = true
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
