package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"fjord/internal/store"
)

// Leavers (PRODUCT §3.5). Removing a user ends their sessions, links and
// keys at once and moves their saved reports to the account's generic
// user; until the account's retention period has passed they can be
// restored, after it the purge keeps only their row's id (a pseudonym)
// and the facts without personal data.

const dayMillis = int64(24 * time.Hour / time.Millisecond)

func (a *Accounts) RemoveUser(ctx context.Context, userID int64, now time.Time) error {
	return a.inTx(ctx, func(tx *sql.Tx) error {
		var account int64
		var role string
		err := tx.QueryRowContext(ctx, a.q(`SELECT account_id, role FROM users WHERE id = ? AND removed_at IS NULL AND role <> 'generic'`), userID).Scan(&account, &role)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("remove user %d: %w", userID, store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("remove user %d: %w", userID, err)
		}
		var contact int64
		var admins, days int
		if err := tx.QueryRowContext(ctx, a.q(`SELECT COALESCE(main_contact, 0),
			(SELECT COUNT(*) FROM users WHERE account_id = ? AND role = 'admin' AND removed_at IS NULL),
			leaver_retention_days FROM accounts WHERE id = ?`), account, account).Scan(&contact, &admins, &days); err != nil {
			return fmt.Errorf("remove user %d: %w", userID, err)
		}
		if contact == userID {
			return fmt.Errorf("user %d is the account's main contact: make someone else the main contact first: %w", userID, store.ErrConflict)
		}
		if role == store.RoleAdmin && admins <= 1 {
			return fmt.Errorf("user %d is the account's last Administrator: %w", userID, store.ErrConflict)
		}
		generic, err := a.genericUser(ctx, tx, account)
		if err != nil {
			return err
		}
		ms := store.Millis(now)
		for _, st := range []stmt{
			{`UPDATE users SET removed_at = ?, purge_after = ? WHERE id = ?`, []any{ms, ms + int64(days)*dayMillis, userID}},
			{`DELETE FROM sessions WHERE user_id = ?`, []any{userID}},
			{`DELETE FROM user_links WHERE user_id = ?`, []any{userID}},
			{`UPDATE api_keys SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL`, []any{ms, userID}},
			{`UPDATE saved_reports SET former_owner = owner_id, owner_id = ? WHERE owner_id = ?`, []any{generic, userID}},
		} {
			if _, err := tx.ExecContext(ctx, a.q(st.query), st.args...); err != nil {
				return fmt.Errorf("remove user %d: %w", userID, err)
			}
		}
		return nil
	})
}

// stmt is one statement of a sequence run in a transaction.
type stmt struct {
	query string
	args  []any
}

func (a *Accounts) genericUser(ctx context.Context, tx *sql.Tx, account int64) (int64, error) {
	var id int64
	if err := tx.QueryRowContext(ctx, a.q(`SELECT id FROM users WHERE account_id = ? AND role = 'generic'`), account).Scan(&id); err != nil {
		return 0, fmt.Errorf("the generic user of account %d: %w", account, err)
	}
	return id, nil
}

func (a *Accounts) RestoreUser(ctx context.Context, userID int64, now time.Time) error {
	return a.inTx(ctx, func(tx *sql.Tx) error {
		var account, due int64
		err := tx.QueryRowContext(ctx, a.q(`SELECT account_id, purge_after FROM users
			WHERE id = ? AND removed_at IS NOT NULL AND purged_at IS NULL`), userID).Scan(&account, &due)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("restore user %d: no removed user with this id: %w", userID, store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("restore user %d: %w", userID, err)
		}
		if store.Millis(now) >= due {
			// the purge job may not have run yet: the period decides
			return fmt.Errorf("restore user %d: the retention period is over, their data is due to be purged: %w", userID, store.ErrNotFound)
		}
		generic, err := a.genericUser(ctx, tx, account)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, a.q(`UPDATE users SET removed_at = NULL, purge_after = NULL WHERE id = ?`), userID); err != nil {
			return fmt.Errorf("restore user %d: %w", userID, err)
		}
		// reports the generic user still has go back; keys stay revoked
		if _, err := tx.ExecContext(ctx, a.q(`UPDATE saved_reports SET owner_id = former_owner, former_owner = NULL WHERE former_owner = ? AND owner_id = ?`), userID, generic); err != nil {
			return fmt.Errorf("restore user %d: reports: %w", userID, err)
		}
		return nil
	})
}

