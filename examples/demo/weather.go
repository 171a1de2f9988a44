// Package demo holds tracegate's demo MCP servers: a weather server over
// Streamable HTTP that calls a downstream forecast API, a file server over
// stdio, and the forecast API itself. `tracegate demo` runs them, the
// end-to-end tests use them as real backends, and examples/* wrap each one
// as a standalone binary.
package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// WeatherOptions configures the weather server.
type WeatherOptions struct {
	// ForecastURL is the base URL of the forecast API; empty answers from a
	// built-in table without any HTTP call.
	ForecastURL string
	// HTTPClient calls the forecast API; give it a transport that injects
	// trace context so the API joins the trace.
	HTTPClient *http.Client
	// SlowDelay is how long slow_forecast takes. Default 1.5s.
	SlowDelay time.Duration
}

type cityArgs struct {
	City string `json:"city" jsonschema:"the city to forecast, e.g. Lisbon"`
}

type forecast struct {
	City        string  `json:"city"`
	Conditions  string  `json:"conditions"`
	TempCelsius float64 `json:"temp_c"`
}

// NewWeatherServer returns the weather demo server: get_weather (calls the
// forecast API), slow_forecast (slow, reports progress), flaky_radar
// (always fails), ask_assistant (asks the client to sample), confirm_trip
// (asks the client to elicit), a prompt and a resource.
func NewWeatherServer(opts WeatherOptions) *mcp.Server {
	if opts.HTTPClient == nil {
		opts.HTTPClient = http.DefaultClient
	}
	if opts.SlowDelay <= 0 {
		opts.SlowDelay = 1500 * time.Millisecond
	}
	s := mcp.NewServer(&mcp.Implementation{Name: "weather-demo", Version: "1.0.0"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "get_weather", Description: "Current weather for a city, from the forecast API."},
		func(ctx context.Context, req *mcp.CallToolRequest, in cityArgs) (*mcp.CallToolResult, forecast, error) {
			f, err := lookupForecast(ctx, opts, in.City)
			if err != nil {
				return nil, forecast{}, err
			}
			return nil, f, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "slow_forecast", Description: "A ten-day forecast that takes a while, with progress."},
		func(ctx context.Context, req *mcp.CallToolRequest, in cityArgs) (*mcp.CallToolResult, forecast, error) {
			const steps = 5
			for i := 1; i <= steps; i++ {
				select {
				case <-ctx.Done():
					return nil, forecast{}, ctx.Err()
				case <-time.After(opts.SlowDelay / steps):
				}
				if tok := req.Params.GetProgressToken(); tok != nil {
					req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{
						ProgressToken: tok, Progress: float64(i), Total: steps,
						Message: fmt.Sprintf("day %d of %d", i*2, steps*2),
					})
				}
			}
			f, err := lookupForecast(ctx, opts, in.City)
			return nil, f, err
		})
	mcp.AddTool(s, &mcp.Tool{Name: "flaky_radar", Description: "Radar imagery; the radar is always down in the demo."},
		func(ctx context.Context, req *mcp.CallToolRequest, in cityArgs) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{
				IsError: true,
				Content: []mcp.Content{&mcp.TextContent{Text: "radar station for " + in.City + " is not responding"}},
			}, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "ask_assistant", Description: "Asks the client's model to describe the weather (sampling)."},
		func(ctx context.Context, req *mcp.CallToolRequest, in cityArgs) (*mcp.CallToolResult, any, error) {
			res, err := req.Session.CreateMessage(ctx, &mcp.CreateMessageParams{
				MaxTokens: 64,
				Messages:  []*mcp.SamplingMessage{{Role: "user", Content: &mcp.TextContent{Text: "Describe the weather in " + in.City}}},
			})
			if err != nil {
				return nil, nil, fmt.Errorf("sampling: %w", err)
			}
			text := ""
			if t, ok := res.Content.(*mcp.TextContent); ok {
				text = t.Text
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "assistant says: " + text}}}, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "confirm_trip", Description: "Asks the user to confirm a trip (elicitation)."},
		func(ctx context.Context, req *mcp.CallToolRequest, in cityArgs) (*mcp.CallToolResult, any, error) {
			res, err := req.Session.Elicit(ctx, &mcp.ElicitParams{
				Message: "Confirm the trip to " + in.City + "?",
				RequestedSchema: map[string]any{
					"type":       "object",
					"properties": map[string]any{"confirm": map[string]any{"type": "boolean"}},
				},
			})
			if err != nil {
				return nil, nil, fmt.Errorf("elicitation: %w", err)
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "trip " + res.Action}}}, nil, nil
		})
	s.AddPrompt(&mcp.Prompt{Name: "packing_list", Description: "What to pack for a city.", Arguments: []*mcp.PromptArgument{{Name: "city", Required: true}}},
		func(ctx context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			city := req.Params.Arguments["city"]
			return &mcp.GetPromptResult{
				Description: "Packing list for " + city,
				Messages:    []*mcp.PromptMessage{{Role: "user", Content: &mcp.TextContent{Text: "What should I pack for " + city + "?"}}},
			}, nil
		})
	s.AddResource(&mcp.Resource{URI: "weather://stations", Name: "stations", MIMEType: "application/json"},
		func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, MIMEType: "application/json", Text: `["Lisbon","Oslo","Nairobi"]`}}}, nil
		})
	return s
}

func lookupForecast(ctx context.Context, opts WeatherOptions, city string) (forecast, error) {
	if city == "" {
		return forecast{}, errors.New("city is required")
	}
	if opts.ForecastURL == "" {
		return builtinForecast(city), nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, opts.ForecastURL+"/forecast?city="+url.QueryEscape(city), nil)
	if err != nil {
		return forecast{}, err
	}
	resp, err := opts.HTTPClient.Do(req)
	if err != nil {
		return forecast{}, fmt.Errorf("calling forecast API: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		return forecast{}, fmt.Errorf("forecast API: %s: %s", resp.Status, b)
	}
	var f forecast
	if err := json.NewDecoder(resp.Body).Decode(&f); err != nil {
		return forecast{}, fmt.Errorf("decoding forecast: %w", err)
	}
	return f, nil
}

func builtinForecast(city string) forecast {
	conds := []string{"sunny", "cloudy", "light rain", "windy", "fog"}
	h := 0
	for _, r := range city {
		h = h*31 + int(r)
	}
	if h < 0 {
		h = -h
	}
	return forecast{City: city, Conditions: conds[h%len(conds)], TempCelsius: float64(5 + h%25)}
}
