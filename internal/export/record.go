package export

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Ways an export leaves Fjord.
const (
	ViaDashboard = "dashboard" // a dashboard panel's download
	ViaReport    = "report"    // a saved report's download
	ViaAPI       = "api"       // an answer of the Stats API
)

// Record is one export, kept so that an account's Administrators can see
// what left and who took it (PRODUCT §5.2). It names people by id only: a
// leaver's records stay, without their personal data.
type Record struct {
	ID      int64
	Time    time.Time
	Account int64
	// Who: a user (User, and APIKey when it went through one of their
	// keys) or a staff member acting in the account under a grant (Staff;
	// User is then 0).
	User   int64
	Staff  int64
	APIKey int64
	// What: the site, and the dashboard panel or API endpoint (Panel) or
	// the saved report (Report), the period, and the format.
	Site   int64
	Report int64
	Panel  string
	Period string
	Format string
	Via    string
	// Rows and Bytes are what was sent; Complete is false when the export
	// broke off (the client went away, or the query failed mid-way). Then
	// Bytes are what had been handed to the connection, while Rows counts
	// the rows written into the file, the last of which may not have left
	// the server's buffer (at most 32 KiB of them).
	Rows     int64
	Bytes    int64
	Complete bool
}

// Actor is who exported, as the audit log and the security events name
// them: "user:12" or "staff:3". An export through an API key is its
// user's: the key acts for them.
func (r Record) Actor() string {
	if r.Staff != 0 {
		return "staff:" + strconv.FormatInt(r.Staff, 10)
	}
	return "user:" + strconv.FormatInt(r.User, 10)
}

// check refuses a record that does not say whose export it was or how it
// left: such a record could not be counted against a person's thresholds.
func (r Record) check() error {
	switch {
	case r.Account <= 0:
		return errors.New("export record: no account")
	case (r.User == 0) == (r.Staff == 0):
		return fmt.Errorf("export record: want a user or a staff member, not user %d and staff %d", r.User, r.Staff)
	case r.Format != CSV && r.Format != JSON:
		return fmt.Errorf("export record: format %q (want csv or json)", r.Format)
	case r.Via != ViaDashboard && r.Via != ViaReport && r.Via != ViaAPI:
		return fmt.Errorf("export record: via %q (want dashboard, report or api)", r.Via)
	case r.Rows < 0 || r.Bytes < 0:
		return fmt.Errorf("export record: %d rows, %d bytes", r.Rows, r.Bytes)
	}
	return nil
}

// Thresholds are an account's limits on what one person exports (PRODUCT
// §5.2). Crossing one is not refused: it raises a security event that
// tells the account's Administrators, once per person, threshold and
// period. Days and hours are UTC calendar days and clock hours.
type Thresholds struct {
	RowsPerDay     int64
	BytesPerDay    int64
	ExportsPerHour int64
}

// The default thresholds, stated in the README. They sit well above what
// a person does by hand and well below what copying an account's data
// takes:
//
//   - 1,000,000 rows a day: a hundred downloads of 10,000 rows (a busy
//     site's pages over a month); a person exporting every panel of every
//     site they read for a report stays far below it.
//   - 100 MB (100,000,000 bytes) a day: about a million rows of CSV (or
//     some 400,000 of JSON); the bytes catch wide rows that the row count
//     underrates.
//   - 60 exports an hour: one a minute for a whole hour. A person clicking
//     downloads makes a handful; a script walking through a site's data, one
//     filter or page at a time, makes many more. A Stats API client that
//     polls (a wall display) may come near it; its Administrators can raise
//     the threshold for their account.
const (
	DefaultRowsPerDay     = 1_000_000
	DefaultBytesPerDay    = 100_000_000
	DefaultExportsPerHour = 60
)

// Defaults are the thresholds of an account that has set none.
var Defaults = Thresholds{RowsPerDay: DefaultRowsPerDay, BytesPerDay: DefaultBytesPerDay, ExportsPerHour: DefaultExportsPerHour}

