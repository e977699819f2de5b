package secmon

import (
	"fmt"
	"time"
)

// Rule turns events of one kind into an alert: Count events of the kind
// for one subject (an account, or else the actor: a network's pseudonym,
// a staff member, the system) within Window.
type Rule struct {
	Name   string
	Kind   string
	Count  int
	Window time.Duration
	// What says in words what crossing the rule means, for the mails.
	What string
}

// DefaultRules are the rules, stated in the README. The thresholds sit
// above what honest people do: a mistyped password or two, one lock-out
// of one person is reported (it is what an attack looks like first), a
// staff member's or the system's failures are reported at the first.
var DefaultRules = []Rule{
	{"signin-failures", SigninFailed, 10, 15 * time.Minute,
		"many failed sign-ins (wrong passwords or unknown e-mail addresses)"},
	{"signin-code-failures", SecondFactorFailed, 3, 15 * time.Minute,
		"wrong second-factor codes after the right password: someone may know a password"},
	{"signin-throttled", SigninThrottled, 1, 15 * time.Minute,
		"sign-in refused: a person locked out after failed sign-ins, or an address over its limit"},
	{"staff-refused", StaffRefused, 1, time.Hour,
		"a staff request to a customer account without a valid access grant"},
	{"staff-off-hours", StaffOffHours, 1, time.Hour,
		"staff access to a customer account outside normal hours"},
	{"staff-volume", StaffVolume, 1, time.Hour,
		"more staff access to a customer account than normal"},
	{"staff-console-outside", StaffConsoleOutside, 1, time.Hour,
		"a request for the staff console from outside the operator's network"},
	{"ip-refused", IPRefused, 5, 15 * time.Minute,
		"requests refused by an address restriction"},
	{"audit-broken", AuditBroken, 1, time.Hour,
		"the audit log does not verify: an entry was altered, inserted or removed"},
	{"export-large", ExportLarge, 1, time.Hour,
		"exports over the account's export thresholds (rows or bytes per person per day, exports per hour): see who exported what at /admin/exports"},
	{"feed-abuse", FeedAbuse, 1, time.Hour,
		"a datafeed used beyond its limits"},
	{"backup-drill-failed", BackupDrillFailed, 1, 24 * time.Hour,
		"a backup restore drill failed"},
	{"address-blocked", AddressBlocked, 1, time.Hour,
		"a client address kept crossing the request limits and was blocked for a while (a flood or a scan)"},
	// operations: each event is a condition that began (opsalert raises
	// one per occurrence and resolves the alert when it clears)
	{"ops-error-rate", OpsErrorRate, 1, time.Hour,
		"many requests answered with a server error (5xx)"},
	{"ops-shedding", OpsShedding, 1, time.Hour,
		"collection is overloaded: events were refused because the write queue was full"},
	{"ops-disk", OpsDisk, 1, time.Hour,
		"the data dir's disk is nearly full"},
	{"ops-job-failed", OpsJobFailed, 1, time.Hour,
		"a periodic job failed several times in a row"},
	{"ops-standby", OpsStandby, 1, time.Hour,
		"the PostgreSQL standby has not been replicating for 5 minutes: the database has no current second copy"},
}

// KnownKind reports whether a kind is one of the kinds above.
func KnownKind(k string) bool {
	switch k {
	case SigninFailed, SecondFactorFailed, SigninThrottled, StaffRefused, StaffOffHours, StaffVolume,
		StaffConsoleOutside, IPRefused, AuditBroken, ExportLarge, FeedAbuse, BackupDrillFailed, AddressBlocked,
		OpsErrorRate, OpsShedding, OpsDisk, OpsJobFailed, OpsStandby:
		return true
	}
	return false
}

// Threshold is a rule's numbers in words: "10 within 15m0s".
func (r Rule) Threshold() string {
	return fmt.Sprintf("%d within %s", r.Count, r.Window)
}

// RuleByName finds a rule of the monitor's table.
func (m *Monitor) RuleByName(name string) (Rule, bool) {
	for _, r := range m.rules() {
		if r.Name == name {
			return r, true
		}
	}
	return Rule{}, false
}

// RuleOfKind finds the first rule of the monitor's table for a kind.
func (m *Monitor) RuleOfKind(kind string) (Rule, bool) {
	for _, r := range m.rules() {
		if r.Kind == kind {
			return r, true
		}
	}
	return Rule{}, false
}
