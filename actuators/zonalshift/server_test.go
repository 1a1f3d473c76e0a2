package zonalshift

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// arcServer is a local stand-in for the AWS ARC zonal-shift API speaking
// its REST-JSON wire protocol: POST /zonalshifts, PATCH and DELETE
// /zonalshifts/{id}, GET /managedresources and /managedresources/{arn}.
// It validates like the service does, answers ConflictException when a
// resource already has an active shift, and can be told to throttle.
type arcServer struct {
	mu        sync.Mutex
	now       func() time.Time
	resources map[string][]string // arn -> AZ IDs
	shifts    map[string]*arcShift
	next      int
	// throttle makes the next n requests fail with 429 ThrottlingException.
	throttle int
	// hideShifts makes GET /managedresources/{arn} omit active shifts, to
	// simulate a shift started between augur's read and its write.
	hideShifts bool
	calls      map[string]int // "METHOD /path-pattern" -> count
}

type arcShift struct {
	ID, Resource, AwayFrom, Comment, Status string
	Start, Expiry                           time.Time
}

func newARCServer(now func() time.Time) *arcServer {
	return &arcServer{now: now, resources: map[string][]string{}, shifts: map[string]*arcShift{}, calls: map[string]int{}}
}

func (s *arcServer) fail(w http.ResponseWriter, status int, code, msg string, extra map[string]any) {
	body := map[string]any{"message": msg}
	for k, v := range extra {
		body[k] = v
	}
	w.Header().Set("X-Amzn-Errortype", code)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func (s *arcServer) reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (sh *arcShift) json() map[string]any {
	return map[string]any{"zonalShiftId": sh.ID, "resourceIdentifier": sh.Resource, "awayFrom": sh.AwayFrom,
		"comment": sh.Comment, "status": sh.Status, "startTime": sh.Start.Unix(), "expiryTime": sh.Expiry.Unix()}
}

var expiresRE = regexp.MustCompile(`^([1-9][0-9]*)([mh])$`)

// parseExpiresIn applies the service's limits: 1-1440 minutes or 1-72 hours.
func parseExpiresIn(s string) (time.Duration, bool) {
	m := expiresRE.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	n, _ := strconv.Atoi(m[1])
	if m[2] == "m" && n <= 1440 {
		return time.Duration(n) * time.Minute, true
	}
	if m[2] == "h" && n <= 72 {
		return time.Duration(n) * time.Hour, true
	}
	return 0, false
}

func (s *arcServer) active(res string) []*arcShift {
	var out []*arcShift
	for _, sh := range s.shifts {
		if sh.Resource == res && sh.Status == "ACTIVE" && s.now().Before(sh.Expiry) {
			out = append(out, sh)
		}
	}
	return out
}

func (s *arcServer) resourceJSON(arn string) map[string]any {
	weights := map[string]float64{}
	for _, z := range s.resources[arn] {
		weights[z] = 1
	}
	shifts := []map[string]any{}
	if !s.hideShifts {
		for _, sh := range s.active(arn) {
			m := sh.json()
			delete(m, "status")
			m["appliedStatus"] = "APPLIED"
			weights[sh.AwayFrom] = 0
			shifts = append(shifts, m)
		}
	}
	return map[string]any{"arn": arn, "name": arn[strings.LastIndex(arn, "/")+1:], "appliedWeights": weights,
		"availabilityZones": s.resources[arn], "zonalShifts": shifts, "autoshifts": []any{}, "zonalAutoshiftStatus": "DISABLED"}
}

func (s *arcServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Path parameters are percent-encoded ARNs: split the escaped path.
	parts := strings.Split(strings.Trim(r.URL.EscapedPath(), "/"), "/")
	param := ""
	pattern := "/" + parts[0]
	if len(parts) == 2 {
		param, _ = url.PathUnescape(parts[1])
		pattern += "/{id}"
	}
	s.calls[r.Method+" "+pattern]++
	if r.Header.Get("Authorization") == "" {
		s.fail(w, http.StatusForbidden, "AccessDeniedException", "request is not signed", nil)
		return
	}
	if s.throttle > 0 {
		s.throttle--
		s.fail(w, http.StatusTooManyRequests, "ThrottlingException", "Rate exceeded", nil)
		return
	}
	var body struct {
		ResourceIdentifier, AwayFrom, ExpiresIn, Comment string
	}
	if r.Body != nil && (r.Method == http.MethodPost || r.Method == http.MethodPatch) {
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			s.fail(w, http.StatusBadRequest, "ValidationException", "malformed body: "+err.Error(), map[string]any{"reason": "InvalidRequest"})
			return
		}
	}
	switch {
	case r.Method == http.MethodGet && pattern == "/managedresources":
		items := []any{}
		for arn := range s.resources {
			items = append(items, s.resourceJSON(arn))
		}
		s.reply(w, map[string]any{"items": items})
	case r.Method == http.MethodGet && pattern == "/managedresources/{id}":
		if _, ok := s.resources[param]; !ok {
			s.fail(w, http.StatusNotFound, "ResourceNotFoundException", "no managed resource "+param, nil)
			return
		}
		s.reply(w, s.resourceJSON(param))
	case r.Method == http.MethodPost && pattern == "/zonalshifts":
		zones, ok := s.resources[body.ResourceIdentifier]
		if !ok {
			s.fail(w, http.StatusNotFound, "ResourceNotFoundException", "no managed resource "+body.ResourceIdentifier, nil)
			return
		}
		exp, okExp := parseExpiresIn(body.ExpiresIn)
		switch {
		case !okExp:
			s.fail(w, http.StatusBadRequest, "ValidationException", "expiresIn "+body.ExpiresIn+" is invalid", map[string]any{"reason": "InvalidExpiresIn"})
			return
		case !contains(zones, body.AwayFrom):
			s.fail(w, http.StatusBadRequest, "ValidationException", "awayFrom "+body.AwayFrom+" is not an AZ ID of the resource", map[string]any{"reason": "InvalidAz"})
			return
		case len(body.Comment) > 128:
			s.fail(w, http.StatusBadRequest, "ValidationException", "comment too long", map[string]any{"reason": "InvalidRequest"})
			return
		}
		if a := s.active(body.ResourceIdentifier); len(a) > 0 {
			s.fail(w, http.StatusConflict, "ConflictException", "a zonal shift is already active on the resource",
				map[string]any{"reason": "ZonalShiftAlreadyExists", "zonalShiftId": a[0].ID})
			return
		}
		s.next++
		sh := &arcShift{ID: fmt.Sprintf("zs-%04d", s.next), Resource: body.ResourceIdentifier, AwayFrom: body.AwayFrom,
			Comment: body.Comment, Status: "ACTIVE", Start: s.now(), Expiry: s.now().Add(exp)}
		s.shifts[sh.ID] = sh
		s.reply(w, sh.json())
	case r.Method == http.MethodPatch && pattern == "/zonalshifts/{id}":
		sh, ok := s.shifts[param]
		if !ok {
			s.fail(w, http.StatusNotFound, "ResourceNotFoundException", "no zonal shift "+param, nil)
			return
		}
		if sh.Status != "ACTIVE" {
			s.fail(w, http.StatusConflict, "ConflictException", "zonal shift is not active", map[string]any{"reason": "ZonalShiftStatusNotActive", "zonalShiftId": sh.ID})
			return
		}
		if body.ExpiresIn != "" {
			exp, ok := parseExpiresIn(body.ExpiresIn)
			if !ok {
				s.fail(w, http.StatusBadRequest, "ValidationException", "expiresIn "+body.ExpiresIn+" is invalid", map[string]any{"reason": "InvalidExpiresIn"})
				return
			}
			sh.Expiry = s.now().Add(exp)
		}
		if body.Comment != "" {
			sh.Comment = body.Comment
		}
		s.reply(w, sh.json())
	case r.Method == http.MethodDelete && pattern == "/zonalshifts/{id}":
		sh, ok := s.shifts[param]
		if !ok || sh.Status != "ACTIVE" {
			s.fail(w, http.StatusNotFound, "ResourceNotFoundException", "no active zonal shift "+param, nil)
			return
		}
		sh.Status = "CANCELED"
		s.reply(w, sh.json())
	default:
		s.fail(w, http.StatusNotFound, "UnknownOperationException", r.Method+" "+r.URL.Path, nil)
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
