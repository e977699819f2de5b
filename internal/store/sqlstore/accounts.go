// Package sqlstore holds the SQL that the engines share: the account store
// and the read side of the event store are the same statements on SQLite,
// DuckDB and PostgreSQL, written with ? and rebound per engine.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
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
	DB     *sql.DB
	D      Dialect
	Schema store.Schema // the migrations Open applied; zero: CheckSchema checks nothing
}

// Ping reaches the database.
func (a *Accounts) Ping(ctx context.Context) error { return a.DB.PingContext(ctx) }

// CheckSchema compares the applied migrations with the binary's.
func (a *Accounts) CheckSchema(ctx context.Context) error {
	if a.Schema.Files == nil {
		return nil
	}
	return store.CheckSchema(ctx, a.DB, a.Schema)
}

func (a *Accounts) q(s string) string { return a.D.Rebind(s) }

func (a *Accounts) AddSite(ctx context.Context, s store.Site) (store.Site, error) {
	if s.Created.IsZero() {
		s.Created = time.Now().UTC()
	}
	var account any
	if s.AccountID != 0 {
		account = s.AccountID
	}
	err := a.DB.QueryRowContext(ctx, a.q(`INSERT INTO sites (domain, timezone, account_id, created_at) VALUES (?, ?, ?, ?) RETURNING id`),
		s.Domain, s.TimeZone, account, store.Millis(s.Created)).Scan(&s.ID)
	if err != nil {
		if a.D.IsUnique != nil && a.D.IsUnique(err) {
			return store.Site{}, fmt.Errorf("site %q: %w", s.Domain, store.ErrExists)
		}
		return store.Site{}, fmt.Errorf("add site %q: %w", s.Domain, err)
	}
	return s, nil
}

const siteCols = `id, domain, timezone, COALESCE(account_id, 0), created_at, respect_dnt, ignored_ranges`

func scanSite(row interface{ Scan(...any) error }) (store.Site, error) {
	var s store.Site
	var created int64
	var ranges string
	if err := row.Scan(&s.ID, &s.Domain, &s.TimeZone, &s.AccountID, &created, &s.RespectDNT, &ranges); err != nil {
		return store.Site{}, err
	}
	s.Created = store.FromMillis(created)
	var err error
	if s.Ignored, err = store.ParseRanges(ranges); err != nil {
		return s, fmt.Errorf("site %d: stored ignored ranges: %w", s.ID, err)
	}
	return s, nil
}

func (a *Accounts) SetSiteSettings(ctx context.Context, id int64, respectDNT bool, ignored []netip.Prefix) error {
	return a.one(ctx, fmt.Sprintf("settings of site %d", id),
		`UPDATE sites SET respect_dnt = ?, ignored_ranges = ? WHERE id = ?`, respectDNT, store.FormatRanges(ignored), id)
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
	return a.sites(ctx, `SELECT `+siteCols+` FROM sites ORDER BY id`)
}

func (a *Accounts) AccountSites(ctx context.Context, accountID int64) ([]store.Site, error) {
	return a.sites(ctx, a.q(`SELECT `+siteCols+` FROM sites WHERE account_id = ? ORDER BY domain`), accountID)
}

func (a *Accounts) sites(ctx context.Context, query string, args ...any) ([]store.Site, error) {
	return list(ctx, a.DB, "list sites", scanSite, query, args...)
}

// list runs a query (already rebound) and scans each row.
func list[T any](ctx context.Context, db *sql.DB, what string, scan func(interface{ Scan(...any) error }) (T, error), query string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, v)
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

