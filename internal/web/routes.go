// Package web is Fjord's HTTP surface: the public port (collection, the
// tracker, health, pages) and the control socket the CLI talks to.
package web

import (
	"fmt"
	"net/http"
	"strings"
)

// Permission is what a route needs. Every route declares one when it is
// registered; TestEveryRouteDeclaresPermission walks the table.
type Permission string

const (
	// PermPublic: anyone on the internet (collection, tracker, health).
	PermPublic Permission = "public"
	// PermPage: a public page of ours (sign-in), with the page headers.
	PermPage Permission = "page"
	// PermSecondFactor: a sign-in that passed the password and owes the
	// second factor (a pending session); POST must carry its CSRF token.
	PermSecondFactor Permission = "second-factor"
	// PermSignedIn: a signed-in user; a state-changing request must carry
	// the session's CSRF token. Staff never (their own things: keys, the
	// second factor, sign-out).
	PermSignedIn Permission = "signed-in"
	// PermAccount: a signed-in user, or a staff member acting in the
	// account under a valid access grant (each request audited with the
	// grant's id); the handler asks authz about what it shows.
	PermAccount Permission = "account"
	// PermReadSite: a signed-in user, or acting staff, whom authz allows to
	// read the site named by the path's {domain}; anyone else gets 404.
	PermReadSite Permission = "read-site"
	// PermAdmin: a signed-in Administrator on their own account, or staff
	// acting in it (reading; changing with a read-write grant); anyone
	// else gets 404. Each action then asks authz about what it touches.
	PermAdmin Permission = "admin"
	// PermStaffPage: the staff console's sign-in and set-up pages, only
	// from the staff ranges (elsewhere a plain 404 and a security event).
	PermStaffPage Permission = "staff-page"
	// PermStaff: a signed-in staff member, only from the staff ranges; a
	// state-changing request must carry the staff session's CSRF token.
	PermStaff Permission = "staff"
	// PermStatsAPI: the Stats API: a valid API key as Authorization:
	// Bearer; what the key may read is then authz's decision per site and
	// report (404 for anything else), and it never writes.
	PermStatsAPI Permission = "stats-api"
	// PermOperator: the control socket, reachable only by the server's
	// own user through file permissions on the socket; and the
	// metrics-listen port, which config allows only on loopback.
	PermOperator Permission = "operator"
	// PermMetrics: /metrics on the public port: a bearer metrics-token
	// (compared in constant time) or a client address in metrics-ranges;
	// anyone else gets 404, so the page's existence is not revealed.
	PermMetrics Permission = "metrics"
	// PermCollector: an edge collector's endpoints on the main service: a
	// token of the collectors file as Authorization: Bearer; anyone else
	// gets 401 (and 404 when no collectors file is configured).
	PermCollector Permission = "collector"
)

// Route is one entry of a route table.
type Route struct {
	Pattern string
	Perm    Permission
}

// Mux is an http.ServeMux that records each route's permission.
type Mux struct {
	mux    *http.ServeMux
	Routes []Route
	guard  func(Permission, http.Handler) http.Handler
	// edge, when set, serves every request around the route's handler
	// (the public port: limits, headers, request ids, log lines)
	edge    func(w http.ResponseWriter, r *http.Request, class, pattern string, next http.Handler)
	classes map[string]string // pattern -> route class
}

func newMux(guard func(Permission, http.Handler) http.Handler) *Mux {
	return &Mux{mux: http.NewServeMux(), guard: guard}
}

// Handle registers h under pattern with its permission.
func (m *Mux) Handle(pattern string, perm Permission, h http.HandlerFunc) {
	if perm == "" {
		panic(fmt.Sprintf("route %s declares no permission", pattern))
	}
	m.Routes = append(m.Routes, Route{pattern, perm})
	if m.classes == nil {
		m.classes = map[string]string{}
	}
	m.classes[pattern] = routeClass(pattern, perm)
	m.mux.Handle(pattern, m.guard(perm, h))
}

func (m *Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if m.edge == nil {
		m.mux.ServeHTTP(w, r)
		return
	}
	// the route is looked up for its class; unknown paths are pages,
	// limited like them
	h, pattern := m.mux.Handler(r)
	class, ok := m.classes[pattern]
	if !ok {
		m.edge(w, r, ClassPages, "unknown", m.mux)
		return
	}
	if strings.Contains(pattern, "{") || r.RequestURI == "*" {
		// Handler sets no path values: the mux matches again and sets
		// them (and answers "*" itself)
		m.edge(w, r, class, pattern, m.mux)
		return
	}
	// a route without wildcards needs no second match: its handler is
	// called as the mux calls it, with r.Pattern set
	r.Pattern = pattern
	m.edge(w, r, class, pattern, h)
}
