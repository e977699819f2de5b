package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"fjord/internal/store"
)

// Sign-in: users' passwords and lock-outs, sessions and one-time links
// (PRODUCT §3.4). Tokens are never stored, only their hashes; a removed
// user has no session and no link.

func (a *Accounts) UserByID(ctx context.Context, id int64) (store.User, error) {
	u, err := scanUser(a.DB.QueryRowContext(ctx, a.q(`SELECT `+userCols+` FROM users WHERE id = ? AND removed_at IS NULL`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.User{}, fmt.Errorf("user %d: %w", id, store.ErrNotFound)
	}
	return u, err
}

func (a *Accounts) SetPassword(ctx context.Context, userID int64, hash string) error {
	return a.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, a.q(`UPDATE users SET password_hash = ? WHERE id = ? AND role <> 'generic' AND removed_at IS NULL`), hash, userID)
		if err != nil {
			return fmt.Errorf("set password of user %d: %w", userID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("set password of user %d: %w", userID, store.ErrNotFound)
		}
		// a new password spends every link that could set another one
		_, err = tx.ExecContext(ctx, a.q(`UPDATE user_links SET used_at = ? WHERE user_id = ? AND used_at IS NULL`), store.Millis(time.Now()), userID)
		return err
	})
}

// one runs a statement that must change exactly one row (else ErrNotFound).
func (a *Accounts) one(ctx context.Context, what, query string, args ...any) error {
	res, err := a.DB.ExecContext(ctx, a.q(query), args...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return nil
}

func (a *Accounts) SigninAttempt(ctx context.Context, userID int64, limit int, now time.Time) (bool, error) {
	// one statement: concurrent attempts are counted one by one
	res, err := a.DB.ExecContext(ctx, a.q(`UPDATE users SET failed_signins = failed_signins + 1
		WHERE id = ? AND failed_signins < ? AND (locked_until IS NULL OR locked_until <= ?)`), userID, limit, store.Millis(now))
	if err != nil {
		return false, fmt.Errorf("sign-in attempt of user %d: %w", userID, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (a *Accounts) SigninFailed(ctx context.Context, userID int64, limit int, lockFor time.Duration, now time.Time) (time.Time, error) {
	until := now.Add(lockFor).UTC().Truncate(time.Millisecond)
	// the attempt was counted by SigninAttempt; lock once limit are
	res, err := a.DB.ExecContext(ctx, a.q(`UPDATE users SET failed_signins = 0, locked_until = ? WHERE id = ? AND failed_signins >= ?`),
		store.Millis(until), userID, limit)
	if err != nil {
		return time.Time{}, fmt.Errorf("failed sign-in of user %d: %w", userID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return time.Time{}, err
	}
	return until, nil
}

func (a *Accounts) SigninSucceeded(ctx context.Context, userID int64) error {
	_, err := a.DB.ExecContext(ctx, a.q(`UPDATE users SET failed_signins = 0, locked_until = NULL WHERE id = ?`), userID)
	return err
}

func (a *Accounts) SigninRefund(ctx context.Context, userID int64) error {
	_, err := a.DB.ExecContext(ctx, a.q(`UPDATE users SET failed_signins = failed_signins - 1 WHERE id = ? AND failed_signins > 0`), userID)
	return err
}

func (a *Accounts) CreateSession(ctx context.Context, s store.Session) error {
	_, err := a.DB.ExecContext(ctx, a.q(`INSERT INTO sessions (token_hash, user_id, csrf, created_at, seen_at, pending) VALUES (?, ?, ?, ?, ?, ?)`),
		s.TokenHash, s.UserID, s.CSRF, store.Millis(s.Created), store.Millis(s.Seen), s.Pending)
	if err != nil {
		return fmt.Errorf("create session of user %d: %w", s.UserID, err)
	}
	return nil
}

func (a *Accounts) Session(ctx context.Context, tokenHash string) (store.Session, error) {
	s := store.Session{TokenHash: tokenHash}
	var created, seen int64
	err := a.DB.QueryRowContext(ctx, a.q(`SELECT s.user_id, s.csrf, s.created_at, s.seen_at, s.pending FROM sessions s
		JOIN users u ON u.id = s.user_id AND u.removed_at IS NULL WHERE s.token_hash = ?`), tokenHash).Scan(&s.UserID, &s.CSRF, &created, &seen, &s.Pending)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Session{}, fmt.Errorf("session: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Session{}, fmt.Errorf("session: %w", err)
	}
	s.Created, s.Seen = store.FromMillis(created), store.FromMillis(seen)
	return s, nil
}

func (a *Accounts) TouchSession(ctx context.Context, tokenHash string, seen time.Time) error {
	return a.one(ctx, "touch session", `UPDATE sessions SET seen_at = ? WHERE token_hash = ?`, store.Millis(seen), tokenHash)
}

func (a *Accounts) DeleteSession(ctx context.Context, tokenHash string) error {
	_, err := a.DB.ExecContext(ctx, a.q(`DELETE FROM sessions WHERE token_hash = ?`), tokenHash)
	return err
}

func (a *Accounts) DeleteSessions(ctx context.Context, userID int64) error {
	_, err := a.DB.ExecContext(ctx, a.q(`DELETE FROM sessions WHERE user_id = ?`), userID)
	return err
}

func (a *Accounts) CreateLink(ctx context.Context, l store.Link) error {
	_, err := a.DB.ExecContext(ctx, a.q(`INSERT INTO user_links (token_hash, user_id, purpose, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`),
		l.TokenHash, l.UserID, l.Purpose, store.Millis(l.Created), store.Millis(l.Expires))
	if err != nil {
		return fmt.Errorf("create %s link of user %d: %w", l.Purpose, l.UserID, err)
	}
	return nil
}

func (a *Accounts) UseLink(ctx context.Context, tokenHash, purpose string, now time.Time) (int64, error) {
	var user int64
	// one statement: two uses at once cannot both succeed
	err := a.DB.QueryRowContext(ctx, a.q(`UPDATE user_links SET used_at = ?
		WHERE token_hash = ? AND purpose = ? AND used_at IS NULL AND expires_at > ?
		AND user_id IN (SELECT id FROM users WHERE removed_at IS NULL) RETURNING user_id`),
		store.Millis(now), tokenHash, purpose, store.Millis(now)).Scan(&user)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("%s link: unknown, used or expired: %w", purpose, store.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("%s link: %w", purpose, err)
	}
	return user, nil
}

func (a *Accounts) PurgeSessions(ctx context.Context, seenBefore, createdBefore, pendingBefore, now time.Time) (int64, error) {
	var n int64
	err := a.inTx(ctx, func(tx *sql.Tx) error {
		for _, st := range []stmt{
			{`DELETE FROM sessions WHERE seen_at < ? OR created_at < ? OR (pending = ? AND created_at < ?)`,
				[]any{store.Millis(seenBefore), store.Millis(createdBefore), true, store.Millis(pendingBefore)}},
			{`DELETE FROM user_links WHERE expires_at < ?`, []any{store.Millis(now)}},
		} {
			res, err := tx.ExecContext(ctx, a.q(st.query), st.args...)
			if err != nil {
				return fmt.Errorf("purge sessions and links: %w", err)
			}
			k, _ := res.RowsAffected()
			n += k
		}
		return nil
	})
	return n, err
}
