// Package authz is the one place that answers "may this principal do this
// action on this resource?" (PRODUCT §3.2–3.3, §3.6). It is a pure function
// over values the caller looks up: no I/O, no state, nothing of ours
// imported, so every route, the Stats API and every download ask the same
// question the same way, and one table test covers every role against
// every action and resource kind.
package authz

import "slices"

// Role is who a principal is.
type Role int

const (
	// Anonymous: no session, no key.
	Anonymous Role = iota
	// User reads the sites and saved reports granted to them and owns the
	// reports they save.
	User
	// Administrator may do everything in their account.
	Administrator
	// Operator runs the server (the CLI and the control socket, which only
	// the server's own system user can open).
	Operator
	// Staff: a staff member acting in one customer account under an
	// approved, unexpired access grant (PRODUCT §7.3); the caller checked
	// the grant and sets Grant and Write from it.
	Staff
)

// Principal is the one asking, as the caller found them: a session's user,
// or an API key with its owner's role and grants.
type Principal struct {
	Role    Role
	Account int64
	User    int64
	// Sites and Reports are what a User is granted: whole sites (with
	// every report on them) and single saved reports.
	Sites   []int64
	Reports []int64
	// MainContact: the account's main contact, who alone approves what
	// sends data to a third party.
	MainContact bool
	// Key is set for an API key: it reads (Stats API), and only the sites
	// it is scoped to, within its owner's rights.
	Key      bool
	KeySites []int64
	// Grant is a staff principal's access grant (0: none, nothing is
	// allowed); Write: its scope is read-write.
	Grant int64
	Write bool
	// UsersPublishFeeds: the account lets its Users publish datafeeds of
	// the reports they read (the caller looks it up where it matters).
	UsersPublishFeeds bool
}

// Action is what the principal wants to do.
type Action int

const (
	// ReadSite: the dashboard, the Stats API and downloads of a site.
	ReadSite Action = iota
	// ReadReport: a saved report and its downloads.
	ReadReport
	// SaveReport: save a new report on a site (the resource is the site).
	SaveReport
	// EditReport: change or delete a saved report.
	EditReport
	// ManageSites: add, change and remove sites and their settings.
	ManageSites
	// ManageUsers: add, remove and restore users, and their grants.
	ManageUsers
	// ManageAccount: the account's settings (second factor required,
	// retention of leavers' data, ...).
	ManageAccount
	// ConfigureIntegration: set up or change an outbound integration.
	ConfigureIntegration
	// ApproveIntegration: approve an integration, or withdraw approval.
	ApproveIntegration
	// ReadSettings: see the account's people, sites and settings (the
	// administration pages) without changing them.
	ReadSettings
	// PublishFeed: publish a saved report as a datafeed (PRODUCT §4),
	// and manage that feed: a URL that gives the report to anyone holding
	// it, so an Administrator's decision, or a User's for a report they
	// read where the account lets Users publish (UsersPublishFeeds).
	PublishFeed
	// ScheduleReport: mail a saved report on a schedule (PRODUCT §6.1)
	// and manage its schedules: an Administrator's, or the report's
	// owner's while they read it (the report leaves by mail, so whoever
	// sends it must see it; each recipient is checked again at sending).
	ScheduleReport
	numActions
)

var actionNames = [...]string{"ReadSite", "ReadReport", "SaveReport", "EditReport", "ManageSites", "ManageUsers",
	"ManageAccount", "ConfigureIntegration", "ApproveIntegration", "ReadSettings", "PublishFeed", "ScheduleReport"}

func (a Action) String() string {
	if a >= 0 && a < numActions {
		return actionNames[a]
	}
	return "Action?"
}

// Actions lists every action (for tests and route inventories).
func Actions() []Action {
	out := make([]Action, numActions)
	for i := range out {
		out[i] = Action(i)
	}
	return out
}

// Kind is the kind of resource.
type Kind int

const (
	Site Kind = iota
	Report
	UserKind
	Account
	Integration
)

// Resource is what the action is on, with what the decision needs: the
// account it belongs to, the site (of a site, report or integration), the
// report and its owner, or the user.
type Resource struct {
	Kind    Kind
	Account int64
	Site    int64
	Report  int64
	Owner   int64 // a report's owner
	User    int64 // a user resource
}

