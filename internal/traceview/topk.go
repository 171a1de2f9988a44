package traceview

import "slices"

// firstSorted returns the first k items of s in the order cmp gives,
// sorted; s is reordered. A page of a list needs its first offset+limit
// items only: past a few hundred of tens of thousands, a heap of k items
// (n log k) beats sorting them all (n log n).
func firstSorted[T any](s []T, k int, cmp func(a, b T) int) []T {
	if k >= len(s)/4 {
		slices.SortFunc(s, cmp)
		return s[:min(k, len(s))]
	}
	if k <= 0 {
		return s[:0]
	}
	// s[:k] is a max-heap (by cmp) of the k smallest seen so far.
	h := s[:k]
	down := func(i int) {
		for {
			l := 2*i + 1
			if l >= k {
				return
			}
			if r := l + 1; r < k && cmp(h[r], h[l]) > 0 {
				l = r
			}
			if cmp(h[l], h[i]) <= 0 {
				return
			}
			h[i], h[l] = h[l], h[i]
			i = l
		}
	}
	for i := k/2 - 1; i >= 0; i-- {
		down(i)
	}
	for _, x := range s[k:] {
		if cmp(x, h[0]) < 0 {
			h[0] = x
			down(0)
		}
	}
	slices.SortFunc(h, cmp)
	return h
}
