package web

import (
	"net/http"
	"time"

	"fjord/internal/secmon"
)

// The staff console's security events (PRODUCT §8.1), by their monitor
// kinds.
const (
	EventStaffOutside      = secmon.StaffConsoleOutside
	EventStaffRefused      = secmon.StaffRefused
	EventStaffSigninFailed = secmon.SigninFailed
	EventStaffOffHours     = secmon.StaffOffHours
	EventStaffVolume       = secmon.StaffVolume
)

// staffEvent records a security event of the staff console or of staff
// in an account, and logs it (the log names no address: actor is a staff
// id, or else the client network's pseudonym).
func (s *Server) staffEvent(r *http.Request, kind string, account int64, actor, detail string) {
	if kind == EventStaffOutside && s.Security != nil {
		// anyone on the internet can ask for /staff/: one alert for them
		// all (actor "staff-console"), and at most one event per network a
		// minute, so that a scan cannot make us write a row per request
		net := s.Security.Network(ClientIP(r, s.TrustedProxies))
		if !s.addrEvents.allow("staff:"+net, 1, time.Minute, s.now()) {
			return
		}
		actor, detail = "staff-console", detail+" ("+net+")"
	}
	if actor == "" && s.Security != nil {
		actor = s.network(r)
	}
	s.Log.WarnContext(r.Context(), "security event", "kind", kind, "account", account, "actor", actor, "detail", detail)
	s.securityEvent(r, secmon.Event{Kind: kind, Account: account, Actor: actor, Detail: detail})
}
