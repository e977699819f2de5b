package sqlstore

import (
	"context"
	"fmt"

	"fjord/internal/usage"
)

// Usage per account, site and day (usage.Store).

func (a *Accounts) AddUsage(ctx context.Context, counts []usage.Count) error {
	if len(counts) == 0 {
		return nil
	}
	tx, err := a.DB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("add usage: %w", err)
	}
	defer tx.Rollback()
	q := a.q(`INSERT INTO account_usage (account_id, site_id, day, kind, n) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (account_id, site_id, day, kind) DO UPDATE SET n = account_usage.n + excluded.n`)
	for _, c := range counts {
		if _, err := tx.ExecContext(ctx, q, c.Account, c.Site, c.Day, c.Kind, c.N); err != nil {
			return fmt.Errorf("add usage %s of account %d: %w", c.Kind, c.Account, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("add usage: %w", err)
	}
	return nil
}

func (a *Accounts) Usage(ctx context.Context, account int64, fromDay, toDay string) ([]usage.Count, error) {
	q := `SELECT account_id, site_id, day, kind, n FROM account_usage WHERE day >= ? AND day <= ?`
	args := []any{fromDay, toDay}
	if account != 0 {
		q += ` AND account_id = ?`
		args = append(args, account)
	}
	rows, err := a.DB.QueryContext(ctx, a.q(q+` ORDER BY account_id, site_id, day, kind`), args...)
	if err != nil {
		return nil, fmt.Errorf("usage of account %d: %w", account, err)
	}
	defer rows.Close()
	var out []usage.Count
	for rows.Next() {
		var c usage.Count
		if err := rows.Scan(&c.Account, &c.Site, &c.Day, &c.Kind, &c.N); err != nil {
			return nil, fmt.Errorf("usage of account %d: %w", account, err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
