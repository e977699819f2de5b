package authz

import (
	"strings"
	"testing"
)

// The resources of the table, in column order: account 1 has sites 1 and
// 2; the User (id 20) is granted site 1 whole and report 102 (on site 2)
// alone, and owns report 103 (on site 2); user 10 is an Administrator.
var columns = []struct {
	name string
	r    Resource
}{
	{"site granted", Resource{Kind: Site, Account: 1, Site: 1}},
	{"site not granted", Resource{Kind: Site, Account: 1, Site: 2}},
	{"report on granted site", Resource{Kind: Report, Account: 1, Site: 1, Report: 101, Owner: 10}},
	{"report granted alone", Resource{Kind: Report, Account: 1, Site: 2, Report: 102, Owner: 10}},
	{"own report, site not granted", Resource{Kind: Report, Account: 1, Site: 2, Report: 103, Owner: 20}},
	{"report not granted", Resource{Kind: Report, Account: 1, Site: 2, Report: 104, Owner: 10}},
	{"the user themself", Resource{Kind: UserKind, Account: 1, User: 20}},
	{"another user", Resource{Kind: UserKind, Account: 1, User: 10}},
	{"the account", Resource{Kind: Account, Account: 1}},
	{"an integration", Resource{Kind: Integration, Account: 1, Site: 1}},
	{"another account's site", Resource{Kind: Site, Account: 2, Site: 9}},
}

var principals = map[string]Principal{
	"anonymous":                   {Role: Anonymous},
	"operator":                    {Role: Operator},
	"administrator":               {Role: Administrator, Account: 1, User: 10},
	"administrator, main contact": {Role: Administrator, Account: 1, User: 10, MainContact: true},
	"user":                        {Role: User, Account: 1, User: 20, Sites: []int64{1}, Reports: []int64{102}},
	"user, feeds allowed":         {Role: User, Account: 1, User: 20, Sites: []int64{1}, Reports: []int64{102}, UsersPublishFeeds: true},
	"user, main contact":          {Role: User, Account: 1, User: 20, Sites: []int64{1}, Reports: []int64{102}, MainContact: true},
	"user's key, sites 1 and 2":   {Role: User, Account: 1, User: 20, Sites: []int64{1}, Reports: []int64{102}, Key: true, KeySites: []int64{1, 2}},
	"administrator's key, site 1": {Role: Administrator, Account: 1, User: 10, Key: true, KeySites: []int64{1}},
	"administrator of account 2":  {Role: Administrator, Account: 2, User: 30},
	"staff, read grant":           {Role: Staff, Account: 1, Grant: 5},
	"staff, read-write grant":     {Role: Staff, Account: 1, Grant: 6, Write: true},
	"staff without a grant":       {Role: Staff, Account: 1, Write: true},
	"staff's key":                 {Role: Staff, Account: 1, Grant: 6, Write: true, Key: true, KeySites: []int64{1}},
}

