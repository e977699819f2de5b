package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"fjord/internal/staff"
	"fjord/internal/store"
)

// Staff, their console sessions and set-up links, and access grants
// (staff.Store; PRODUCT §7).

const staffCols = `id, email, name, role, password_hash, totp_secret, totp_last_step, trained_at, reminded_for, created_at,
	COALESCE(removed_at, 0), COALESCE(locked_until, 0)`

func scanStaff(row interface{ Scan(...any) error }) (staff.Member, error) {
	var m staff.Member
	var trained, reminded, created, removed, locked int64
	err := row.Scan(&m.ID, &m.Email, &m.Name, &m.Role, &m.PasswordHash, &m.TOTPSecret, &m.TOTPLastStep, &trained, &reminded, &created, &removed, &locked)
	m.TrainedAt, m.Created = store.FromMillis(trained), store.FromMillis(created)
	m.RemindedFor = optMillis(reminded)
	m.Removed, m.LockedUntil = optMillis(removed), optMillis(locked)
	return m, err
}

// optMillis reads a time stored as milliseconds where 0 (or NULL) is none.
func optMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return store.FromMillis(ms)
}

func (a *Accounts) AddStaff(ctx context.Context, m staff.Member) (staff.Member, error) {
	m.Email = store.NormalizeEmail(m.Email)
	err := a.DB.QueryRowContext(ctx, a.q(`INSERT INTO staff (email, name, role, trained_at, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id`),
		m.Email, m.Name, string(m.Role), store.Millis(m.TrainedAt), store.Millis(m.Created)).Scan(&m.ID)
	if err != nil && a.D.IsUnique != nil && a.D.IsUnique(err) {
		return m, fmt.Errorf("a staff member with this e-mail address: %w", store.ErrExists)
	}
	if err != nil {
		return m, fmt.Errorf("add staff member: %w", err)
	}
	return m, nil
}

