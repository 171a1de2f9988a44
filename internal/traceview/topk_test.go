package traceview

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestFirstSorted(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 5, 100, 1000} {
		for _, k := range []int{0, 1, 3, 10, 99, 500, 2000} {
			s := make([]int, n)
			for i := range s {
				s[i] = rng.IntN(50) // with ties
			}
			want := slices.Clone(s)
			slices.Sort(want)
			want = want[:min(k, n)]
			got := firstSorted(s, k, cmp.Compare[int])
			if !slices.Equal(got, want) {
				t.Errorf("n=%d k=%d: got %v, want %v", n, k, got, want)
			}
		}
	}
}
