// Package sqlstore holds the SQL that the engines share: the account store
// and the read side of the event store are the same statements on SQLite,
// DuckDB and PostgreSQL, written with ? and rebound per engine.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"fjord/internal/store"
)

// Dialect is what differs between the engines for shared SQL.
type Dialect struct {
	Name string
	// Dollar rebinds ? to $n (PostgreSQL, DuckDB).
	Dollar bool
	// IsUnique reports whether err is a unique-constraint violation.
	IsUnique func(error) bool
}

// Rebind turns ? placeholders into the dialect's form.
func (d Dialect) Rebind(q string) string {
	if !d.Dollar {
		return q
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// Accounts implements store.AccountStore on database/sql.
type Accounts struct {
	DB *sql.DB
	D  Dialect
}

func (a *Accounts) q(s string) string { return a.D.Rebind(s) }

func (a *Accounts) AddSite(ctx context.Context, s store.Site) (store.Site, error) {
	if s.Created.IsZero() {
		s.Created = time.Now().UTC()
	}
	err := a.DB.QueryRowContext(ctx, a.q(`INSERT INTO sites (domain, timezone, created_at) VALUES (?, ?, ?) RETURNING id`),
		s.Domain, s.TimeZone, store.Millis(s.Created)).Scan(&s.ID)
	if err != nil {
		if a.D.IsUnique != nil && a.D.IsUnique(err) {
			return store.Site{}, fmt.Errorf("site %q: %w", s.Domain, store.ErrExists)
		}
		return store.Site{}, fmt.Errorf("add site %q: %w", s.Domain, err)
	}
	return s, nil
}

const siteCols = `id, domain, timezone, created_at`

func scanSite(row interface{ Scan(...any) error }) (store.Site, error) {
	var s store.Site
	var created int64
	if err := row.Scan(&s.ID, &s.Domain, &s.TimeZone, &created); err != nil {
		return store.Site{}, err
	}
	s.Created = store.FromMillis(created)
	return s, nil
}

func (a *Accounts) SiteByDomain(ctx context.Context, domain string) (store.Site, error) {
	s, err := scanSite(a.DB.QueryRowContext(ctx, a.q(`SELECT `+siteCols+` FROM sites WHERE domain = ?`), domain))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Site{}, fmt.Errorf("site %q: %w", domain, store.ErrNotFound)
	}
	if err != nil {
		return store.Site{}, fmt.Errorf("site %q: %w", domain, err)
	}
	return s, nil
}

func (a *Accounts) SiteByID(ctx context.Context, id int64) (store.Site, error) {
	s, err := scanSite(a.DB.QueryRowContext(ctx, a.q(`SELECT `+siteCols+` FROM sites WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Site{}, fmt.Errorf("site %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Site{}, fmt.Errorf("site %d: %w", id, err)
	}
	return s, nil
}

func (a *Accounts) Sites(ctx context.Context) ([]store.Site, error) {
	rows, err := a.DB.QueryContext(ctx, `SELECT `+siteCols+` FROM sites ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list sites: %w", err)
	}
	defer rows.Close()
	var out []store.Site
	for rows.Next() {
		s, err := scanSite(rows)
		if err != nil {
			return nil, fmt.Errorf("list sites: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func (a *Accounts) Close() error { return a.DB.Close() }

func (a *Accounts) AddGoal(ctx context.Context, g store.Goal) (store.Goal, error) {
	err := a.DB.QueryRowContext(ctx, a.q(`INSERT INTO goals (site_id, kind, value, created_at) VALUES (?, ?, ?, ?) RETURNING id`),
		g.SiteID, g.Kind, g.Value, time.Now().UnixMilli()).Scan(&g.ID)
	if err != nil {
		if a.D.IsUnique != nil && a.D.IsUnique(err) {
			return g, fmt.Errorf("goal %q: %w", g.Name(), store.ErrExists)
		}
		return g, fmt.Errorf("add goal %q: %w", g.Name(), err)
	}
	return g, nil
}

func (a *Accounts) Goals(ctx context.Context, siteID int64) ([]store.Goal, error) {
	rows, err := a.DB.QueryContext(ctx, a.q(`SELECT id, site_id, kind, value FROM goals WHERE site_id = ? ORDER BY id`), siteID)
	if err != nil {
		return nil, fmt.Errorf("goals of site %d: %w", siteID, err)
	}
	defer rows.Close()
	var out []store.Goal
	for rows.Next() {
		var g store.Goal
		if err := rows.Scan(&g.ID, &g.SiteID, &g.Kind, &g.Value); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

func (a *Accounts) DeleteGoal(ctx context.Context, siteID, id int64) error {
	return a.deleteOne(ctx, "goals", siteID, id)
}

func (a *Accounts) deleteOne(ctx context.Context, table string, siteID, id int64) error {
	res, err := a.DB.ExecContext(ctx, a.q(`DELETE FROM `+table+` WHERE site_id = ? AND id = ?`), siteID, id)
	if err != nil {
		return fmt.Errorf("delete from %s: %w", table, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%s %d: %w", table, id, store.ErrNotFound)
	}
	return nil
}

func (a *Accounts) SaveReport(ctx context.Context, r store.SavedReport) (store.SavedReport, error) {
	r.Created = time.Now().UTC().Truncate(time.Millisecond)
	err := a.DB.QueryRowContext(ctx, a.q(`INSERT INTO saved_reports (site_id, owner_id, name, definition, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id`),
		r.SiteID, r.OwnerID, r.Name, r.Definition, store.Millis(r.Created)).Scan(&r.ID)
	if err != nil {
		if a.D.IsUnique != nil && a.D.IsUnique(err) {
			return r, fmt.Errorf("saved report %q: %w", r.Name, store.ErrExists)
		}
		return r, fmt.Errorf("save report %q: %w", r.Name, err)
	}
	return r, nil
}

const reportCols = `id, site_id, owner_id, name, definition, created_at`

func scanReport(row interface{ Scan(...any) error }) (store.SavedReport, error) {
	var r store.SavedReport
	var owner sql.NullInt64
	var created int64
	if err := row.Scan(&r.ID, &r.SiteID, &owner, &r.Name, &r.Definition, &created); err != nil {
		return r, err
	}
	if owner.Valid {
		r.OwnerID = &owner.Int64
	}
	r.Created = store.FromMillis(created)
	return r, nil
}

func (a *Accounts) SavedReport(ctx context.Context, siteID, id int64) (store.SavedReport, error) {
	r, err := scanReport(a.DB.QueryRowContext(ctx, a.q(`SELECT `+reportCols+` FROM saved_reports WHERE site_id = ? AND id = ?`), siteID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("saved report %d: %w", id, store.ErrNotFound)
	}
	return r, err
}

func (a *Accounts) SavedReports(ctx context.Context, siteID int64) ([]store.SavedReport, error) {
	rows, err := a.DB.QueryContext(ctx, a.q(`SELECT `+reportCols+` FROM saved_reports WHERE site_id = ? ORDER BY name`), siteID)
	if err != nil {
		return nil, fmt.Errorf("saved reports of site %d: %w", siteID, err)
	}
	defer rows.Close()
	var out []store.SavedReport
	for rows.Next() {
		r, err := scanReport(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (a *Accounts) DeleteSavedReport(ctx context.Context, siteID, id int64) error {
	return a.deleteOne(ctx, "saved_reports", siteID, id)
}
