package export_test

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"fjord/internal/export"
	"fjord/internal/store"
	"fjord/internal/store/sqlite"
)

// recorderEnv is a Recorder on a real SQLite account store with one
// account of two users, at a clock the test moves.
type recorderEnv struct {
	rc           *export.Recorder
	st           export.Store
	account      int64
	admin, other int64
	now          time.Time
}

func newRecorder(t *testing.T) *recorderEnv {
	t.Helper()
	ctx := context.Background()
	acc, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "accounts.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { acc.Close() })
	a, admin, err := acc.CreateAccount(ctx, store.Account{Name: "Acme"}, store.User{Email: "admin@acme.test"})
	if err != nil {
		t.Fatal(err)
	}
	u, err := acc.AddUser(ctx, store.User{AccountID: a.ID, Email: "user@acme.test", Role: store.RoleUser})
	if err != nil {
		t.Fatal(err)
	}
	e := &recorderEnv{st: acc, account: a.ID, admin: admin.ID, other: u.ID, now: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	e.rc = &export.Recorder{Store: acc, Now: func() time.Time { return e.now }}
	return e
}

// export records one CSV download of the admin's and returns the names
// of the thresholds it crossed.
func (e *recorderEnv) export(t *testing.T, r export.Record) []string {
	t.Helper()
	if r.User == 0 && r.Staff == 0 {
		r.User = e.admin
	}
	r.Account, r.Format, r.Via, r.Complete = e.account, export.CSV, export.ViaDashboard, true
	_, cs, err := e.rc.Record(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range cs {
		if c.Account != e.account || c.Actor != r.Actor() || c.Total <= c.Limit {
			t.Errorf("crossing %+v of %s", c, r.Actor())
		}
		names = append(names, c.Threshold)
	}
	return names
}

// TestRecorderCrossesEachThresholdOnce: for each threshold, the export
// that takes a person's total over it is a crossing and nothing before
// (reaching the threshold exactly is not over it) or after it in the same
// day or hour is; the next day or hour it can be crossed again; another
// person has their own totals; an export through an API key counts as
// its user's.
func TestRecorderCrossesEachThresholdOnce(t *testing.T) {
	big := export.Thresholds{RowsPerDay: 1 << 40, BytesPerDay: 1 << 40, ExportsPerHour: 1 << 40}
	for _, c := range []struct {
		threshold string
		set       func(*export.Thresholds)
		rec       export.Record // each export's size
		next      time.Duration // how far the next window is
	}{
		{export.RowsPerDay, func(th *export.Thresholds) { th.RowsPerDay = 100 }, export.Record{Rows: 50, Bytes: 10}, 24 * time.Hour},
		{export.BytesPerDay, func(th *export.Thresholds) { th.BytesPerDay = 1000 }, export.Record{Rows: 1, Bytes: 500}, 24 * time.Hour},
		{export.ExportsPerHour, func(th *export.Thresholds) { th.ExportsPerHour = 2 }, export.Record{Rows: 1, Bytes: 1}, time.Hour},
	} {
		t.Run(c.threshold, func(t *testing.T) {
			e := newRecorder(t)
			th := big
			c.set(&th)
			if err := e.st.SetExportThresholds(context.Background(), e.account, th); err != nil {
				t.Fatal(err)
			}
			// two exports reach the threshold exactly; the third goes over
			for i := 1; i <= 2; i++ {
				if got := e.export(t, c.rec); len(got) != 0 {
					t.Fatalf("export %d, at the threshold: crossed %v", i, got)
				}
				e.now = e.now.Add(time.Minute)
			}
			keyed := c.rec
			keyed.APIKey = 9 // the admin's key: their total
			if got := e.export(t, keyed); strings.Join(got, " ") != c.threshold {
				t.Fatalf("the export over the threshold crossed %v, want %s", got, c.threshold)
			}
			for i := 0; i < 3; i++ {
				e.now = e.now.Add(time.Minute)
				if got := e.export(t, c.rec); len(got) != 0 {
					t.Fatalf("a later export in the same window crossed %v", got)
				}
			}
			// another person: their own totals
			if got := e.export(t, export.Record{User: e.other, Rows: c.rec.Rows, Bytes: c.rec.Bytes}); len(got) != 0 {
				t.Fatalf("another user's first export crossed %v", got)
			}
			// the next window starts again
			e.now = e.now.Truncate(c.next).Add(c.next)
			for i := 1; i <= 2; i++ {
				if got := e.export(t, c.rec); len(got) != 0 {
					t.Fatalf("next window, export %d: crossed %v", i, got)
				}
			}
			if got := e.export(t, c.rec); strings.Join(got, " ") != c.threshold {
				t.Fatalf("next window, the export over: crossed %v", got)
			}
			cs, err := e.st.Crossings(context.Background(), e.account, 10)
			if err != nil || len(cs) != 2 || cs[0].Threshold != c.threshold || !cs[0].Window.Equal(e.now.Truncate(c.next)) {
				t.Fatalf("stored crossings %+v %v", cs, err)
			}
		})
	}
}

// TestRecorderStaffAndLoweredThreshold: a staff member's exports count
// for them, not for a user; a threshold lowered below what someone has
// exported today is crossed by their next export (once).
func TestRecorderStaffAndLoweredThreshold(t *testing.T) {
	e := newRecorder(t)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if got := e.export(t, export.Record{Rows: 1000, Bytes: 1000}); len(got) != 0 {
			t.Fatalf("under the defaults: crossed %v", got)
		}
	}
	if err := e.st.SetExportThresholds(ctx, e.account, export.Thresholds{RowsPerDay: 500, BytesPerDay: export.DefaultBytesPerDay, ExportsPerHour: 60}); err != nil {
		t.Fatal(err)
	}
	if got := e.export(t, export.Record{Staff: 3, Rows: 400}); len(got) != 0 {
		t.Fatalf("the staff member's first export crossed %v", got)
	}
	if got := e.export(t, export.Record{Rows: 1}); strings.Join(got, " ") != export.RowsPerDay {
		t.Fatalf("after lowering: crossed %v", got)
	}
	if got := e.export(t, export.Record{Rows: 1}); len(got) != 0 {
		t.Fatalf("again: crossed %v", got)
	}
	if got := e.export(t, export.Record{Staff: 3, Rows: 101}); strings.Join(got, " ") != export.RowsPerDay {
		t.Fatalf("the staff member over: crossed %v", got)
	}
	cs, _ := e.st.Crossings(ctx, e.account, 10)
	if len(cs) != 2 || cs[0].Actor != "staff:3" || cs[1].Actor != "user:"+itoa(e.admin) {
		t.Fatalf("crossings %+v", cs)
	}
	if d := cs[0].Detail(); !strings.Contains(d, "rows-per-day") || !strings.Contains(d, "staff:3") || !strings.Contains(d, "501 over 500") {
		t.Fatalf("detail %q", d)
	}
}

// TestRecorderAcrossServers: two recorders (two servers) on one store,
// exporting at once past a threshold: one crossing in all.
func TestRecorderAcrossServers(t *testing.T) {
	e := newRecorder(t)
	ctx := context.Background()
	if err := e.st.SetExportThresholds(ctx, e.account, export.Thresholds{RowsPerDay: 10, BytesPerDay: 1 << 40, ExportsPerHour: 1 << 40}); err != nil {
		t.Fatal(err)
	}
	second := &export.Recorder{Store: e.st, Now: e.rc.Now}
	var mu sync.Mutex
	crossed := 0
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(rc *export.Recorder) {
			defer wg.Done()
			_, cs, err := rc.Record(ctx, export.Record{Account: e.account, User: e.admin, Format: export.JSON, Via: export.ViaAPI, Rows: 1, Complete: true})
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			crossed += len(cs)
			mu.Unlock()
		}([]*export.Recorder{e.rc, second}[i%2])
	}
	wg.Wait()
	if crossed != 1 {
		t.Fatalf("%d crossings of one threshold, want 1", crossed)
	}
}

