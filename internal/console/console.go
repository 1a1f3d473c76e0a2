// Package console serves augur's web console: one self-contained page (no
// external scripts, fonts or styles) that reads the decisions API of the
// same listener (/api/v1/decisions, /api/v1/rules, /api/v1/forecasts) every
// two seconds and shows the decision stream with outcomes, each scaling
// rule's load against its forecast and 80% band with replicas recommended
// and decided, the zones of each gray-failure rule and the GPU nodes.
package console

import (
	_ "embed"
	"net/http"
)

//go:embed index.html
var page []byte

// Handler serves the console at "/" (GET and HEAD); any other path is a 404.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "method not allowed: use GET", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:")
		_, _ = w.Write(page)
	})
}