// want: per principal, per action, one letter per column: A(llow),
// F(orbidden), N(ot found).
var want = map[string]map[Action]string{
	"anonymous": all("NNNNNNNNNNN", "NNNNNNNNNNN"),
	"operator":  all("AAAAAAAAAAA", "AAAAAAAAAAA"),
	// everything in the account; approval is the main contact's
	"administrator":               all("AAAAAAAAAAN", "FFFFFFFFFFN"),
	"administrator, main contact": all("AAAAAAAAAAN", "AAAAAAAAAAN"),
	"user": {
		ReadSite:             "ANFFFNFNFNN",
		ReadReport:           "FNAAFNFNFNN",
		SaveReport:           "ANFFFNFNFNN",
		EditReport:           "FNFFANFNFNN",
		ManageSites:          "FNFFFNFNFNN",
		ManageUsers:          "FNFFFNFNFNN",
		ManageAccount:        "FNFFFNFNFNN",
		ConfigureIntegration: "FNFFFNFNFNN",
		ApproveIntegration:   "FNFFFNFNFNN",
		ReadSettings:         "FNFFFNFNFNN",
		PublishFeed:          "FNFFFNFNFNN",
		ScheduleReport:       "FNFFFNFNFNN",
	},
	"user, main contact": {
		ReadSite:             "ANFFFNFNFFN",
		ReadReport:           "FNAAFNFNFFN",
		SaveReport:           "ANFFFNFNFFN",
		EditReport:           "FNFFANFNFFN",
		ManageSites:          "FNFFFNFNFFN",
		ManageUsers:          "FNFFFNFNFFN",
		ManageAccount:        "FNFFFNFNFFN",
		ConfigureIntegration: "FNFFFNFNFFN",
		ApproveIntegration:   "FNFFFNFNFAN",
		ReadSettings:         "FNFFFNFNFFN",
		PublishFeed:          "FNFFFNFNFFN",
		ScheduleReport:       "FNFFFNFNFFN",
	},
	// a key reads its sites' data within its owner's rights, nothing else
	"user's key, sites 1 and 2": {
		ReadSite:             "ANFFFNNNNNN",
		ReadReport:           "FNAAFNNNNNN",
		SaveReport:           "FNFFFNNNNNN",
		EditReport:           "FNFFFNNNNNN",
		ManageSites:          "FNFFFNNNNNN",
		ManageUsers:          "FNFFFNNNNNN",
		ManageAccount:        "FNFFFNNNNNN",
		ConfigureIntegration: "FNFFFNNNNNN",
		ApproveIntegration:   "FNFFFNNNNNN",
		ReadSettings:         "FNFFFNNNNNN",
		PublishFeed:          "FNFFFNNNNNN",
		ScheduleReport:       "FNFFFNNNNNN",
	},
	"administrator's key, site 1": all("ANANNNNNNNN", "FNFNNNNNNNN"),
	"administrator of account 2":  all("NNNNNNNNNNA", "NNNNNNNNNNF"),
	// under a grant: read everything of its account; read-write also
	// manages its sites and settings; people, reports and third parties
	// stay the customer's
	"staff, read grant":       staff("FFFFFFFFFFN"),
	"staff, read-write grant": staff("AAAAAAAAAAN"),
	"staff without a grant":   all("NNNNNNNNNNN", "NNNNNNNNNNN"),
	"staff's key":             all("NNNNNNNNNNN", "NNNNNNNNNNN"),
}

// staff is a staff principal's rows: reads allowed in the account, manage
// actions as given, the rest forbidden.
func staff(manage string) map[Action]string {
	m := all("FFFFFFFFFFN", "FFFFFFFFFFN")
	for _, a := range []Action{ReadSite, ReadReport, ReadSettings} {
		m[a] = "AAAAAAAAAAN"
	}
	for _, a := range []Action{ManageSites, ManageAccount} {
		m[a] = manage
	}
	return m
}

// all is the row of every action but ApproveIntegration, and that one's;
// read actions share the first row too.
func all(row, approve string) map[Action]string {
	m := map[Action]string{}
	for _, a := range Actions() {
		m[a] = row
	}
	m[ApproveIntegration] = approve
	return m
}

func init() {
	// where the account lets Users publish datafeeds, a User publishes
	// the reports they read; nothing else changes
	u := map[Action]string{}
	for a, row := range want["user"] {
		u[a] = row
	}
	u[PublishFeed] = u[ReadReport]
	want["user, feeds allowed"] = u
	// a key's non-read actions differ from its reads
	k := want["administrator's key, site 1"]
	for _, a := range Actions() {
		if a != ReadSite && a != ReadReport {
			k[a] = "FNFNNNNNNNN"
		}
	}
}