// Decision is the answer.
type Decision int

const (
	// Allow: go ahead.
	Allow Decision = iota
	// Forbidden (403): the principal may know the resource exists but
	// may not do this to it.
	Forbidden
	// NotFound (404): the principal may not even learn that the resource
	// exists; an ungranted site or report, another account's anything.
	NotFound
)

func (d Decision) String() string {
	switch d {
	case Allow:
		return "Allow"
	case Forbidden:
		return "Forbidden"
	}
	return "NotFound"
}

// Decide answers whether p may do a on r.
func Decide(p Principal, a Action, r Resource) Decision {
	if a < 0 || a >= numActions || r.Kind < Site || r.Kind > Integration {
		return NotFound // nothing unknown is allowed by default
	}
	switch {
	case p.Role == Operator && !p.Key:
		return Allow
	case p.Role == Staff && !p.Key:
		return decideStaff(p, a, r)
	case p.Role == Administrator, p.Role == User:
	default:
		return NotFound
	}
	// zero ids are "nobody" and "no account": never a match
	if p.Account == 0 || p.User == 0 || r.Account != p.Account {
		return NotFound
	}
	// a key reaches only its sites' data, and only reads it
	if p.Key && (r.Kind != Site && r.Kind != Report || !slices.Contains(p.KeySites, r.Site)) {
		return NotFound
	}
	if !sees(p, r) {
		return NotFound
	}
	if p.Key && a != ReadSite && a != ReadReport {
		return Forbidden
	}
	if p.Role == Administrator {
		if a == ApproveIntegration && !p.MainContact {
			return Forbidden
		}
		return Allow
	}
	// a User
	switch {
	case a == ReadSite && r.Kind == Site, a == SaveReport && r.Kind == Site:
		return Allow
	case a == ReadReport && r.Kind == Report && (slices.Contains(p.Sites, r.Site) || slices.Contains(p.Reports, r.Report)):
		// their own report on a site no longer granted stays theirs (to
		// delete) but shows nothing
		return Allow
	case a == EditReport && r.Kind == Report && r.Owner == p.User: // p.User is not 0
		return Allow
	case a == ApproveIntegration && r.Kind == Integration && p.MainContact:
		return Allow
	case a == PublishFeed && r.Kind == Report && p.UsersPublishFeeds && (slices.Contains(p.Sites, r.Site) || slices.Contains(p.Reports, r.Report)):
		return Allow
	case a == ScheduleReport && r.Kind == Report && r.Owner == p.User && (slices.Contains(p.Sites, r.Site) || slices.Contains(p.Reports, r.Report)):
		return Allow
	}
	return Forbidden
}

// decideStaff: under a grant, staff see everything in its account and
// read it; a read-write grant also changes the account's sites and
// settings. People and datafeeds (credentials that would outlive the
// grant), saving or editing reports and anything that sends data to a third party
// stay the customer's own decisions.
func decideStaff(p Principal, a Action, r Resource) Decision {
	if p.Grant == 0 || p.Account == 0 || r.Account != p.Account {
		return NotFound
	}
	switch a {
	case ReadSite, ReadReport, ReadSettings:
		return Allow
	case ManageSites, ManageAccount:
		if p.Write {
			return Allow
		}
	}
	return Forbidden
}

// sees tells whether p may learn that r exists: an Administrator sees all
// of the account; a User sees the sites granted whole, the reports on them,
// the reports granted one by one and their own, themselves, their account,
// and (as main contact) the integrations awaiting their approval.
func sees(p Principal, r Resource) bool {
	if p.Role == Administrator {
		return true
	}
	switch r.Kind {
	case Site:
		return slices.Contains(p.Sites, r.Site)
	case Report:
		return slices.Contains(p.Sites, r.Site) || slices.Contains(p.Reports, r.Report) || (r.Owner == p.User && r.Owner != 0)
	case UserKind:
		return r.User == p.User
	case Account:
		return true
	case Integration:
		return p.MainContact
	}
	return false
}
