package traceview

import (
	"hash/maphash"

	"go.opentelemetry.io/otel/attribute"
)

// attrIndex is a 256-bit Bloom filter of the key=value pairs of one
// trace's span and resource attributes. A search by attribute tests it
// first and scans only the traces it may hold, so that a search over a
// full store costs about what the plain list does. It is built on the
// first search that needs it and cached on the trace, like its summary.
type attrIndex struct {
	spans int // len(spans) when built
	bits  [4]uint64
}

var attrSeed = maphash.MakeSeed()

// attrHash hashes one key=value pair, the value as the filters compare it.
func attrHash(h *maphash.Hash, key attribute.Key, value string) uint64 {
	h.Reset()
	h.WriteString(string(key))
	h.WriteByte(0)
	h.WriteString(value)
	return h.Sum64()
}

// bloomBits are the two bit positions of a hash.
func bloomBits(x uint64) (uint, uint) { return uint(x & 255), uint(x>>8) & 255 }

func (ix *attrIndex) add(x uint64) {
	a, b := bloomBits(x)
	ix.bits[a/64] |= 1 << (a % 64)
	ix.bits[b/64] |= 1 << (b % 64)
}

func (ix *attrIndex) mayHave(x uint64) bool {
	a, b := bloomBits(x)
	return ix.bits[a/64]&(1<<(a%64)) != 0 && ix.bits[b/64]&(1<<(b%64)) != 0
}

// attrIndexOf returns the trace's index, from the cache when no span has
// arrived since it was built.
func attrIndexOf(sn snapshot) *attrIndex {
	if c := sn.entry.index.Load(); c != nil && c.spans == len(sn.spans) {
		return c
	}
	ix := &attrIndex{spans: len(sn.spans)}
	var h maphash.Hash
	h.SetSeed(attrSeed)
	var lastRes *origin
	for _, sp := range sn.spans {
		for _, kv := range sp.attrs {
			ix.add(attrHash(&h, kv.Key, valueText(kv.Value)))
		}
		if sp.res != nil && sp.res != lastRes {
			lastRes = sp.res
			for _, kv := range sp.res.attrs {
				ix.add(attrHash(&h, kv.Key, valueText(kv.Value)))
			}
		}
	}
	sn.entry.index.Store(ix)
	return ix
}
