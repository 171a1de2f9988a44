package auth_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tracegate/tracegate/internal/auth"
	"github.com/tracegate/tracegate/internal/auth/authtest"
)

// BenchmarkMiddleware measures what authentication adds to each request:
// a static token (a digest and constant-time compares), and a JWT (a
// signature check against cached keys and the claim checks).
func BenchmarkMiddleware(b *testing.B) {
	as := authtest.Start(b)
	a, err := auth.New(oauthConfig(as.URL), auth.Options{})
	if err != nil {
		b.Fatal(err)
	}
	h := a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for _, bc := range []struct{ name, token string }{
		{"static", "static-ci"},
		{"jwt-rs256", as.Issue(authtest.Token{Audience: resource, Scope: "mcp"})},
		{"jwt-es256", as.Issue(authtest.Token{Key: "ec", Audience: resource, Scope: "mcp"})},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader("{}"))
			r.Header.Set("Authorization", "Bearer "+bc.token)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r) // fetch the keys once
			if w.Code != http.StatusOK {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, r)
			}
		})
	}
}
