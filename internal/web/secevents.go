package web

import "net/http"

// Security events the web layer raises (PRODUCT §8.1).
const (
	EventStaffOutside      = "staff.outside"
	EventStaffRefused      = "staff.refused"
	EventStaffSigninFailed = "staff.signin_failed"
	EventStaffOffHours     = "staff.off_hours"
	EventStaffVolume       = "staff.volume"
)

// securityEvent records a security event. The detail names no secret and
// no client address.
func (s *Server) securityEvent(r *http.Request, kind string, account int64, actor, detail string) {
	s.Log.Warn("security event", "kind", kind, "account", account, "actor", actor, "detail", detail)
}
