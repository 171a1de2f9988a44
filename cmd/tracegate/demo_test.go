package main

import "testing"

func TestSelfCommand(t *testing.T) {
	t.Parallel()
	tests := []struct{ exe, want string }{
		{"/tmp/go-build2381/b001/exe/tracegate", "go run ./cmd/tracegate"},
		{"/usr/local/bin/tracegate", "/usr/local/bin/tracegate"},
		{"/home/me/my tools/tracegate", `'/home/me/my tools/tracegate'`},
		{"/home/o'brien/tracegate", `'/home/o'\''brien/tracegate'`},
	}
	for _, tt := range tests {
		if got := selfCommand(tt.exe); got != tt.want {
			t.Errorf("selfCommand(%q): got %s, want %s", tt.exe, got, tt.want)
		}
	}
}
