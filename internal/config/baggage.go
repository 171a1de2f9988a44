package config

import (
	"errors"
	"slices"

	"go.yaml.in/yaml/v3"
)

// UnmarshalYAML reads `all`, `none`, or a list of baggage keys. An empty
// list forwards nothing, like `none`.
func (p *BaggagePolicy) UnmarshalYAML(n *yaml.Node) error {
	errShape := errors.New("want all, none or a list of keys")
	switch n.Kind {
	case yaml.ScalarNode:
		switch BaggageMode(n.Value) {
		case BaggageAll, BaggageNone:
			*p = BaggagePolicy{Mode: BaggageMode(n.Value)}
			return nil
		}
		return errShape
	case yaml.SequenceNode:
		keys := make([]string, 0, len(n.Content))
		for _, c := range n.Content {
			if c.Kind == yaml.AliasNode {
				c = c.Alias
			}
			if c.Kind != yaml.ScalarNode {
				return errShape
			}
			keys = append(keys, c.Value)
		}
		*p = BaggagePolicy{Mode: BaggageKeys, Keys: keys}
		return nil
	}
	return errShape
}

// MarshalYAML writes the policy back in the form UnmarshalYAML reads.
func (p BaggagePolicy) MarshalYAML() (any, error) {
	if p.Mode == BaggageKeys {
		return p.Keys, nil
	}
	return string(p.Mode), nil
}

// Allows reports whether the baggage member named key may be forwarded.
// The zero policy allows nothing.
func (p BaggagePolicy) Allows(key string) bool {
	switch p.Mode {
	case BaggageAll:
		return true
	case BaggageKeys:
		return slices.Contains(p.Keys, key)
	}
	return false
}