// The ranges an Administrator may set (the settings form). The smallest
// still lets an account be told of nearly every export; the largest are
// beyond any honest use while still telling of a wholesale copy.
const (
	MinRowsPerDay, MaxRowsPerDay         = 1, 1_000_000_000
	MinMBPerDay, MaxMBPerDay             = 1, 1_000_000 // 1 MB to 1 TB
	MinExportsPerHour, MaxExportsPerHour = 1, 100_000
)

// MB is the unit of the settings form's bytes: a megabyte of 10^6 bytes,
// as disks and networks count.
const MB = 1_000_000

// ParseThresholds reads the settings form's three fields (rows a day,
// megabytes a day, exports an hour); an error names the field and its
// allowed range.
func ParseThresholds(rows, megabytes, exports string) (Thresholds, error) {
	r, err := formNumber("Rows per person per day", rows, MinRowsPerDay, MaxRowsPerDay)
	if err != nil {
		return Thresholds{}, err
	}
	m, err := formNumber("Megabytes per person per day", megabytes, MinMBPerDay, MaxMBPerDay)
	if err != nil {
		return Thresholds{}, err
	}
	e, err := formNumber("Exports per person per hour", exports, MinExportsPerHour, MaxExportsPerHour)
	if err != nil {
		return Thresholds{}, err
	}
	return Thresholds{RowsPerDay: r, BytesPerDay: m * MB, ExportsPerHour: e}, nil
}

// formNumber reads a whole number of a form field, allowing the thousands
// separators people type (1,000,000 or 1 000 000).
func formNumber(field, s string, lo, hi int64) (int64, error) {
	t := strings.NewReplacer(",", "", "_", "", " ", "").Replace(strings.TrimSpace(s))
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < lo || n > hi || strings.HasPrefix(t, "+") {
		shown := s
		if len([]rune(shown)) > 20 {
			shown = string([]rune(shown)[:20]) + "…"
		}
		return 0, fmt.Errorf("%s: want a whole number from %s to %s, not %q", field, Thousands(lo), Thousands(hi), shown)
	}
	return n, nil
}

