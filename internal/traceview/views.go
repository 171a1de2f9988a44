package traceview

import (
	"cmp"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// The MCP views: sessions, tools and backends, aggregated from the store
// on each request. Each trace's part is extracted once (factsOf), so an
// aggregate over a full store costs a pass over cached facts.

// sessionJSON is one client session, or one stateless client.
type sessionJSON struct {
	Key             string        `json:"key"` // session ID, or "client:<name>@<address>" when stateless
	SessionID       string        `json:"session_id,omitempty"`
	Stateless       bool          `json:"stateless"`
	ClientName      string        `json:"client_name,omitempty"`
	ClientVersion   string        `json:"client_version,omitempty"`
	ClientAddress   string        `json:"client_address,omitempty"`
	Identity        string        `json:"identity,omitempty"`
	ProtocolVersion string        `json:"protocol_version,omitempty"`
	FirstSeen       string        `json:"first_seen"`
	LastSeen        string        `json:"last_seen"`
	DurationMS      float64       `json:"duration_ms"`
	Requests        int           `json:"requests"`
	Errors          int           `json:"errors"`
	Traces          int           `json:"traces"`
	Timeline        []sessionCall `json:"timeline"` // the latest maxTimeline requests, oldest first

	first, last int64
}

// sessionCall is one request of a session, placed on its timeline.
type sessionCall struct {
	TraceID    string  `json:"trace_id"`
	SpanID     string  `json:"span_id"`
	Name       string  `json:"name"`
	OffsetMS   float64 `json:"offset_ms"` // from the session's first request
	DurationMS float64 `json:"duration_ms"`
	Error      bool    `json:"error"`

	start int64
}

const maxTimeline = 200

type sessionsResponse struct {
	Sessions []*sessionJSON `json:"sessions"`
	Matched  int            `json:"matched"`
	Offset   int            `json:"offset"`
}

// sessionQuery is a parsed /api/sessions query.
type sessionQuery struct {
	errors        *bool
	client        string
	limit, offset int
}

func parseSessionQuery(q url.Values) (sessionQuery, error) {
	var sq sessionQuery
	var err error
	if sq.errors, err = parseBool(q, "error"); err != nil {
		return sq, err
	}
	sq.client = q.Get("client")
	if sq.limit, err = parseInt(q, "limit", 1, maxLimit, defaultLimit); err != nil {
		return sq, err
	}
	if sq.offset, err = parseInt(q, "offset", 0, 1<<31-1, 0); err != nil {
		return sq, err
	}
	return sq, nil
}

// sessionKey is the session a request belongs to: its session ID, or, for
// a stateless client, its client name, identity and address.
func sessionKey(r *request) string {
	switch {
	case r.session != "":
		return r.session
	case r.identity != "":
		return "client:" + r.clientName + "/" + r.identity + "@" + r.address
	}
	return "client:" + r.clientName + "@" + r.address
}

// reqRef names a request by its place: the trace in a snapshot, the
// request in that trace's facts.
type reqRef struct{ snap, req int32 }

// sessionAgg is one session's counts. It holds no pointer, so that
// filling tens of thousands costs no write barrier and gives the garbage
// collector nothing to scan.
type sessionAgg struct {
	first, last                 int64
	latestStart, describedStart int64
	latest, described           reqRef // the latest request, and the latest naming its client (snap -1: none)
	requests, errors, traces    int32
	firstSnap, lastSnap         int32 // the first and the latest trace in the snapshot with a request
}

// sessionScratch is the working memory of one sessions request. It is
// reused through sessionPool: a full store holds tens of thousands of
// sessions, and an index of them made per request was the most of what
// the request allocated, and so of what made the garbage collector run.
// Once grown, the index does not rehash either.
type sessionScratch struct {
	index  map[string]int32
	aggs   []sessionAgg
	picked []int32
}

var sessionPool = sync.Pool{New: func() any { return &sessionScratch{index: map[string]int32{}} }}

// sessions groups the clients' requests by session, most recent first.
// A first pass counts, with no allocation per request; a second builds
// the timelines of the page's sessions only.
func (s *Store) sessions(sq sessionQuery) sessionsResponse {
	buf := s.snapshotAll()
	defer releaseSnapshots(buf)
	sc := sessionPool.Get().(*sessionScratch)
	defer func() {
		clear(sc.index) // its keys are the sessions' strings
		sc.aggs, sc.picked = sc.aggs[:0], sc.picked[:0]
		sessionPool.Put(sc)
	}()
	sns := *buf
	req := func(ref reqRef) *request { return &factsOf(sns[ref.snap]).requests[ref.req] }
	index, aggs := sc.index, sc.aggs
	for si, sn := range sns {
		f := factsOf(sn)
		for i := range f.requests {
			r := &f.requests[i]
			ref := reqRef{int32(si), int32(i)}
			n, ok := index[r.key]
			if !ok {
				n = int32(len(aggs))
				index[r.key] = n
				aggs = append(aggs, sessionAgg{first: r.start, last: r.start + r.dur, latestStart: r.start, latest: ref,
					described: reqRef{-1, -1}, firstSnap: int32(si), lastSnap: -1})
			}
			a := &aggs[n]
			a.first = min(a.first, r.start)
			a.last = max(a.last, r.start+r.dur)
			if r.start >= a.latestStart {
				a.latest, a.latestStart = ref, r.start
			}
			// Client facts may be on some requests only (initialize
			// carries them).
			if r.clientName != "" && (a.described.snap < 0 || r.start >= a.describedStart) {
				a.described, a.describedStart = ref, r.start
			}
			a.requests++
			if r.failed {
				a.errors++
			}
			// A trace's requests are visited together: count it once.
			if a.lastSnap != int32(si) {
				a.lastSnap = int32(si)
				a.traces++
			}
		}
	}
	sc.aggs = aggs // grown: keep it for the next request
	// Most recent sessions last: walking backwards fills the page's heap
	// with them first, and older ones then fail its first comparison.
	picked := sc.picked
	for i := len(aggs) - 1; i >= 0; i-- {
		a := &aggs[i]
		if sq.errors != nil && *sq.errors != (a.errors > 0) {
			continue
		}
		if sq.client != "" && (a.described.snap < 0 || req(a.described).clientName != sq.client) {
			continue
		}
		picked = append(picked, int32(i))
	}
	sc.picked = picked
	matched := len(picked)
	picked = firstSorted(picked, sq.offset+sq.limit, func(x, y int32) int {
		if c := cmp.Compare(aggs[y].last, aggs[x].last); c != 0 {
			return c
		}
		return strings.Compare(req(aggs[x].latest).key, req(aggs[y].latest).key)
	})
	picked = picked[min(sq.offset, len(picked)):]
	picked = picked[:min(sq.limit, len(picked))]
	out := make([]*sessionJSON, len(picked))
	from := len(sns) // the timelines need the traces from the page's first on
	for i, n := range picked {
		a := &aggs[n]
		from = min(from, int(a.firstSnap))
		r, d := req(a.latest), req(a.latest)
		if a.described.snap >= 0 {
			d = req(a.described)
		}
		out[i] = &sessionJSON{
			Key: r.key, SessionID: r.session, Stateless: r.session == "",
			ClientName: d.clientName, ClientVersion: cmp.Or(d.clientVersion, r.clientVersion),
			ClientAddress: cmp.Or(r.address, d.address), Identity: cmp.Or(r.identity, d.identity),
			ProtocolVersion: cmp.Or(r.protocol, d.protocol),
			Requests:        int(a.requests), Errors: int(a.errors), Traces: int(a.traces),
			first: a.first, last: a.last,
		}
	}

	page := make(map[string]*sessionJSON, len(out))
	for _, se := range out {
		se.Timeline = []sessionCall{}
		page[se.Key] = se
	}
	for _, sn := range sns[from:] {
		f := factsOf(sn)
		tid := ""
		for i := range f.requests {
			r := &f.requests[i]
			se := page[r.key]
			if se == nil {
				continue
			}
			if tid == "" {
				tid = sn.entry.id.String()
			}
			se.Timeline = append(se.Timeline, sessionCall{TraceID: tid, SpanID: r.spanID.String(), Name: r.name, DurationMS: millis(r.dur), Error: r.failed, start: r.start})
		}
	}
	for _, se := range out {
		slices.SortFunc(se.Timeline, func(a, b sessionCall) int { return cmp.Compare(a.start, b.start) })
		if len(se.Timeline) > maxTimeline {
			se.Timeline = se.Timeline[len(se.Timeline)-maxTimeline:]
		}
		for i := range se.Timeline {
			se.Timeline[i].OffsetMS = millis(se.Timeline[i].start - se.first)
		}
		se.FirstSeen, se.LastSeen = rfc3339(se.first), rfc3339(se.last)
		se.DurationMS = millis(se.last - se.first)
	}
	return sessionsResponse{Sessions: out, Matched: matched, Offset: sq.offset}
}

// sparkBuckets is the number of points in a tool's sparkline.
const sparkBuckets = 30

// toolJSON is one tool of one backend over the store's window.
type toolJSON struct {
	Tool        string  `json:"tool"`
	Backend     string  `json:"backend"`
	Calls       int     `json:"calls"`
	Errors      int     `json:"errors"`
	ErrorPct    float64 `json:"error_pct"`
	RatePerMin  float64 `json:"rate_per_min"`
	P50MS       float64 `json:"p50_ms"`
	P95MS       float64 `json:"p95_ms"`
	P99MS       float64 `json:"p99_ms"`
	MaxMS       float64 `json:"max_ms"`
	Spark       []int   `json:"spark"`        // calls per bucket of the window
	SparkErrors []int   `json:"spark_errors"` // failed calls per bucket

	durs []int64
}

type toolsResponse struct {
	WindowStart string      `json:"window_start"`
	WindowEnd   string      `json:"window_end"`
	Buckets     int         `json:"buckets"`
	Tools       []*toolJSON `json:"tools"`
}

var toolSorts = []string{"calls", "errors", "error_pct", "rate", "p50", "p95", "p99", "tool"}

// toolQuery is a parsed /api/tools query.
type toolQuery struct {
	backend string
	sort    string
	asc     bool
}

func parseToolQuery(q url.Values) (toolQuery, error) {
	tq := toolQuery{backend: q.Get("backend"), sort: "calls"}
	if v := q.Get("sort"); v != "" {
		if !slices.Contains(toolSorts, v) {
			return tq, &paramError{"sort", fmt.Sprintf("%q is not one of %s", v, strings.Join(toolSorts, ", "))}
		}
		tq.sort = v
	}
	var err error
	tq.asc, err = parseOrder(q)
	return tq, err
}

// window is the time the store covers: from its oldest span's start to
// its newest span's end.
type window struct{ start, end int64 }

func (w window) seconds() float64 { return max(float64(w.end-w.start)/1e9, 1) }

func (w window) bucket(t int64) int {
	if w.end <= w.start {
		return sparkBuckets - 1
	}
	return min(max(int(float64(t-w.start)/float64(w.end-w.start)*sparkBuckets), 0), sparkBuckets-1)
}

// storeWindow computes the window from the cached summaries.
func storeWindow(sns []snapshot) window {
	var w window
	for i, sn := range sns {
		sum := summaryOf(sn)
		if i == 0 || sum.start < w.start {
			w.start = sum.start
		}
		w.end = max(w.end, sum.start+sum.duration)
	}
	return w
}

// tools aggregates the gateway's calls to backends per tool and backend.
// Calls of other methods (resources/read, prompts/get) count under their
// method name.
func (s *Store) tools(tq toolQuery) toolsResponse {
	buf := s.snapshotAll()
	defer releaseSnapshots(buf)
	sns := *buf
	w := storeWindow(sns)
	type key struct{ tool, backend string }
	byKey := map[key]*toolJSON{}
	for _, sn := range sns {
		for _, c := range factsOf(sn).calls {
			if tq.backend != "" && c.backend != tq.backend {
				continue
			}
			name := cmp.Or(c.tool, c.method)
			if name == "" {
				continue
			}
			k := key{name, c.backend}
			t := byKey[k]
			if t == nil {
				t = &toolJSON{Tool: name, Backend: c.backend, Spark: make([]int, sparkBuckets), SparkErrors: make([]int, sparkBuckets)}
				byKey[k] = t
			}
			t.Calls++
			b := w.bucket(c.start)
			t.Spark[b]++
			if c.failed {
				t.Errors++
				t.SparkErrors[b]++
			}
			t.durs = append(t.durs, c.dur)
		}
	}
	out := make([]*toolJSON, 0, len(byKey))
	for _, t := range byKey {
		slices.Sort(t.durs)
		t.P50MS, t.P95MS, t.P99MS = millis(quantile(t.durs, 0.50)), millis(quantile(t.durs, 0.95)), millis(quantile(t.durs, 0.99))
		t.MaxMS = millis(t.durs[len(t.durs)-1])
		t.ErrorPct = 100 * float64(t.Errors) / float64(t.Calls)
		t.RatePerMin = float64(t.Calls) / w.seconds() * 60
		out = append(out, t)
	}
	metric := func(t *toolJSON) float64 {
		switch tq.sort {
		case "errors":
			return float64(t.Errors)
		case "error_pct":
			return t.ErrorPct
		case "rate":
			return t.RatePerMin
		case "p50":
			return t.P50MS
		case "p95":
			return t.P95MS
		case "p99":
			return t.P99MS
		}
		return float64(t.Calls)
	}
	slices.SortFunc(out, func(a, b *toolJSON) int {
		c := 0
		if tq.sort == "tool" {
			c = cmp.Or(strings.Compare(b.Tool, a.Tool), strings.Compare(b.Backend, a.Backend))
		} else {
			c = cmp.Compare(metric(b), metric(a))
		}
		if tq.asc {
			c = -c
		}
		return cmp.Or(c, strings.Compare(a.Tool, b.Tool), strings.Compare(a.Backend, b.Backend))
	})
	resp := toolsResponse{Buckets: sparkBuckets, Tools: out}
	if len(sns) > 0 {
		resp.WindowStart, resp.WindowEnd = rfc3339(w.start), rfc3339(w.end)
	}
	return resp
}

// quantile is the nearest-rank quantile of sorted values.
func quantile(sorted []int64, q float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
