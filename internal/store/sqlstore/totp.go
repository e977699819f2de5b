package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"fjord/internal/store"
)

// The second factor: a user's TOTP secret and recovery codes (hashes only).

func (a *Accounts) SetTOTP(ctx context.Context, userID int64, secret string, lastStep int64, hashes []string) error {
	return a.inTx(ctx, func(tx *sql.Tx) error {
		// never over an existing one: that is turned off (or reset by an
		// Administrator) first
		res, err := tx.ExecContext(ctx, a.q(`UPDATE users SET totp_secret = ?, totp_last_step = ?
			WHERE id = ? AND role <> 'generic' AND removed_at IS NULL AND totp_secret IS NULL`), secret, lastStep, userID)
		if err != nil {
			return fmt.Errorf("set second factor of user %d: %w", userID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("set second factor of user %d: no such user without one: %w", userID, store.ErrNotFound)
		}
		return a.replaceRecovery(ctx, tx, userID, hashes)
	})
}

func (a *Accounts) replaceRecovery(ctx context.Context, tx *sql.Tx, userID int64, hashes []string) error {
	if _, err := tx.ExecContext(ctx, a.q(`DELETE FROM recovery_codes WHERE user_id = ?`), userID); err != nil {
		return fmt.Errorf("recovery codes of user %d: %w", userID, err)
	}
	for _, h := range hashes {
		if _, err := tx.ExecContext(ctx, a.q(`INSERT INTO recovery_codes (user_id, code_hash) VALUES (?, ?)`), userID, h); err != nil {
			return fmt.Errorf("recovery codes of user %d: %w", userID, err)
		}
	}
	return nil
}

func (a *Accounts) SetRecoveryCodes(ctx context.Context, userID int64, hashes []string) error {
	return a.inTx(ctx, func(tx *sql.Tx) error { return a.replaceRecovery(ctx, tx, userID, hashes) })
}

func (a *Accounts) ClearTOTP(ctx context.Context, userID int64) error {
	return a.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, a.q(`UPDATE users SET totp_secret = NULL, totp_last_step = 0 WHERE id = ?`), userID); err != nil {
			return fmt.Errorf("clear second factor of user %d: %w", userID, err)
		}
		return a.replaceRecovery(ctx, tx, userID, nil)
	})
}

func (a *Accounts) UseTOTPStep(ctx context.Context, userID int64, step int64) (bool, error) {
	// one statement: the same code sent twice at once works once
	res, err := a.DB.ExecContext(ctx, a.q(`UPDATE users SET totp_last_step = ? WHERE id = ? AND totp_last_step < ?`), step, userID, step)
	if err != nil {
		return false, fmt.Errorf("use code of user %d: %w", userID, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (a *Accounts) UseRecoveryCode(ctx context.Context, userID int64, hash string, now time.Time) (bool, error) {
	res, err := a.DB.ExecContext(ctx, a.q(`UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND code_hash = ? AND used_at IS NULL`),
		store.Millis(now), userID, hash)
	if err != nil {
		return false, fmt.Errorf("use recovery code of user %d: %w", userID, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (a *Accounts) RecoveryCodesLeft(ctx context.Context, userID int64) (int, error) {
	var n int
	err := a.DB.QueryRowContext(ctx, a.q(`SELECT COUNT(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL`), userID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("recovery codes of user %d: %w", userID, err)
	}
	return n, nil
}

func (a *Accounts) SetRequireSecondFactor(ctx context.Context, accountID int64, require bool) error {
	return a.one(ctx, fmt.Sprintf("second-factor setting of account %d", accountID),
		`UPDATE accounts SET require_second_factor = ? WHERE id = ?`, require, accountID)
}
