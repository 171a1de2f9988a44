package otlptest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// WaitForSpans polls until done accepts the received spans and returns
// them. On timeout it fails the test with every trace it holds, drawn as
// trees.
func (r *Receiver) WaitForSpans(tb testing.TB, timeout time.Duration, done func([]Span) bool) []Span {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		spans := r.Spans()
		if done(spans) {
			return spans
		}
		if time.Now().After(deadline) {
			tb.Fatalf("otlptest: spans not received as wanted within %v; have %d:\n%s", timeout, len(spans), r.Dump())
			return nil
		}
		time.Sleep(pollInterval)
	}
}

// HasSpanNamed is a WaitForSpans condition: every name has arrived at least
// once.
func HasSpanNamed(names ...string) func([]Span) bool {
	return func(spans []Span) bool {
		for _, n := range names {
			if !slices.ContainsFunc(spans, func(s Span) bool { return s.Name == n }) {
				return false
			}
		}
		return true
	}
}

// AtLeast is a WaitForSpans condition: n spans have arrived.
func AtLeast(n int) func([]Span) bool {
	return func(spans []Span) bool { return len(spans) >= n }
}

// Tree draws one trace as an indented tree, children under their parent in
// start order, for failure messages:
//
//	tools/call echo [server] tracegate
//	  tools/call echo [client] tracegate
//	    tools/call echo [server] echo-backend
//
// A span whose parent was not received (a remote parent, or one not yet
// exported) is drawn as a root, with its parent id.
func (r *Receiver) Tree(traceID string) string {
	return renderTree(r.Trace(traceID))
}

// Dump draws every trace received, for failure messages.
func (r *Receiver) Dump() string {
	var ids []string
	for _, s := range r.Spans() {
		if !slices.Contains(ids, s.TraceID) {
			ids = append(ids, s.TraceID)
		}
	}
	var b strings.Builder
	for _, id := range ids {
		fmt.Fprintf(&b, "trace %s\n%s", id, r.Tree(id))
	}
	return b.String()
}

// renderTree expects spans of one trace ordered by start time.
func renderTree(spans []Span) string {
	present := make(map[string]bool, len(spans))
	children := map[string][]Span{}
	for _, s := range spans {
		present[s.SpanID] = true
	}
	var roots []Span
	for _, s := range spans {
		if s.ParentSpanID == "" || !present[s.ParentSpanID] {
			roots = append(roots, s)
			continue
		}
		children[s.ParentSpanID] = append(children[s.ParentSpanID], s)
	}
	var b strings.Builder
	var walk func(s Span, depth int)
	walk = func(s Span, depth int) {
		fmt.Fprintf(&b, "%s%s [%s] %s", strings.Repeat("  ", depth), s.Name, s.Kind, s.Service)
		if depth == 0 && s.ParentSpanID != "" {
			fmt.Fprintf(&b, " (parent %s not received)", s.ParentSpanID)
		}
		if s.StatusCode == "error" {
			fmt.Fprintf(&b, " error: %s", s.StatusMessage)
		}
		b.WriteByte('\n')
		for _, c := range children[s.SpanID] {
			walk(c, depth+1)
		}
	}
	for _, s := range roots {
		walk(s, 0)
	}
	return b.String()
}