// TestRecordRefusesWhatCannotBeCounted: a record without an account, a
// person (or with two), a known format or way is refused with the reason.
func TestRecordRefusesWhatCannotBeCounted(t *testing.T) {
	e := newRecorder(t)
	ok := export.Record{Account: e.account, User: e.admin, Format: export.CSV, Via: export.ViaReport}
	for _, c := range []struct {
		change func(*export.Record)
		want   string
	}{
		{func(r *export.Record) { r.Account = 0 }, "no account"},
		{func(r *export.Record) { r.User = 0 }, "want a user or a staff member"},
		{func(r *export.Record) { r.Staff = 2 }, "want a user or a staff member"},
		{func(r *export.Record) { r.Format = "xls" }, `format "xls"`},
		{func(r *export.Record) { r.Via = "feed" }, `via "feed"`},
		{func(r *export.Record) { r.Bytes = -1 }, "-1 bytes"},
	} {
		r := ok
		c.change(&r)
		if _, _, err := e.rc.Record(context.Background(), r); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error saying %q", r, err, c.want)
		}
	}
	if got, _ := e.st.Exports(context.Background(), e.account, 10); len(got) != 0 {
		t.Fatalf("refused records were stored: %+v", got)
	}
}

// TestParseThresholds: the form's ranges, crossed on both sides of each,
// with errors naming the field, its range and what was typed.
func TestParseThresholds(t *testing.T) {
	th, err := export.ParseThresholds("1,000,000", " 100 ", "60")
	if err != nil || th != export.Defaults {
		t.Fatalf("the defaults as typed: %+v %v", th, err)
	}
	if th, err := export.ParseThresholds("1", "1", "1"); err != nil || th != (export.Thresholds{RowsPerDay: 1, BytesPerDay: export.MB, ExportsPerHour: 1}) {
		t.Fatalf("the least: %+v %v", th, err)
	}
	if th, err := export.ParseThresholds("1000000000", "1000000", "100000"); err != nil || th != (export.Thresholds{RowsPerDay: 1e9, BytesPerDay: 1e12, ExportsPerHour: 1e5}) {
		t.Fatalf("the most: %+v %v", th, err)
	}
	for _, c := range []struct{ rows, mb, exports, want string }{
		{"0", "1", "1", `Rows per person per day: want a whole number from 1 to 1,000,000,000, not "0"`},
		{"1000000001", "1", "1", "Rows per person per day: want a whole number from 1 to 1,000,000,000"},
		{"1", "0", "1", "Megabytes per person per day: want a whole number from 1 to 1,000,000,"},
		{"1", "1000001", "1", "Megabytes per person per day"},
		{"1", "1", "0", "Exports per person per hour: want a whole number from 1 to 100,000"},
		{"1", "1", "100001", "Exports per person per hour"},
		{"", "1", "1", `Rows per person per day: want a whole number from 1 to 1,000,000,000, not ""`},
		{"1.5", "1", "1", "Rows per person per day"},
		{"-5", "1", "1", "Rows per person per day"},
		{"+5", "1", "1", "Rows per person per day"},
		{"1e6", "1", "1", "Rows per person per day"},
		{"1", "1", "99999999999999999999999", "Exports per person per hour"},
		{"1", "1", strings.Repeat("x", 100), `not "xxxxxxxxxxxxxxxxxxxx…"`},
	} {
		if _, err := export.ParseThresholds(c.rows, c.mb, c.exports); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q %q %q: %v, want %q", c.rows, c.mb, c.exports, err, c.want)
		}
	}
}

