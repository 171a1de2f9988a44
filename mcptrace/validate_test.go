package mcptrace

import (
	"strings"
	"testing"
)

func TestValidTraceparent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"sampled", traceparentA, true},
		{"not sampled", "00-" + traceIDA + "-" + spanIDA + "-00", true},
		{"random flag", "00-" + traceIDA + "-" + spanIDA + "-03", true},
		{"future version", "01-" + traceIDA + "-" + spanIDA + "-01", true},
		{"future version with more fields", "cc-" + traceIDA + "-" + spanIDA + "-01-what-the-future-holds", true},
		{"empty", "", false},
		{"version ff", "ff-" + traceIDA + "-" + spanIDA + "-01", false},
		{"upper-case trace id", "00-" + strings.ToUpper(traceIDA) + "-" + spanIDA + "-01", false},
		{"upper-case version", "0A-" + traceIDA + "-" + spanIDA + "-01", false},
		{"all-zero trace id", "00-" + strings.Repeat("0", 32) + "-" + spanIDA + "-01", false},
		{"all-zero span id", "00-" + traceIDA + "-" + strings.Repeat("0", 16) + "-01", false},
		{"short trace id", "00-" + traceIDA[1:] + "-" + spanIDA + "-01", false},
		{"long span id", "00-" + traceIDA + "-" + spanIDA + "0-01", false},
		{"version 00 with more fields", traceparentA + "-00", false},
		{"future version without dash", "01-" + traceIDA + "-" + spanIDA + "-01x", false},
		{"reserved flag in version 00", "00-" + traceIDA + "-" + spanIDA + "-04", false},
		{"non-hex flags", "00-" + traceIDA + "-" + spanIDA + "-0g", false},
		{"wrong separators", "00_" + traceIDA + "_" + spanIDA + "_01", false},
		{"surrounding space", " " + traceparentA, false},
	}
	for _, tt := range tests {
		if got := validTraceparent(tt.in); got != tt.want {
			t.Errorf("%s: validTraceparent(%q) = %v, want %v", tt.name, tt.in, got, tt.want)
		}
	}
}

func TestValidTracestate(t *testing.T) {
	t.Parallel()
	members := func(n int) string {
		var b []string
		for i := range n {
			b = append(b, "k"+strings.Repeat("x", i)+"=v")
		}
		return strings.Join(b, ",")
	}
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"two members", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", true},
		{"spaces around members", "rojo=1 , congo=2", true},
		{"empty member", "a=1,,b=2", true},
		{"multi-tenant key", "tenant1@system=v", true},
		{"value with inner space", "a=x y", true},
		{"32 members", members(32), true},
		{"33 members", members(33), false},
		{"duplicate key", "a=1,a=2", false},
		{"upper-case key", "A=1", false},
		{"no equals", "a", false},
		{"empty value", "a=", false},
		{"value with equals", "a=b=c", false},
		{"blank member", "a=1, ,b=2", false},
		{"key starting with digit", "1a=1", false},
		{"system id too long", "t@" + strings.Repeat("s", 15) + "=v", false},
		{"value too long", "a=" + strings.Repeat("v", 257), false},
		{"control character", "a=\x01", false},
	}
	for _, tt := range tests {
		if got := validTracestate(tt.in); got != tt.want {
			t.Errorf("%s: validTracestate(%q) = %v, want %v", tt.name, tt.in, got, tt.want)
		}
	}
}

func TestValidBaggage(t *testing.T) {
	t.Parallel()
	members := func(n int) string {
		var b []string
		for range n {
			b = append(b, "k=v")
		}
		return strings.Join(b, ",")
	}
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"spec example", "userId=alice,serverNode=DF%2028,isProduction=false", true},
		{"spaces", "k1 = v1 , k2=v2", true},
		{"properties", "k=v;p1;p2=x", true},
		{"empty property", "k=v;;p", true},
		{"blank property", "0=; ", false},
		{"empty value", "k=", true},
		{"64 members", members(64), true},
		{"65 members", members(65), false},
		{"no equals", "k", false},
		{"empty key", "=v", false},
		{"trailing comma", "k=v,", false},
		{"leading comma", ",k=v", false},
		{"space inside value", "k=v v", false},
		{"bad percent-encoding", "k=%zz", false},
		{"short percent-encoding", "k=%4", false},
		{"quote in value", `k="v"`, false},
		{"bad property key", "k=v;p@=1", false},
		{"non-ASCII", "k=é", false},
	}
	for _, tt := range tests {
		if got := validBaggage(tt.in); got != tt.want {
			t.Errorf("%s: validBaggage(%q) = %v, want %v", tt.name, tt.in, got, tt.want)
		}
	}
}