// Thousands writes n with thousands separators: 1,000,000.
func Thousands(n int64) string {
	if n < 0 && n != math.MinInt64 {
		return "-" + Thousands(-n)
	}
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Names of the thresholds, as security events and the exports page name
// them.
const (
	RowsPerDay     = "rows-per-day"
	BytesPerDay    = "bytes-per-day"
	ExportsPerHour = "exports-per-hour"
)

// Usage is what one person exported in an account: rows and bytes since
// the start of the day, exports since the start of the hour.
type Usage struct {
	Rows, Bytes, Exports int64
}

// Crossing is a threshold an export took its person's total over: the
// first export of the day (or hour) beyond it. Later ones are no new
// crossing.
type Crossing struct {
	Account   int64
	Actor     string    // "user:12", "staff:3"
	Threshold string    // RowsPerDay, BytesPerDay or ExportsPerHour
	Window    time.Time // the start of its day or hour (UTC)
	Limit     int64     // the threshold at the time
	Total     int64     // the person's total with this export
	Export    int64     // the export's record
	Time      time.Time
}

// Detail is the crossing in words for its security event: the threshold
// and the person by id, never an address.
func (c Crossing) Detail() string {
	per := "day " + c.Window.Format(time.DateOnly)
	if c.Threshold == ExportsPerHour {
		per = "hour " + c.Window.Format("2006-01-02 15:00") + " UTC"
	}
	return fmt.Sprintf("export threshold %s crossed by %s: %s over %s in the %s (export %d)", c.Threshold, c.Actor, Thousands(c.Total), Thousands(c.Limit), per, c.Export)
}

// Store keeps the record, the thresholds and the crossings (the account
// store, both engines).
type Store interface {
	AddExport(ctx context.Context, r Record) (Record, error)
	// Exports lists an account's records, newest first, at most limit.
	Exports(ctx context.Context, account int64, limit int) ([]Record, error)
	// ExportUsage sums one person's rows and bytes in an account at or
	// after day and counts their exports at or after hour; a person is a
	// user (staff 0) or a staff member (user 0).
	ExportUsage(ctx context.Context, account, user, staff int64, day, hour time.Time) (Usage, error)
	// ExportThresholds are an account's thresholds, Defaults when it has
	// set none.
	ExportThresholds(ctx context.Context, account int64) (Thresholds, error)
	SetExportThresholds(ctx context.Context, account int64, t Thresholds) error
	// ClaimCrossing stores a crossing unless one of its account, actor,
	// threshold and window is stored already; it tells whether it was
	// stored, so that of two exports crossing together only one raises
	// the event, on any number of servers.
	ClaimCrossing(ctx context.Context, c Crossing) (bool, error)
	// Crossings lists an account's crossings, newest first, at most limit.
	Crossings(ctx context.Context, account int64, limit int) ([]Crossing, error)
	// PurgeExports deletes records and crossings before a time.
	PurgeExports(ctx context.Context, before time.Time) (int64, error)
}

// Retention is how long the record is kept: a year, long enough to answer
// "who took our data last spring".
const Retention = 365 * 24 * time.Hour

// Recorder records exports and finds the thresholds they cross.
type Recorder struct {
	Store Store
	Now   func() time.Time
	// mu: one export of this process is counted at a time, so that a
	// crossing is the export that took the total over and not one that
	// happened to count after it. That there is one event per crossing
	// does not rest on it: ClaimCrossing holds across processes.
	mu sync.Mutex
}

func (rc *Recorder) now() time.Time {
	if rc.Now != nil {
		return rc.Now().UTC().Truncate(time.Millisecond)
	}
	return time.Now().UTC().Truncate(time.Millisecond)
}

// Record stores an export (its Time is now when zero) and returns it with
// the thresholds it took its person over, each once per day or hour: an
// export past a threshold already crossed in the same window is no new
// crossing, and neither is one while the threshold is not exceeded. A
// threshold lowered below what a person has exported already is crossed
// by their next export.
func (rc *Recorder) Record(ctx context.Context, r Record) (Record, []Crossing, error) {
	if err := r.check(); err != nil {
		return r, nil, err
	}
	if r.Time.IsZero() {
		r.Time = rc.now()
	}
	r.Time = r.Time.UTC()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	r, err := rc.Store.AddExport(ctx, r)
	if err != nil {
		return r, nil, fmt.Errorf("record export: %w", err)
	}
	th, err := rc.Store.ExportThresholds(ctx, r.Account)
	if err != nil {
		return r, nil, fmt.Errorf("export thresholds of account %d: %w", r.Account, err)
	}
	day, hour := r.Time.Truncate(24*time.Hour), r.Time.Truncate(time.Hour)
	u, err := rc.Store.ExportUsage(ctx, r.Account, r.User, r.Staff, day, hour)
	if err != nil {
		return r, nil, fmt.Errorf("export usage of %s: %w", r.Actor(), err)
	}
	var out []Crossing
	for _, c := range []Crossing{
		{Threshold: RowsPerDay, Window: day, Limit: th.RowsPerDay, Total: u.Rows},
		{Threshold: BytesPerDay, Window: day, Limit: th.BytesPerDay, Total: u.Bytes},
		{Threshold: ExportsPerHour, Window: hour, Limit: th.ExportsPerHour, Total: u.Exports},
	} {
		if c.Total <= c.Limit {
			continue
		}
		c.Account, c.Actor, c.Export, c.Time = r.Account, r.Actor(), r.ID, r.Time
		ok, err := rc.Store.ClaimCrossing(ctx, c)
		if err != nil {
			return r, out, fmt.Errorf("export threshold %s: %w", c.Threshold, err)
		}
		if ok {
			out = append(out, c)
		}
	}
	return r, out, nil
}
