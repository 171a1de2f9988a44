package config

import (
	"os"
	"testing"
)

// FuzzParse checks that no input panics, and that whatever Parse accepts
// also passes Validate. Seeds run in the default test run; fuzz with
// go test -fuzz=FuzzParse ./internal/config/
func FuzzParse(f *testing.F) {
	for _, name := range []string{"full.yaml", "minimal.yaml", "anchors.yaml", "invalid.yaml"} {
		data, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, "x")
	}
	f.Add([]byte("a: &x [*x]"), "")
	f.Add([]byte("telemetry: {<<: [{a: 1}, {b: 2}]}"), "")
	f.Add([]byte("listen: ${V:-$$}"), "1")
	f.Fuzz(func(t *testing.T, data []byte, v string) {
		c, err := Parse(data, func(string) string { return v })
		if err == nil {
			if verr := c.Validate(); verr != nil {
				t.Fatalf("Parse accepted a config that Validate refuses: %v", verr)
			}
		}
	})
}

// FuzzExpandValue checks that a variable's value arrives intact, as one
// string, whatever it holds: no YAML structure can be injected through it.
func FuzzExpandValue(f *testing.F) {
	for _, v := range []string{"", "a: b", "x\n- y\nz: {w}", "}", "${V}", "$$", "\"", "'", "&a *a", "\x00"} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		src := "plugins: [{name: p, type: deny, value: \"${V}\"}]\n"
		c, err := Parse([]byte(src), func(string) string { return v })
		if err != nil {
			t.Fatalf("Parse with V=%q: %v", v, err)
		}
		opts := c.Plugins[0].Options
		if len(opts) != 1 || opts["value"] != v {
			t.Fatalf("V=%q: got options %#v, want only value=%q", v, opts, v)
		}
	})
}