func (a *Accounts) RemovedUsers(ctx context.Context, accountID int64) ([]store.User, error) {
	return list(ctx, a.DB, fmt.Sprintf("removed users of account %d", accountID), scanUser, a.q(`SELECT `+userCols+` FROM users
		WHERE account_id = ? AND removed_at IS NOT NULL AND purged_at IS NULL ORDER BY removed_at, id`), accountID)
}

func (a *Accounts) PurgeLeavers(ctx context.Context, now time.Time) (int, error) {
	rows, err := a.DB.QueryContext(ctx, a.q(`SELECT id FROM users
		WHERE removed_at IS NOT NULL AND purged_at IS NULL AND purge_after <= ?`), store.Millis(now))
	if err != nil {
		return 0, fmt.Errorf("purge leavers: %w", err)
	}
	var due []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, err
		}
		due = append(due, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	// one transaction per user; a failing one does not hold up the rest
	var n int
	var firstErr error
	for _, id := range due {
		err := a.inTx(ctx, func(tx *sql.Tx) error {
			// the address, to forget where mail to it is recorded
			var accountID int64
			var email string
			if err := tx.QueryRowContext(ctx, a.q(`SELECT account_id, COALESCE(email, '') FROM users WHERE id = ?`), id).Scan(&accountID, &email); err != nil {
				return fmt.Errorf("purge user %d: %w", id, err)
			}
			// still due: not restored since the list was read
			res, err := tx.ExecContext(ctx, a.q(`UPDATE users SET email = NULL, name = '', password_hash = NULL, totp_secret = NULL,
				totp_last_step = 0, failed_signins = 0, locked_until = NULL, purged_at = ?
				WHERE id = ? AND removed_at IS NOT NULL AND purged_at IS NULL AND purge_after <= ?`), store.Millis(now), id, store.Millis(now))
			if err != nil {
				return fmt.Errorf("purge user %d: %w", id, err)
			}
			if k, _ := res.RowsAffected(); k == 0 {
				return nil
			}
			n++
			for _, st := range []stmt{
				{`DELETE FROM grants WHERE user_id = ?`, []any{id}},
				{`DELETE FROM recovery_codes WHERE user_id = ?`, []any{id}},
				{`DELETE FROM sessions WHERE user_id = ?`, []any{id}},
				{`DELETE FROM user_links WHERE user_id = ?`, []any{id}},
				{`DELETE FROM api_keys WHERE user_id = ?`, []any{id}},
				{`UPDATE saved_reports SET former_owner = NULL WHERE former_owner = ?`, []any{id}},
				{`DELETE FROM schedule_recipients WHERE user_id = ?`, []any{id}},
				{`UPDATE mail_deliveries SET email = '', bounce_why = '' WHERE account_id = ? AND email = ?`, []any{accountID, email}},
				{`DELETE FROM mail_suppressions WHERE account_id = ? AND email = ?`, []any{accountID, email}},
			} {
				if _, err := tx.ExecContext(ctx, a.q(st.query), st.args...); err != nil {
					n--
					return fmt.Errorf("purge user %d: %w", id, err)
				}
			}
			return nil
		})
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return n, firstErr
}

func (a *Accounts) SetLeaverRetention(ctx context.Context, accountID int64, days int) error {
	if days < 1 || days > 90 {
		return fmt.Errorf("leaver retention: %d days is out of range (1 to 90)", days)
	}
	return a.one(ctx, fmt.Sprintf("leaver retention of account %d", accountID),
		`UPDATE accounts SET leaver_retention_days = ? WHERE id = ?`, days, accountID)
}
