package traceview

import (
	"embed"
	"io/fs"
	"net/http"
)

// The UI is plain HTML, CSS and JavaScript with no build step and no
// network dependency, so the viewer works offline.
//
//go:embed ui
var uiFiles embed.FS

// uiCSP allows nothing from outside the admin origin. Span names and
// attribute values come from other processes, so the UI escapes them and
// no inline script may run; inline style attributes place the bars.
const uiCSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func uiHandler() http.Handler {
	sub, err := fs.Sub(uiFiles, "ui")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.StripPrefix("/ui/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", uiCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		// The files change only with the binary; revalidate cheaply.
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}
