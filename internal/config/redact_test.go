package config

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestRedactedHidesEverySecret(t *testing.T) {
	const doc = `
auth:
  bearer_tokens: ["${MCP_TOKEN}"]
admin:
  bearer_tokens: [s3cret-admin]
backends:
  - name: weather
    url: https://user:s3cret-pass@weather.example:8443/mcp?api_key=s3cret-query
    headers: {Authorization: "Bearer s3cret-header"}
  - name: files
    command: [./files-server]
    env: {API_TOKEN: s3cret-env}
plugins:
  - {name: r, type: redact, patterns: ["ssn"], api_key: s3cret-plugin}
telemetry:
  otlp:
    endpoint: https://otlp.example:4318
    headers: {x-api-key: s3cret-otlp}
`
	c, err := Parse([]byte(doc), func(k string) string { return map[string]string{"MCP_TOKEN": "s3cret-env-token"}[k] })
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Redacted().Map()
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "s3cret") {
		t.Errorf("a secret is left in the redacted configuration:\n%s", out)
	}
	for _, want := range []string{
		`"bearer_tokens":["[redacted]"]`,
		`"Authorization":"[redacted]"`,
		`"API_TOKEN":"[redacted]"`,
		`"url":"https://REDACTED@weather.example:8443/mcp?api_key=REDACTED"`,
		`"patterns":["ssn"]`,
		`"endpoint":"https://otlp.example:4318"`,
		`"admin_listen":"127.0.0.1:8418"`,
		`"timeout":"30s"`,
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("redacted configuration lacks %s:\n%s", want, out)
		}
	}
	// The original is untouched.
	if c.Backends[0].Headers["Authorization"] != "Bearer s3cret-header" || c.Auth.BearerTokens[0].Token != "s3cret-env-token" {
		t.Error("Redacted changed the configuration it copied")
	}
}
