package main

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// dashboardFile is the Grafana dashboard that deploy/ ships.
const dashboardFile = "../../deploy/grafana/tracegate-dashboard.json"

// TestDashboardQueriesExportedMetrics reads every PromQL query of the
// Grafana dashboard and checks it against what a running gateway exports
// at /metrics: each metric exists, and each label it filters or groups by
// is one that metric has.
func TestDashboardQueriesExportedMetrics(t *testing.T) {
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("%s is not valid JSON: %v", dashboardFile, err)
	}
	if dash.Title == "" || dash.UID == "" || len(dash.Panels) == 0 {
		t.Fatalf("%s: no title, uid or panels", dashboardFile)
	}

	families := exportedFamilies(t)
	nQueries := 0
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, target := range p.Targets {
			nQueries++
			checkQuery(t, p.Title, target.Expr, families)
		}
	}
	t.Logf("%d queries in %d panels checked against %d exported metrics", nQueries, len(dash.Panels), len(families))
}

var (
	// A metric name in PromQL: an identifier not followed by "(" (a
	// function) and not a keyword or a label.
	promIdent  = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promGroup  = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
	promMatch  = regexp.MustCompile(`\{([^}]*)\}`)
	matchLabel = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	promWords  = []string{"by", "without", "sum", "rate", "irate", "increase", "histogram_quantile", "topk", "bottomk", "avg", "max", "min", "count", "le", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset"}
)

// checkQuery checks the metrics and labels of one PromQL expression.
func checkQuery(t *testing.T, panel, expr string, families map[string]map[string]bool) {
	t.Helper()
	// Strip what is not a name: strings, Grafana variables and ranges.
	clean := regexp.MustCompile(`"[^"]*"|\$\{?\w+\}?|\[[^\]]*\]`).ReplaceAllString(expr, `""`)
	var labels []string
	for _, m := range promGroup.FindAllStringSubmatch(clean, -1) {
		for _, l := range strings.Split(m[1], ",") {
			if l = strings.TrimSpace(l); l != "" {
				labels = append(labels, l)
			}
		}
	}
	for _, m := range promMatch.FindAllStringSubmatch(clean, -1) {
		for _, l := range matchLabel.FindAllStringSubmatch(m[1], -1) {
			labels = append(labels, l[1])
		}
	}
	noLabels := promGroup.ReplaceAllString(promMatch.ReplaceAllString(clean, ""), "")
	var metrics []string
	for _, loc := range promIdent.FindAllStringIndex(noLabels, -1) {
		name := noLabels[loc[0]:loc[1]]
		rest := strings.TrimSpace(noLabels[loc[1]:])
		if slices.Contains(promWords, name) || strings.HasPrefix(rest, "(") || regexp.MustCompile(`^[0-9]`).MatchString(name) {
			continue
		}
		metrics = append(metrics, name)
	}
	if len(metrics) == 0 {
		t.Errorf("panel %q: no metric in %s", panel, expr)
	}
	for _, m := range metrics {
		fam, ok := families[m]
		if !ok {
			t.Errorf("panel %q: %s is not exported (query %s)", panel, m, expr)
			continue
		}
		for _, l := range labels {
			if l != "le" && !fam[l] {
				t.Errorf("panel %q: %s has no label %s (query %s)", panel, m, l, expr)
			}
		}
	}
}

// exportedFamilies runs a gateway in front of a traced backend, makes it
// record every kind of metric (calls, a failing call, an invalid
// traceparent, sessions that end), and returns each series name on its
// /metrics (histograms as their _bucket, _sum and _count) with the label
// names seen on it.
func exportedFamilies(t *testing.T) map[string]map[string]bool {
	ctx := context.Background()
	s := newStack(t, witnessSpec{name: "w"})
	cs := s.connect(t, ctx, nil)
	seen(t, ctx, cs, "w", mcp.Meta{"traceparent": traceparentOf(newAgentSpan(true))})
	seen(t, ctx, cs, "w", mcp.Meta{"traceparent": "00-not-a-traceparent"})
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "w_no_such_tool"}); err == nil {
		t.Fatal("calling an unknown tool did not fail")
	}
	cs.Close()
	s.waitScrape(t, "mcp_server_session_duration_seconds_count")
	s.rt.gateway.Close()
	text := s.waitScrape(t, "mcp_client_session_duration_seconds_count")

	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	out := map[string]map[string]bool{}
	for name, f := range fams {
		labels := map[string]bool{}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = true
			}
		}
		switch f.GetType().String() {
		case "HISTOGRAM":
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				out[name+suffix] = labels
			}
		case "SUMMARY":
			out[name+"_sum"], out[name+"_count"] = labels, labels
			out[name] = labels
		default:
			out[name] = labels
		}
	}
	return out
}
