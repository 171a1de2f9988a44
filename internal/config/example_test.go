package config_test

import (
	"errors"
	"fmt"

	"github.com/tracegate/tracegate/internal/config"
)

func ExampleParse() {
	src := []byte(`
listen: 127.0.0.1:8080
auth:
  bearer_tokens: ["${TRACEGATE_TOKEN}"]
backends:
  - name: Weather
    url: 127.0.0.1:9001/mcp
  - name: files
    command: [./bin/files-server]
    transport: sse
telemetry:
  sampler: {ratio: 1.5}
`)
	getenv := func(string) string { return "" } // TRACEGATE_TOKEN is unset

	_, err := config.Parse(src, getenv)
	var errs config.Errors
	if errors.As(err, &errs) {
		for _, e := range errs {
			fmt.Println(e)
		}
	}
	// Output:
	// line 4: auth.bearer_tokens[0]: empty token (${TRACEGATE_TOKEN} unset or empty)
	// line 6: backends[0].name: "Weather" must match [a-z0-9_-]+
	// line 7: backends[0].url: missing scheme
	// line 10: backends[1].transport: sse needs url
	// line 12: telemetry.sampler.ratio: must be within [0, 1]
}

func ExampleParse_decodeError() {
	_, err := config.Parse([]byte("backends:\n  - name: weather\n    urll: http://127.0.0.1:9001/mcp\n"), nil)
	fmt.Println(err)
	// Output:
	// line 3: backends[0].urll: unknown key
	// line 2: backends[0]: set exactly one of url and command
}

func ExampleNameFor() {
	fmt.Println(config.NameFor("{backend}_{tool}", "weather", "forecast"))
	fmt.Println(config.NameFor("{tool}.{backend}", "weather", "forecast"))
	// Output:
	// weather_forecast
	// forecast.weather
}
