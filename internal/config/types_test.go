package config

import (
	"reflect"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestDurationYAML(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{in: "30s", want: 30 * time.Second},
		{in: "1m30s", want: 90 * time.Second},
		{in: "250ms", want: 250 * time.Millisecond},
		{in: "0", want: 0},
		{in: "30", err: `want a duration such as "30s" or "1m30s"`},
		{in: "soon", err: `want a duration such as "30s" or "1m30s"`},
		{in: "-5s", err: "must not be negative"},
		{in: "[1s]", err: `want a duration such as "30s"`},
	}
	for _, tt := range tests {
		var d Duration
		err := yaml.Unmarshal([]byte(tt.in), &d)
		switch {
		case tt.err != "" && (err == nil || err.Error() != tt.err):
			t.Errorf("decode %q: got error %v, want %q", tt.in, err, tt.err)
		case tt.err == "" && err != nil:
			t.Errorf("decode %q: got error %v", tt.in, err)
		case d.D() != tt.want:
			t.Errorf("decode %q: got %v, want %v", tt.in, d.D(), tt.want)
		}
	}
	out, err := yaml.Marshal(struct{ T Duration }{Duration(90 * time.Second)})
	if got, want := string(out), "t: 1m30s\n"; err != nil || got != want {
		t.Errorf("marshal: got %q, %v; want %q", got, err, want)
	}
}

func TestBaggagePolicyYAML(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want BaggagePolicy
		err  bool
	}{
		{in: "all", want: BaggagePolicy{Mode: BaggageAll}},
		{in: "none", want: BaggagePolicy{Mode: BaggageNone}},
		{in: "[tenant, user.id]", want: BaggagePolicy{Mode: BaggageKeys, Keys: []string{"tenant", "user.id"}}},
		{in: "[]", want: BaggagePolicy{Mode: BaggageKeys, Keys: []string{}}},
		{in: "keys", err: true}, // the mode name is not a value
		{in: "All", err: true},
		{in: "{all: true}", err: true},
		{in: "[[a]]", err: true},
	}
	for _, tt := range tests {
		var p BaggagePolicy
		err := yaml.Unmarshal([]byte(tt.in), &p)
		if (err != nil) != tt.err {
			t.Errorf("decode %q: got error %v, want error %v", tt.in, err, tt.err)
			continue
		}
		if !tt.err && !reflect.DeepEqual(p, tt.want) {
			t.Errorf("decode %q: got %+v, want %+v", tt.in, p, tt.want)
		}
	}
	for _, p := range []BaggagePolicy{{Mode: BaggageAll}, {Mode: BaggageKeys, Keys: []string{"a", "b"}}} {
		out, err := yaml.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var back BaggagePolicy
		if err := yaml.Unmarshal(out, &back); err != nil || !reflect.DeepEqual(back, p) {
			t.Errorf("round trip %+v: got %+v, %v", p, back, err)
		}
	}
}

func TestBaggagePolicyAllows(t *testing.T) {
	t.Parallel()
	tests := []struct {
		p    BaggagePolicy
		key  string
		want bool
	}{
		{BaggagePolicy{}, "tenant", false},
		{BaggagePolicy{Mode: BaggageNone}, "tenant", false},
		{BaggagePolicy{Mode: BaggageAll}, "tenant", true},
		{BaggagePolicy{Mode: BaggageKeys, Keys: []string{"tenant"}}, "tenant", true},
		{BaggagePolicy{Mode: BaggageKeys, Keys: []string{"tenant"}}, "Tenant", false},
	}
	for _, tt := range tests {
		if got := tt.p.Allows(tt.key); got != tt.want {
			t.Errorf("%+v.Allows(%q): got %v, want %v", tt.p, tt.key, got, tt.want)
		}
	}
}
