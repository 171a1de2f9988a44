package plugin

import (
	"path"
	"testing"
)

// The fast paths agree with path.Match.
func TestGlobMatchesLikePathMatch(t *testing.T) {
	t.Parallel()
	patterns := []string{"files_delete", "files_delete*", "*", "files_*_all", "file:///etc/*", "a?c", "[ab]*", `x\*`, ""}
	names := []string{"files_delete", "files_delete_all", "files_read", "file:///etc/passwd", "file:///etc/a/b", "abc", "bz", "x*", "", "files_delete/x"}
	for _, p := range patterns {
		g, err := compileGlob(p)
		if err != nil {
			t.Fatalf("compileGlob(%q): %v", p, err)
		}
		for _, n := range names {
			want, _ := path.Match(p, n)
			if got := g.match(n); got != want {
				t.Errorf("%q matching %q: got %v, want %v", p, n, got, want)
			}
		}
	}
}
