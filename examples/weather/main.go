// Command weather is the weather demo MCP server over Streamable HTTP.
//
//	go run ./examples/weather -listen 127.0.0.1:9001 -forecast-url http://127.0.0.1:9002
package main

import (
	"flag"
	"log"
	"net/http"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tracegate/tracegate/examples/demo"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9001", "address to serve /mcp on")
	forecastURL := flag.String("forecast-url", "", "base URL of the forecast API (empty: built-in answers)")
	flag.Parse()
	s := demo.NewWeatherServer(demo.WeatherOptions{ForecastURL: *forecastURL})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	mux := http.NewServeMux()
	mux.Handle("/mcp", h)
	log.Printf("weather demo serving http://%s/mcp", *listen)
	log.Fatal(http.ListenAndServe(*listen, mux))
}