// TestDecisionTable checks every principal against every action and every
// resource kind (with and without a grant, in and out of the account).
func TestDecisionTable(t *testing.T) {
	letter := map[Decision]string{Allow: "A", Forbidden: "F", NotFound: "N"}
	if len(want) != len(principals) {
		t.Fatalf("the table has %d principals, want rows for all %d", len(want), len(principals))
	}
	for pname, p := range principals {
		rows, ok := want[pname]
		if !ok {
			t.Fatalf("no expectations for %q", pname)
		}
		for _, a := range Actions() {
			row, ok := rows[a]
			if !ok || len(row) != len(columns) {
				t.Fatalf("%s / %s: want a row of %d letters, have %q", pname, a, len(columns), row)
			}
			var got strings.Builder
			for _, c := range columns {
				got.WriteString(letter[Decide(p, a, c.r)])
			}
			if got.String() != row {
				for i, c := range columns {
					if g := letter[Decide(p, a, c.r)]; g != row[i:i+1] {
						t.Errorf("%s may %s %s: %s, want %s", pname, a, c.name, g, row[i:i+1])
					}
				}
			}
		}
	}
}

// TestZeroAndUnknown: zero ids (nobody, no account), unknown actions and
// kinds, and a key claiming the operator's role get nothing.
func TestZeroAndUnknown(t *testing.T) {
	site := Resource{Kind: Site, Account: 1, Site: 1}
	ownerless := Resource{Kind: Report, Account: 1, Site: 1, Report: 5}
	cases := []struct {
		name string
		p    Principal
		a    Action
		r    Resource
	}{
		{"account 0", Principal{Role: Administrator, User: 10}, ReadSite, Resource{Kind: Site, Site: 1}},
		{"user 0 edits an ownerless report", Principal{Role: User, Account: 1, Sites: []int64{1}}, EditReport, ownerless},
		{"user 0 as a user resource", Principal{Role: User, Account: 1}, ManageUsers, Resource{Kind: UserKind, Account: 1}},
		{"unknown action", principals["administrator"], Action(99), site},
		{"negative action", principals["administrator"], Action(-1), site},
		{"unknown kind", principals["administrator"], ReadSite, Resource{Kind: Kind(42), Account: 1, Site: 1}},
		{"operator key", Principal{Role: Operator, Key: true, KeySites: []int64{1}}, ReadSite, site},
		{"unknown role", Principal{Role: Role(7), Account: 1, User: 10}, ReadSite, site},
	}
	for _, c := range cases {
		if d := Decide(c.p, c.a, c.r); d != NotFound {
			t.Errorf("%s: %s, want NotFound", c.name, d)
		}
	}
	// a User's own report needs their id to match, not two zeros
	own := Resource{Kind: Report, Account: 1, Site: 1, Report: 6, Owner: 20}
	if d := Decide(principals["user"], EditReport, own); d != Allow {
		t.Errorf("own report: %s, want Allow", d)
	}
}

// TestNoLeakByGuessing: for a User, anything of another account and any
// ungranted site or report is NotFound, whatever the action, so a guessed
// id tells nothing.
func TestNoLeakByGuessing(t *testing.T) {
	p := principals["user"]
	for _, a := range Actions() {
		for id := int64(2); id < 50; id++ {
			for _, r := range []Resource{
				{Kind: Site, Account: 1, Site: id},
				{Kind: Report, Account: 1, Site: id, Report: 1000 + id, Owner: 10},
				{Kind: Site, Account: id, Site: 1},
				{Kind: Report, Account: id, Site: 1, Report: 101, Owner: 20},
			} {
				if r.Account == 1 && r.Site == 1 {
					continue
				}
				if d := Decide(p, a, r); d != NotFound {
					t.Fatalf("%s on %+v: %s, want NotFound", a, r, d)
				}
			}
		}
	}
}

// TestScheduleOwnReport: a User schedules their own report while they
// read it (the table has no such column: its own report is on a site not
// granted), never another's, and not their own once it is unreadable.
func TestScheduleOwnReport(t *testing.T) {
	u := principals["user"]
	own := Resource{Kind: Report, Account: 1, Site: 1, Report: 105, Owner: 20}
	if d := Decide(u, ScheduleReport, own); d != Allow {
		t.Errorf("own readable report: %s", d)
	}
	own.Site = 2
	if d := Decide(u, ScheduleReport, own); d != Forbidden {
		t.Errorf("own report on a site no longer granted: %s", d)
	}
	own.Report = 102 // granted alone, so readable again
	if d := Decide(u, ScheduleReport, own); d != Allow {
		t.Errorf("own report granted alone: %s", d)
	}
}
