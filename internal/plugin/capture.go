package plugin

import (
	"context"
	"slices"
)

// ContentRedactor returns a function that applies the patterns of every
// configured redact plugin to tool arguments and results recorded on spans
// (for mcptrace.WithContentRedactor), or nil when no redact plugin is
// configured.
//
// Without it, opting in to content capture would record on the SERVER span
// the arguments the client sent, before the chain redacted them. Recorded
// content has no backend or tool at hand, so a redact plugin's filters and
// apply_to do not narrow it here: telemetry never keeps what any redact
// plugin would scrub.
func (c *Chain) ContentRedactor() func(attr string, data []byte) []byte {
	if c == nil {
		return nil
	}
	var ps []*redactPlugin
	for _, entries := range c.byHook {
		for _, e := range entries {
			if p, ok := e.plugin.(*redactPlugin); ok && !slices.Contains(ps, p) {
				ps = append(ps, p)
			}
		}
	}
	if len(ps) == 0 {
		return nil
	}
	return func(_ string, data []byte) []byte {
		for _, p := range ps {
			counts := make([]int, len(p.patterns))
			out, err := p.rewrite(context.Background(), data, counts)
			if err != nil {
				// Not JSON (or cut short): scrub the text as a whole.
				out, _ = p.redactString(data, counts)
			}
			if out != nil {
				data = out
			}
		}
		return data
	}
}