// FuzzParseThresholds: any text gives thresholds within the ranges or an
// error naming one of the three fields; never a panic.
func FuzzParseThresholds(f *testing.F) {
	f.Add("1,000,000", "100", "60")
	f.Add("0", "-1", "+1")
	f.Add("1 000 000 000", "1_000_000", "100000")
	f.Add("９", "\x00", "1e3")
	f.Fuzz(func(t *testing.T, rows, mb, exports string) {
		th, err := export.ParseThresholds(rows, mb, exports)
		if err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, "Rows per person per day: ") && !strings.HasPrefix(msg, "Megabytes per person per day: ") && !strings.HasPrefix(msg, "Exports per person per hour: ") {
				t.Fatalf("an error naming no field: %q", msg)
			}
			if len(msg) > 400 {
				t.Fatalf("an error of %d bytes", len(msg))
			}
			return
		}
		if th.RowsPerDay < export.MinRowsPerDay || th.RowsPerDay > export.MaxRowsPerDay ||
			th.BytesPerDay < export.MinMBPerDay*export.MB || th.BytesPerDay > export.MaxMBPerDay*export.MB || th.BytesPerDay%export.MB != 0 ||
			th.ExportsPerHour < export.MinExportsPerHour || th.ExportsPerHour > export.MaxExportsPerHour {
			t.Fatalf("%q %q %q gave %+v, outside the ranges", rows, mb, exports, th)
		}
	})
}

func TestThousands(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 100000: "100,000", 1234567: "1,234,567", -100: "-100", -1234: "-1,234"} {
		if got := export.Thousands(n); got != want {
			t.Errorf("%d: %q, want %q", n, got, want)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
