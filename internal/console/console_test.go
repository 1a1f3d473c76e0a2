package console

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHandler: the page at /, nothing elsewhere, GET and HEAD only, and no
// resource from another origin (the console must work without internet).
func TestHandler(t *testing.T) {
	h := Handler()
	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{http.MethodGet, "/", 200}, {http.MethodHead, "/", 200},
		{http.MethodGet, "/index.html", 404}, {http.MethodGet, "/api/v1/x", 404},
		{http.MethodPost, "/", 405},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != tc.code {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, rec.Code, tc.code)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	body := rec.Body.String()
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("content type %q", ct)
	}
	for _, bad := range []string{"http://", "https://", "src=\"//"} {
		if i := strings.Index(body, bad); i >= 0 && !strings.Contains(body[i:min(len(body), i+40)], "www.w3.org/2000/svg") {
			t.Errorf("page refers to another origin: %q", body[i:min(len(body), i+60)])
		}
	}
	for _, api := range []string{"api/v1/decisions", "api/v1/rules", "api/v1/forecasts"} {
		if !strings.Contains(body, api) {
			t.Errorf("page does not read %s", api)
		}
	}
}
