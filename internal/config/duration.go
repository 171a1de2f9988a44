package config

import (
	"errors"
	"time"

	"go.yaml.in/yaml/v3"
)

// UnmarshalYAML reads a Go duration string such as "30s" or "1m30s".
// A bare number is refused (it has no unit), and so is a negative value.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errors.New(`want a duration such as "30s"`)
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return errors.New(`want a duration such as "30s" or "1m30s"`)
	}
	if v < 0 {
		return errors.New("must not be negative")
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration back in the form UnmarshalYAML reads.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

func (d Duration) String() string { return time.Duration(d).String() }
