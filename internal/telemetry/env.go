package telemetry

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// env reads OTEL_* variables through the caller's Getenv, so that tests can
// run in parallel with their own environments. An empty value is unset, as
// the configuration spec says.
type env func(string) string

func (e env) get(key string) string { return strings.TrimSpace(e(key)) }

// first returns the first of keys that is set, and its name.
func (e env) first(keys ...string) (val, key string) {
	for _, k := range keys {
		if v := e.get(k); v != "" {
			return v, k
		}
	}
	return "", ""
}

// list splits a comma-separated value into trimmed, lower-case items.
func (e env) list(key string) []string {
	v := e.get(key)
	if v == "" {
		return nil
	}
	return splitList(v)
}

func splitList(v string) []string {
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.ToLower(strings.TrimSpace(item)); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// millis reads a duration in milliseconds, the unit of every OTEL_*
// timeout and interval.
func (e env) millis(keys ...string) (time.Duration, bool, error) {
	v, key := e.first(keys...)
	if v == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, false, fmt.Errorf("%s=%q: want a non-negative number of milliseconds", key, v)
	}
	return time.Duration(n) * time.Millisecond, true, nil
}

// positiveInt reads a count such as a queue size.
func (e env) positiveInt(key string, def int) (int, error) {
	v := e.get(key)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive integer", key, v)
	}
	return n, nil
}

// parseKeyValues decodes the `k1=v1,k2=v2` format of
// OTEL_RESOURCE_ATTRIBUTES and OTEL_EXPORTER_OTLP_HEADERS: W3C Baggage
// syntax without properties, values percent-encoded.
func parseKeyValues(key, v string) (map[string]string, error) {
	out := map[string]string{}
	for _, member := range strings.Split(v, ",") {
		if strings.TrimSpace(member) == "" {
			continue
		}
		k, val, ok := strings.Cut(member, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("%s: member %q: want key=value", key, member)
		}
		// PathUnescape, not QueryUnescape: '+' is a literal plus here.
		dec, err := url.PathUnescape(strings.TrimSpace(val))
		if err != nil {
			return nil, fmt.Errorf("%s: member %q: %w", key, k, err)
		}
		out[k] = dec
	}
	return out, nil
}
