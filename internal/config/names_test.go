package config

import "testing"

func TestNameFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		format, backend, tool, want string
	}{
		{"{backend}_{tool}", "weather", "forecast", "weather_forecast"},
		{"{backend}.{tool}", "weather", "forecast", "weather.forecast"},
		{"{tool}", "weather", "forecast", "forecast"},
		{"{tool}-via-{backend}", "weather", "forecast", "forecast-via-weather"},
		{"{backend}{backend}_{tool}", "a", "t", "aa_t"},
		{"x{{tool}}", "a", "t", "x{t}"}, // unknown text is copied
		{"{backend", "a", "t", "{backend"},
		{"", "a", "t", ""},
	}
	for _, tt := range tests {
		if got := NameFor(tt.format, tt.backend, tt.tool); got != tt.want {
			t.Errorf("NameFor(%q, %q, %q): got %q, want %q", tt.format, tt.backend, tt.tool, got, tt.want)
		}
	}
}

func TestNameForAllocs(t *testing.T) {
	// Not parallel: AllocsPerRun needs a quiet heap.
	for _, format := range []string{"{backend}_{tool}", "{tool}.{backend}"} {
		allocs := testing.AllocsPerRun(100, func() { _ = NameFor(format, "weather", "forecast") })
		if allocs != 1 {
			t.Errorf("NameFor(%q): got %v allocations, want 1", format, allocs)
		}
	}
}

func BenchmarkNameFor(b *testing.B) {
	for _, format := range []string{"{backend}_{tool}", "{tool}.{backend}"} {
		b.Run(format, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = NameFor(format, "weather", "get_forecast")
			}
		})
	}
}