func (a *Accounts) SavedReportByID(ctx context.Context, id int64) (store.SavedReport, error) {
	r, err := scanReport(a.DB.QueryRowContext(ctx, a.q(`SELECT `+reportCols+` FROM saved_reports WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("saved report %d: %w", id, store.ErrNotFound)
	}
	return r, err
}

func (a *Accounts) SavedReports(ctx context.Context, siteID int64) ([]store.SavedReport, error) {
	return list(ctx, a.DB, fmt.Sprintf("saved reports of site %d", siteID), scanReport,
		a.q(`SELECT `+reportCols+` FROM saved_reports WHERE site_id = ? ORDER BY name`), siteID)
}

func (a *Accounts) DeleteSavedReport(ctx context.Context, siteID, id int64) error {
	return a.deleteOne(ctx, "saved_reports", siteID, id)
}

// inTx runs fn in a transaction, committing when it returns nil.
func (a *Accounts) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := a.DB.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

func (a *Accounts) CreateAccount(ctx context.Context, acc store.Account, admin store.User) (store.Account, store.User, error) {
	now := time.Now().UTC()
	if acc.LeaverRetentionDays == 0 {
		acc.LeaverRetentionDays = 90
	}
	acc.Created, admin.Created, admin.Role = now, now, store.RoleAdmin
	err := a.inTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, a.q(`INSERT INTO accounts (name, require_second_factor, leaver_retention_days, created_at)
			VALUES (?, ?, ?, ?) RETURNING id`), acc.Name, acc.RequireSecondFactor, acc.LeaverRetentionDays, store.Millis(now)).Scan(&acc.ID)
		if err != nil {
			return fmt.Errorf("create account %q: %w", acc.Name, err)
		}
		admin.AccountID = acc.ID
		if admin, err = a.addUser(ctx, tx, admin); err != nil {
			return err
		}
		generic := store.User{AccountID: acc.ID, Name: "Generic user", Role: store.RoleGeneric, Created: now}
		if _, err := a.addUser(ctx, tx, generic); err != nil {
			return err
		}
		acc.MainContact = admin.ID
		_, err = tx.ExecContext(ctx, a.q(`UPDATE accounts SET main_contact = ? WHERE id = ?`), admin.ID, acc.ID)
		return err
	})
	if err != nil {
		return store.Account{}, store.User{}, err
	}
	return acc, admin, nil
}

const accountCols = `id, name, COALESCE(main_contact, 0), require_second_factor, leaver_retention_days, created_at`

func scanAccount(row interface{ Scan(...any) error }) (store.Account, error) {
	var acc store.Account
	var created int64
	if err := row.Scan(&acc.ID, &acc.Name, &acc.MainContact, &acc.RequireSecondFactor, &acc.LeaverRetentionDays, &created); err != nil {
		return store.Account{}, err
	}
	acc.Created = store.FromMillis(created)
	return acc, nil
}

func (a *Accounts) Accounts(ctx context.Context) ([]store.Account, error) {
	rows, err := a.DB.QueryContext(ctx, `SELECT `+accountCols+` FROM accounts ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	defer rows.Close()
	var out []store.Account
	for rows.Next() {
		acc, err := scanAccount(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, acc)
	}
	return out, rows.Err()
}

func (a *Accounts) Account(ctx context.Context, id int64) (store.Account, error) {
	acc, err := scanAccount(a.DB.QueryRowContext(ctx, a.q(`SELECT `+accountCols+` FROM accounts WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Account{}, fmt.Errorf("account %d: %w", id, store.ErrNotFound)
	}
	return acc, err
}

func (a *Accounts) AddUser(ctx context.Context, u store.User) (store.User, error) {
	if u.Created.IsZero() {
		u.Created = time.Now().UTC()
	}
	return a.addUser(ctx, a.DB, u)
}

func (a *Accounts) addUser(ctx context.Context, db interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}, u store.User) (store.User, error) {
	u.Email = store.NormalizeEmail(u.Email)
	if u.Role != store.RoleGeneric && !strings.Contains(u.Email, "@") {
		return store.User{}, fmt.Errorf("a user needs an e-mail address (name@domain)")
	}
	var email, hash any
	if u.Email != "" {
		email = u.Email
	}
	if u.PasswordHash != "" {
		hash = u.PasswordHash
	}
	err := db.QueryRowContext(ctx, a.q(`INSERT INTO users (account_id, email, name, role, password_hash, created_at)
		VALUES (?, ?, ?, ?, ?, ?) RETURNING id`), u.AccountID, email, u.Name, u.Role, hash, store.Millis(u.Created)).Scan(&u.ID)
	if err != nil {
		// the address stays out of the message: it is personal data
		if a.D.IsUnique != nil && a.D.IsUnique(err) {
			return store.User{}, fmt.Errorf("a user with that e-mail address: %w", store.ErrExists)
		}
		return store.User{}, fmt.Errorf("add user: %w", err)
	}
	return u, nil
}

const userCols = `id, account_id, COALESCE(email, ''), name, role, COALESCE(password_hash, ''), created_at, COALESCE(locked_until, 0), COALESCE(totp_secret, ''), totp_last_step, COALESCE(removed_at, 0), COALESCE(purge_after, 0)`

func scanUser(row interface{ Scan(...any) error }) (store.User, error) {
	var u store.User
	var created, locked, removed, purge int64
	if err := row.Scan(&u.ID, &u.AccountID, &u.Email, &u.Name, &u.Role, &u.PasswordHash, &created, &locked, &u.TOTPSecret, &u.TOTPLastStep, &removed, &purge); err != nil {
		return store.User{}, err
	}
	u.Created = store.FromMillis(created)
	if locked != 0 {
		u.LockedUntil = store.FromMillis(locked)
	}
	if removed != 0 {
		u.Removed, u.PurgeAfter = store.FromMillis(removed), store.FromMillis(purge)
	}
	return u, nil
}

func (a *Accounts) Users(ctx context.Context, accountID int64) ([]store.User, error) {
	return list(ctx, a.DB, fmt.Sprintf("users of account %d", accountID), scanUser, a.q(`SELECT `+userCols+` FROM users
		WHERE account_id = ? AND role <> 'generic' AND removed_at IS NULL ORDER BY id`), accountID)
}

func (a *Accounts) UserByEmail(ctx context.Context, email string) (store.User, error) {
	u, err := scanUser(a.DB.QueryRowContext(ctx, a.q(`SELECT `+userCols+` FROM users WHERE email = ? AND removed_at IS NULL`), store.NormalizeEmail(email)))
	if errors.Is(err, sql.ErrNoRows) {
		return store.User{}, fmt.Errorf("user: %w", store.ErrNotFound)
	}
	return u, err
}

func (a *Accounts) Grant(ctx context.Context, userID, siteID, reportID int64) error {
	if (siteID == 0) == (reportID == 0) {
		return fmt.Errorf("a grant is of a site or of a report, not both or neither")
	}
	var site, report any
	if siteID != 0 {
		site = siteID
	} else {
		report = reportID
	}
	// only to a User, and only what is in the user's account
	res, err := a.DB.ExecContext(ctx, a.q(`INSERT INTO grants (user_id, site_id, report_id, created_at)
		SELECT u.id, CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT) FROM users u JOIN sites s ON s.account_id = u.account_id
		WHERE u.id = ? AND u.role = 'user' AND u.removed_at IS NULL
		AND s.id = COALESCE(CAST(? AS BIGINT), (SELECT site_id FROM saved_reports WHERE id = ?))`),
		site, report, time.Now().UnixMilli(), userID, site, report)
	if err != nil && a.D.IsUnique != nil && a.D.IsUnique(err) {
		return nil // granted already
	}
	if err != nil {
		return fmt.Errorf("grant to user %d: %w", userID, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("grant to user %d: no such User, or the site or report is not in their account: %w", userID, store.ErrNotFound)
	}
	return nil
}

func (a *Accounts) Grants(ctx context.Context, userID int64) (store.Grants, error) {
	var g store.Grants
	rows, err := a.DB.QueryContext(ctx, a.q(`SELECT COALESCE(site_id, 0), COALESCE(report_id, 0) FROM grants WHERE user_id = ? ORDER BY site_id, report_id`), userID)
	if err != nil {
		return g, fmt.Errorf("grants of user %d: %w", userID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var site, report int64
		if err := rows.Scan(&site, &report); err != nil {
			return g, err
		}
		if site != 0 {
			g.Sites = append(g.Sites, site)
		} else {
			g.Reports = append(g.Reports, report)
		}
	}
	return g, rows.Err()
}
