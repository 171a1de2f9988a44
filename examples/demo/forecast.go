package demo

import (
	"encoding/json"
	"net/http"
	"time"
)

// NewForecastAPI returns the downstream HTTP API the weather server calls:
// GET /forecast?city=NAME. It takes a few milliseconds, like a real API,
// so it shows as its own bar in a trace. Wrap it in otelhttp (or any
// handler that extracts W3C context) to make its server spans join.
func NewForecastAPI() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /forecast", func(w http.ResponseWriter, r *http.Request) {
		city := r.URL.Query().Get("city")
		if city == "" {
			http.Error(w, `{"error":"city is required"}`, http.StatusBadRequest)
			return
		}
		if city == "Atlantis" {
			http.Error(w, `{"error":"no station"}`, http.StatusNotFound)
			return
		}
		select {
		case <-time.After(3 * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(builtinForecast(city))
	})
	return mux
}
