package config

import (
	"github.com/tracegate/tracegate/internal/redact"

	"maps"
	"slices"

	"go.yaml.in/yaml/v3"
)

// Redacted stands in for a secret in Redacted's output.
const Redacted = "[redacted]"

// Redacted returns a copy of c that is safe to log or show: bearer tokens,
// header values, child environment values, passwords in URLs and plugin
// options whose names suggest a secret are replaced by "[redacted]". The
// keys and the number of values stay, so the shape can still be checked.
func (c *Config) Redacted() *Config {
	r := *c
	r.Auth.BearerTokens = make([]BearerToken, len(c.Auth.BearerTokens))
	for i, t := range c.Auth.BearerTokens {
		r.Auth.BearerTokens[i] = BearerToken{Name: t.Name, Token: Redacted}
	}
	r.Admin.BearerTokens = redactAll(c.Admin.BearerTokens)
	r.Backends = make([]Backend, len(c.Backends))
	for i, b := range c.Backends {
		b.URL = redactURL(b.URL)
		b.Headers = redactValues(b.Headers)
		b.Env = redactValues(b.Env)
		b.Command = slices.Clone(b.Command)
		r.Backends[i] = b
	}
	r.Plugins = make([]Plugin, len(c.Plugins))
	for i, p := range c.Plugins {
		if p.Options != nil {
			opts := make(map[string]any, len(p.Options))
			for k, v := range p.Options {
				if secretName(k) {
					v = Redacted
				}
				opts[k] = v
			}
			p.Options = opts
		}
		r.Plugins[i] = p
	}
	r.Telemetry.OTLP.Endpoint = redactURL(c.Telemetry.OTLP.Endpoint)
	r.Telemetry.OTLP.Headers = redactValues(c.Telemetry.OTLP.Headers)
	if c.Cluster != nil {
		cl := *c.Cluster
		cl.RedisURL = redactURL(cl.RedisURL)
		cl.AdvertiseURL = redactURL(cl.AdvertiseURL)
		if cl.Secret != "" {
			cl.Secret = Redacted
		}
		r.Cluster = &cl
	}
	return &r
}

// Map is the configuration as the generic value that its YAML form decodes
// to, with the file's key names: for JSON encoding and for logs.
func (c *Config) Map() (map[string]any, error) {
	data, err := yaml.Marshal(c)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	return m, nil
}

func redactAll(s []string) []string {
	if s == nil {
		return nil
	}
	out := make([]string, len(s))
	for i := range out {
		out[i] = Redacted
	}
	return out
}

func redactValues(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := maps.Clone(m)
	for k := range out {
		out[k] = Redacted
	}
	return out
}

// redactURL hides the password of a URL with user information, and the
// query, which may carry a key.
// redactURL removes a URL's user info and credential-looking parameters,
// as every string that leaves the process is redacted (package redact).
func redactURL(s string) string { return redact.URL(s) }

func secretName(k string) bool { return redact.IsCredentialName(k) }
