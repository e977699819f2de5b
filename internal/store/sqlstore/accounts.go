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
