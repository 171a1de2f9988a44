package config

import (
	"slices"
	"testing"
)

func TestWarnings(t *testing.T) {
	const backend = "backends: [{name: a, url: 'http://127.0.0.1:9001/mcp'}]\n"
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"quiet", backend, nil},
		{"no backends", "listen: 127.0.0.1:8080\n", []string{"backends: no backends: the gateway will serve no tools, prompts or resources"}},
		{"admin on every interface", backend + "admin_listen: 0.0.0.0:8418\n", []string{"admin_listen: binds beyond loopback and no admin.bearer_tokens or auth.bearer_tokens are set: anyone who reaches it can read traces, metrics and the configuration"}},
		{"admin on an empty host", backend + "admin_listen: ':8418'\n", []string{"admin_listen: binds beyond loopback and no admin.bearer_tokens or auth.bearer_tokens are set: anyone who reaches it can read traces, metrics and the configuration"}},
		{"admin beyond loopback with its own token", backend + "admin_listen: 0.0.0.0:8418\nadmin: {bearer_tokens: [t]}\n", nil},
		{"admin beyond loopback with the MCP token", backend + "admin_listen: 0.0.0.0:8418\nauth: {bearer_tokens: [t]}\n", nil},
		{"admin on localhost", backend + "admin_listen: localhost:8418\n", nil},
		{"admin on ::1", backend + "admin_listen: '[::1]:8418'\n", nil},
		{"admin off", backend + "admin_listen: 'off'\n", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.doc), nil)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range c.Warnings() {
				got = append(got, w.Error())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}