func (a *Accounts) Staff(ctx context.Context, id int64) (staff.Member, error) {
	m, err := scanStaff(a.DB.QueryRowContext(ctx, a.q(`SELECT `+staffCols+` FROM staff WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return m, fmt.Errorf("staff member %d: %w", id, store.ErrNotFound)
	}
	return m, err
}

func (a *Accounts) StaffByEmail(ctx context.Context, email string) (staff.Member, error) {
	m, err := scanStaff(a.DB.QueryRowContext(ctx, a.q(`SELECT `+staffCols+` FROM staff WHERE email = ? AND removed_at IS NULL`), store.NormalizeEmail(email)))
	if errors.Is(err, sql.ErrNoRows) {
		return m, fmt.Errorf("staff member: %w", store.ErrNotFound)
	}
	return m, err
}

func (a *Accounts) StaffList(ctx context.Context) ([]staff.Member, error) {
	return list(ctx, a.DB, "staff", scanStaff, `SELECT `+staffCols+` FROM staff ORDER BY id`)
}

func (a *Accounts) RemoveStaff(ctx context.Context, id int64, now time.Time) error {
	return a.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, a.q(`UPDATE staff SET removed_at = ? WHERE id = ? AND removed_at IS NULL`), store.Millis(now), id)
		if err != nil {
			return fmt.Errorf("remove staff member %d: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("staff member %d: %w", id, store.ErrNotFound)
		}
		at := store.Millis(now)
		for _, st := range []struct {
			sql  string
			args []any
		}{
			{`DELETE FROM staff_sessions WHERE staff_id = ?`, []any{id}},
			{`UPDATE staff_links SET used_at = ? WHERE staff_id = ? AND used_at IS NULL`, []any{at, id}},
			{`UPDATE access_grants SET revoked_at = ?, revoked_by = staff_id WHERE staff_id = ? AND revoked_at IS NULL`, []any{at, id}},
		} {
			if _, err := tx.ExecContext(ctx, a.q(st.sql), st.args...); err != nil {
				return fmt.Errorf("remove staff member %d: %w", id, err)
			}
		}
		return nil
	})
}

func (a *Accounts) SetStaffTrained(ctx context.Context, id int64, at time.Time) error {
	return a.one(ctx, fmt.Sprintf("training of staff member %d", id),
		`UPDATE staff SET trained_at = ? WHERE id = ? AND removed_at IS NULL`, store.Millis(at), id)
}

func (a *Accounts) SetStaffReminded(ctx context.Context, id int64, trainedAt time.Time) error {
	return a.one(ctx, fmt.Sprintf("reminder of staff member %d", id),
		`UPDATE staff SET reminded_for = ? WHERE id = ?`, store.Millis(trainedAt), id)
}

func (a *Accounts) SetStaffSignin(ctx context.Context, id int64, hash, secret string, step int64) error {
	// a new password and key end every session made with the old ones
	return a.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, a.q(`UPDATE staff SET password_hash = ?, totp_secret = ?, totp_last_step = ?, failed_signins = 0, locked_until = NULL
			WHERE id = ? AND removed_at IS NULL`), hash, secret, step, id)
		if err != nil {
			return fmt.Errorf("sign-in of staff member %d: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("staff member %d: %w", id, store.ErrNotFound)
		}
		_, err = tx.ExecContext(ctx, a.q(`DELETE FROM staff_sessions WHERE staff_id = ?`), id)
		return err
	})
}

func (a *Accounts) UseStaffStep(ctx context.Context, id int64, step int64) (bool, error) {
	res, err := a.DB.ExecContext(ctx, a.q(`UPDATE staff SET totp_last_step = ? WHERE id = ? AND totp_last_step < ?`), step, id, step)
	if err != nil {
		return false, fmt.Errorf("code of staff member %d: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (a *Accounts) StaffAttempt(ctx context.Context, id int64, limit int, now time.Time) (bool, error) {
	res, err := a.DB.ExecContext(ctx, a.q(`UPDATE staff SET failed_signins = failed_signins + 1
		WHERE id = ? AND failed_signins < ? AND (locked_until IS NULL OR locked_until <= ?)`), id, limit, store.Millis(now))
	if err != nil {
		return false, fmt.Errorf("sign-in attempt of staff member %d: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (a *Accounts) StaffFailed(ctx context.Context, id int64, limit int, lockFor time.Duration, now time.Time) (time.Time, error) {
	until := now.Add(lockFor).UTC().Truncate(time.Millisecond)
	res, err := a.DB.ExecContext(ctx, a.q(`UPDATE staff SET failed_signins = 0, locked_until = ? WHERE id = ? AND failed_signins >= ?`),
		store.Millis(until), id, limit)
	if err != nil {
		return time.Time{}, fmt.Errorf("failed sign-in of staff member %d: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return time.Time{}, err
	}
	return until, nil
}

func (a *Accounts) StaffSucceeded(ctx context.Context, id int64) error {
	_, err := a.DB.ExecContext(ctx, a.q(`UPDATE staff SET failed_signins = 0, locked_until = NULL WHERE id = ?`), id)
	return err
}

func (a *Accounts) CreateStaffLink(ctx context.Context, tokenHash string, id int64, expires time.Time) error {
	_, err := a.DB.ExecContext(ctx, a.q(`INSERT INTO staff_links (token_hash, staff_id, created_at, expires_at) VALUES (?, ?, ?, ?)`),
		tokenHash, id, store.Millis(time.Now()), store.Millis(expires))
	if err != nil {
		return fmt.Errorf("set-up link of staff member %d: %w", id, err)
	}
	return nil
}

func (a *Accounts) StaffLinkMember(ctx context.Context, tokenHash string, now time.Time) (int64, error) {
	var id int64
	err := a.DB.QueryRowContext(ctx, a.q(`SELECT l.staff_id FROM staff_links l JOIN staff s ON s.id = l.staff_id
		WHERE l.token_hash = ? AND l.used_at IS NULL AND l.expires_at > ? AND s.removed_at IS NULL`), tokenHash, store.Millis(now)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("set-up link: %w", store.ErrNotFound)
	}
	return id, err
}

func (a *Accounts) UseStaffLink(ctx context.Context, tokenHash string, now time.Time) (int64, error) {
	var id int64
	err := a.DB.QueryRowContext(ctx, a.q(`UPDATE staff_links SET used_at = ?
		WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?
		AND staff_id IN (SELECT id FROM staff WHERE removed_at IS NULL) RETURNING staff_id`),
		store.Millis(now), tokenHash, store.Millis(now)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("set-up link: %w", store.ErrNotFound)
	}
	return id, err
}

func (a *Accounts) CreateStaffSession(ctx context.Context, s staff.Session) error {
	_, err := a.DB.ExecContext(ctx, a.q(`INSERT INTO staff_sessions (token_hash, staff_id, csrf, created_at, seen_at) VALUES (?, ?, ?, ?, ?)`),
		s.TokenHash, s.Staff, s.CSRF, store.Millis(s.Created), store.Millis(s.Seen))
	if err != nil {
		return fmt.Errorf("staff session: %w", err)
	}
	return nil
}

func (a *Accounts) StaffSession(ctx context.Context, tokenHash string) (staff.Session, error) {
	var s staff.Session
	var created, seen int64
	err := a.DB.QueryRowContext(ctx, a.q(`SELECT token_hash, staff_id, csrf, created_at, seen_at, acting_grant FROM staff_sessions WHERE token_hash = ?`),
		tokenHash).Scan(&s.TokenHash, &s.Staff, &s.CSRF, &created, &seen, &s.Acting)
	if errors.Is(err, sql.ErrNoRows) {
		return s, fmt.Errorf("staff session: %w", store.ErrNotFound)
	}
	s.Created, s.Seen = store.FromMillis(created), store.FromMillis(seen)
	return s, err
}

func (a *Accounts) TouchStaffSession(ctx context.Context, tokenHash string, seen time.Time) error {
	_, err := a.DB.ExecContext(ctx, a.q(`UPDATE staff_sessions SET seen_at = ? WHERE token_hash = ?`), store.Millis(seen), tokenHash)
	return err
}

func (a *Accounts) SetActing(ctx context.Context, tokenHash string, grant int64) error {
	return a.one(ctx, "staff session", `UPDATE staff_sessions SET acting_grant = ? WHERE token_hash = ?`, grant, tokenHash)
}

func (a *Accounts) DeleteStaffSession(ctx context.Context, tokenHash string) error {
	_, err := a.DB.ExecContext(ctx, a.q(`DELETE FROM staff_sessions WHERE token_hash = ?`), tokenHash)
	return err
}

func (a *Accounts) PurgeStaffSessions(ctx context.Context, seenBefore, createdBefore, now time.Time) (int64, error) {
	var total int64
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`DELETE FROM staff_sessions WHERE seen_at < ? OR created_at < ?`, []any{store.Millis(seenBefore), store.Millis(createdBefore)}},
		{`DELETE FROM staff_links WHERE expires_at < ? OR used_at IS NOT NULL`, []any{store.Millis(now)}},
	} {
		res, err := a.DB.ExecContext(ctx, a.q(q.sql), q.args...)
		if err != nil {
			return total, fmt.Errorf("purge staff sessions: %w", err)
		}
		n, _ := res.RowsAffected()
		total += n
	}
	return total, nil
}

const grantCols = `id, staff_id, account_id, reason, scope, duration_ms, requested_at,
	COALESCE(approved_by, 0), COALESCE(approved_at, 0), COALESCE(expires_at, 0), COALESCE(revoked_by, 0), COALESCE(revoked_at, 0)`

func scanGrant(row interface{ Scan(...any) error }) (staff.Grant, error) {
	var g staff.Grant
	var dur, requested, approved, expires, revoked int64
	err := row.Scan(&g.ID, &g.Staff, &g.Account, &g.Reason, &g.Scope, &dur, &requested, &g.ApprovedBy, &approved, &expires, &g.RevokedBy, &revoked)
	g.Duration, g.Requested = time.Duration(dur)*time.Millisecond, store.FromMillis(requested)
	g.Approved, g.Expires, g.Revoked = optMillis(approved), optMillis(expires), optMillis(revoked)
	return g, err
}

func (a *Accounts) RequestGrant(ctx context.Context, g staff.Grant) (staff.Grant, error) {
	err := a.DB.QueryRowContext(ctx, a.q(`INSERT INTO access_grants (staff_id, account_id, reason, scope, duration_ms, requested_at)
		SELECT ?, id, ?, ?, ?, ? FROM accounts WHERE id = ? RETURNING id`),
		g.Staff, g.Reason, string(g.Scope), g.Duration.Milliseconds(), store.Millis(g.Requested), g.Account).Scan(&g.ID)
	if errors.Is(err, sql.ErrNoRows) {
		return g, fmt.Errorf("account %d: %w", g.Account, store.ErrNotFound)
	}
	if err != nil {
		return g, fmt.Errorf("request access grant: %w", err)
	}
	return g, nil
}

func (a *Accounts) StaffGrant(ctx context.Context, id int64) (staff.Grant, error) {
	g, err := scanGrant(a.DB.QueryRowContext(ctx, a.q(`SELECT `+grantCols+` FROM access_grants WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return g, fmt.Errorf("access grant %d: %w", id, store.ErrNotFound)
	}
	return g, err
}

func (a *Accounts) StaffGrants(ctx context.Context, staffID int64, since time.Time) ([]staff.Grant, error) {
	if staffID != 0 {
		return list(ctx, a.DB, "access grants", scanGrant, a.q(`SELECT `+grantCols+` FROM access_grants WHERE staff_id = ? ORDER BY id DESC`), staffID)
	}
	return list(ctx, a.DB, "access grants", scanGrant, a.q(`SELECT `+grantCols+` FROM access_grants WHERE requested_at >= ? ORDER BY id DESC`), store.Millis(since))
}

func (a *Accounts) ApproveGrant(ctx context.Context, id, by int64, requestedAfter, now time.Time) (staff.Grant, error) {
	// one statement: two approvers at once approve it once
	res, err := a.DB.ExecContext(ctx, a.q(`UPDATE access_grants SET approved_by = ?, approved_at = ?, expires_at = ? + duration_ms
		WHERE id = ? AND staff_id <> ? AND approved_at IS NULL AND revoked_at IS NULL AND requested_at > ?`),
		by, store.Millis(now), store.Millis(now), id, by, store.Millis(requestedAfter))
	if err != nil {
		return staff.Grant{}, fmt.Errorf("approve access grant %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return staff.Grant{}, fmt.Errorf("access grant %d: %w", id, store.ErrConflict)
	}
	return a.StaffGrant(ctx, id)
}

func (a *Accounts) RevokeGrant(ctx context.Context, id, by int64, now time.Time) error {
	return a.one(ctx, fmt.Sprintf("access grant %d", id),
		`UPDATE access_grants SET revoked_by = ?, revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, by, store.Millis(now), id)
}

var _ staff.Store = (*Accounts)(nil)
