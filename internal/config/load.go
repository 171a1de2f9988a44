package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load reads the YAML file at path with the process environment for
// ${VAR} expansion; see Parse.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(data, os.Getenv)
}

// Parse decodes one YAML document into a Config, applies defaults and
// validates it.
//
// Unknown keys are errors at every depth, except inside a plugin entry,
// whose extra keys go to Plugin.Options for the plugin type to check.
// In scalar values, ${VAR} is replaced by getenv(VAR), ${VAR:-default} by
// the default when VAR is unset or empty, and $$ by a literal $. A nil
// getenv sees no variables.
//
// On failure the error is Errors: every problem that Check finds.
func Parse(data []byte, getenv func(string) string) (*Config, error) {
	r := Check(data, getenv)
	if len(r.Errors) > 0 {
		return nil, r.Errors
	}
	return r.Config, nil
}

// parseDocument returns the root node of the only YAML document in data, or
// nil when data holds nothing but comments.
func parseDocument(data []byte) (*yaml.Node, Errors) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, Errors{syntaxError(err)}
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		return nil, Errors{{Line: next.Line, Column: next.Column, Msg: "want one YAML document, found another"}}
	case !errors.Is(err, io.EOF):
		return nil, Errors{syntaxError(err)}
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return nil, nil
	}
	return root, nil
}

// syntaxError turns "yaml: line 3: did not find expected key" into a
// FieldError on line 3.
func syntaxError(err error) *FieldError {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var line int
	if _, scanErr := fmt.Sscanf(msg, "line %d: ", &line); scanErr == nil {
		_, msg, _ = strings.Cut(msg, ": ")
	}
	return &FieldError{Line: line, Msg: msg}
}
