package mcptrace

import (
	"context"
	"slices"

	"go.opentelemetry.io/otel/baggage"
)

// A BaggagePolicy decides which W3C Baggage members are forwarded on
// injection. The zero value forwards all of them.
type BaggagePolicy struct {
	none bool
	keys []string // nil: all keys
}

// BaggageAll forwards every baggage member.
func BaggageAll() BaggagePolicy { return BaggagePolicy{} }

// BaggageNone forwards no baggage.
func BaggageNone() BaggagePolicy { return BaggagePolicy{none: true} }

// BaggageKeys forwards only the members with the given keys. With no keys it
// forwards none.
func BaggageKeys(keys ...string) BaggagePolicy {
	if len(keys) == 0 {
		return BaggageNone()
	}
	return BaggagePolicy{keys: slices.Clone(keys)}
}

// filter returns ctx with its baggage cut down to what the policy forwards.
// It allocates only when members must actually be removed.
func (p BaggagePolicy) filter(ctx context.Context) context.Context {
	if !p.none && p.keys == nil {
		return ctx
	}
	b := baggage.FromContext(ctx)
	if b.Len() == 0 {
		return ctx
	}
	if p.none {
		return baggage.ContextWithoutBaggage(ctx)
	}
	members := b.Members()
	kept := members[:0]
	for _, m := range members {
		if slices.Contains(p.keys, m.Key()) {
			kept = append(kept, m)
		}
	}
	if len(kept) == len(members) {
		return ctx
	}
	nb, err := baggage.New(kept...)
	if err != nil {
		return baggage.ContextWithoutBaggage(ctx)
	}
	return baggage.ContextWithBaggage(ctx, nb)
}
