package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"fjord/internal/store"
)

// Outbound integrations and their approvals by the main contact (PRODUCT
// §3.6).

const integrationCols = `id, account_id, site_id, kind, url, created_by, created_at, COALESCE(approved_by, 0), COALESCE(approved_at, 0), COALESCE(last_sent_day, ''), last_status`

func scanIntegration(row interface{ Scan(...any) error }) (store.Integration, error) {
	var i store.Integration
	var created, approved int64
	if err := row.Scan(&i.ID, &i.AccountID, &i.SiteID, &i.Kind, &i.URL, &i.CreatedBy, &created, &i.ApprovedBy, &approved, &i.LastSentDay, &i.LastStatus); err != nil {
		return i, err
	}
	i.Created = store.FromMillis(created)
	if approved != 0 {
		i.Approved = store.FromMillis(approved)
	}
	return i, nil
}

func (a *Accounts) AddIntegration(ctx context.Context, i store.Integration) (store.Integration, error) {
	err := a.DB.QueryRowContext(ctx, a.q(`INSERT INTO integrations (account_id, site_id, kind, url, created_by, created_at)
		SELECT ?, id, ?, ?, ?, ? FROM sites WHERE id = ? AND account_id = ? RETURNING id`),
		i.AccountID, i.Kind, i.URL, i.CreatedBy, store.Millis(i.Created), i.SiteID, i.AccountID).Scan(&i.ID)
	if errors.Is(err, sql.ErrNoRows) {
		return i, fmt.Errorf("integration: site %d is not in account %d: %w", i.SiteID, i.AccountID, store.ErrNotFound)
	}
	if err != nil {
		return i, fmt.Errorf("add integration: %w", err)
	}
	return i, nil
}

func (a *Accounts) Integration(ctx context.Context, id int64) (store.Integration, error) {
	i, err := scanIntegration(a.DB.QueryRowContext(ctx, a.q(`SELECT `+integrationCols+` FROM integrations WHERE id = ? AND deleted_at IS NULL`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return i, fmt.Errorf("integration %d: %w", id, store.ErrNotFound)
	}
	return i, err
}

func (a *Accounts) Integrations(ctx context.Context, accountID int64) ([]store.Integration, error) {
	return a.integrations(ctx, `SELECT `+integrationCols+` FROM integrations WHERE account_id = ? AND deleted_at IS NULL ORDER BY id`, accountID)
}

func (a *Accounts) ApprovedIntegrations(ctx context.Context) ([]store.Integration, error) {
	return a.integrations(ctx, `SELECT `+integrationCols+` FROM integrations WHERE approved_by IS NOT NULL AND deleted_at IS NULL ORDER BY id`)
}

func (a *Accounts) integrations(ctx context.Context, query string, args ...any) ([]store.Integration, error) {
	return list(ctx, a.DB, "integrations", scanIntegration, a.q(query), args...)
}

// DeleteIntegration stops an integration for good; the row stays (marked
// deleted, not approved) so that its record of approvals does too.
func (a *Accounts) DeleteIntegration(ctx context.Context, id, userID int64, now time.Time) error {
	return a.inTx(ctx, func(tx *sql.Tx) error {
		i, err := scanIntegration(tx.QueryRowContext(ctx, a.q(`SELECT `+integrationCols+` FROM integrations WHERE id = ? AND deleted_at IS NULL`), id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("integration %d: %w", id, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, a.q(`UPDATE integrations SET deleted_at = ?, approved_by = NULL, approved_at = NULL WHERE id = ?`), store.Millis(now), id); err != nil {
			return fmt.Errorf("delete integration %d: %w", id, err)
		}
		_, err = tx.ExecContext(ctx, a.q(`INSERT INTO integration_approvals (integration_id, action, user_id, at, what) VALUES (?, ?, ?, ?, ?)`),
			id, "deleted", userID, store.Millis(now), i.What())
		return err
	})
}

// setApproval approves (by a user) or withdraws (by 0) an integration and
// records it, in one transaction; approving an approved integration, or
// withdrawing one that is not, is ErrConflict.
func (a *Accounts) setApproval(ctx context.Context, id, userID, by int64, action string, now time.Time) error {
	return a.inTx(ctx, func(tx *sql.Tx) error {
		i, err := scanIntegration(tx.QueryRowContext(ctx, a.q(`SELECT `+integrationCols+` FROM integrations WHERE id = ? AND deleted_at IS NULL`), id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("integration %d: %w", id, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if (action == store.Approved) == (i.ApprovedBy != 0) {
			return fmt.Errorf("integration %d is %s already: %w", id, action, store.ErrConflict)
		}
		var byArg, atArg any
		if by != 0 {
			byArg, atArg = by, store.Millis(now)
		}
		if _, err := tx.ExecContext(ctx, a.q(`UPDATE integrations SET approved_by = ?, approved_at = ? WHERE id = ?`), byArg, atArg, id); err != nil {
			return fmt.Errorf("integration %d: %w", id, err)
		}
		_, err = tx.ExecContext(ctx, a.q(`INSERT INTO integration_approvals (integration_id, action, user_id, at, what) VALUES (?, ?, ?, ?, ?)`),
			id, action, userID, store.Millis(now), i.What())
		return err
	})
}

func (a *Accounts) ApproveIntegration(ctx context.Context, id, userID int64, now time.Time) error {
	return a.setApproval(ctx, id, userID, userID, store.Approved, now)
}

func (a *Accounts) WithdrawIntegration(ctx context.Context, id, userID int64, now time.Time) error {
	return a.setApproval(ctx, id, userID, 0, store.Withdrawn, now)
}

func (a *Accounts) Approvals(ctx context.Context, id int64) ([]store.Approval, error) {
	rows, err := a.DB.QueryContext(ctx, a.q(`SELECT integration_id, action, user_id, at, what FROM integration_approvals WHERE integration_id = ? ORDER BY at, action`), id)
	if err != nil {
		return nil, fmt.Errorf("approvals of integration %d: %w", id, err)
	}
	defer rows.Close()
	var out []store.Approval
	for rows.Next() {
		var ap store.Approval
		var at int64
		if err := rows.Scan(&ap.Integration, &ap.Action, &ap.UserID, &at, &ap.What); err != nil {
			return nil, err
		}
		ap.At = store.FromMillis(at)
		out = append(out, ap)
	}
	return out, rows.Err()
}

func (a *Accounts) IntegrationSent(ctx context.Context, id int64, day, status string) error {
	_, err := a.DB.ExecContext(ctx, a.q(`UPDATE integrations SET last_sent_day = ?, last_status = ? WHERE id = ?`), day, status, id)
	return err
}
