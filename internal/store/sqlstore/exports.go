package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"fjord/internal/export"
	"fjord/internal/store"
)

// The export record, thresholds and crossings (export.Store).

func (a *Accounts) AddExport(ctx context.Context, r export.Record) (export.Record, error) {
	err := a.DB.QueryRowContext(ctx, a.q(`INSERT INTO exports (at, account_id, user_id, staff_id, api_key_id, site_id, report_id,
		panel, period, format, via, row_count, byte_count, complete) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		store.Millis(r.Time), r.Account, r.User, r.Staff, r.APIKey, r.Site, r.Report,
		r.Panel, r.Period, r.Format, r.Via, r.Rows, r.Bytes, r.Complete).Scan(&r.ID)
	if err != nil {
		return r, fmt.Errorf("add export of account %d: %w", r.Account, err)
	}
	return r, nil
}

func (a *Accounts) Exports(ctx context.Context, account int64, limit int) ([]export.Record, error) {
	rows, err := a.DB.QueryContext(ctx, a.q(`SELECT id, at, account_id, user_id, staff_id, api_key_id, site_id, report_id,
		panel, period, format, via, row_count, byte_count, complete FROM exports WHERE account_id = ? ORDER BY id DESC LIMIT ?`), account, limit)
	if err != nil {
		return nil, fmt.Errorf("exports of account %d: %w", account, err)
	}
	defer rows.Close()
	var out []export.Record
	for rows.Next() {
		var r export.Record
		var at int64
		if err := rows.Scan(&r.ID, &at, &r.Account, &r.User, &r.Staff, &r.APIKey, &r.Site, &r.Report,
			&r.Panel, &r.Period, &r.Format, &r.Via, &r.Rows, &r.Bytes, &r.Complete); err != nil {
			return nil, fmt.Errorf("exports of account %d: %w", account, err)
		}
		r.Time = store.FromMillis(at)
		out = append(out, r)
	}
	return out, rows.Err()
}

func (a *Accounts) ExportUsage(ctx context.Context, account, user, staff int64, day, hour time.Time) (export.Usage, error) {
	var u export.Usage
	since := day // the earlier of the two, for the index
	if hour.Before(day) {
		since = hour
	}
	err := a.DB.QueryRowContext(ctx, a.q(`SELECT
		COALESCE(SUM(CASE WHEN at >= ? THEN row_count ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN at >= ? THEN byte_count ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN at >= ? THEN 1 ELSE 0 END), 0)
		FROM exports WHERE account_id = ? AND user_id = ? AND staff_id = ? AND at >= ?`),
		store.Millis(day), store.Millis(day), store.Millis(hour), account, user, staff, store.Millis(since)).Scan(&u.Rows, &u.Bytes, &u.Exports)
	if err != nil {
		return u, fmt.Errorf("export usage in account %d: %w", account, err)
	}
	return u, nil
}

func (a *Accounts) ExportThresholds(ctx context.Context, account int64) (export.Thresholds, error) {
	var t export.Thresholds
	err := a.DB.QueryRowContext(ctx, a.q(`SELECT rows_per_day, bytes_per_day, exports_per_hour FROM export_thresholds WHERE account_id = ?`), account).
		Scan(&t.RowsPerDay, &t.BytesPerDay, &t.ExportsPerHour)
	if errors.Is(err, sql.ErrNoRows) {
		return export.Defaults, nil
	}
	if err != nil {
		return t, fmt.Errorf("export thresholds of account %d: %w", account, err)
	}
	return t, nil
}

func (a *Accounts) SetExportThresholds(ctx context.Context, account int64, t export.Thresholds) error {
	_, err := a.DB.ExecContext(ctx, a.q(`INSERT INTO export_thresholds (account_id, rows_per_day, bytes_per_day, exports_per_hour) VALUES (?, ?, ?, ?)
		ON CONFLICT (account_id) DO UPDATE SET rows_per_day = excluded.rows_per_day, bytes_per_day = excluded.bytes_per_day, exports_per_hour = excluded.exports_per_hour`),
		account, t.RowsPerDay, t.BytesPerDay, t.ExportsPerHour)
	if err != nil {
		return fmt.Errorf("set export thresholds of account %d: %w", account, err)
	}
	return nil
}

func (a *Accounts) ClaimCrossing(ctx context.Context, c export.Crossing) (bool, error) {
	res, err := a.DB.ExecContext(ctx, a.q(`INSERT INTO export_crossings (account_id, actor, threshold, window_start, limit_value, total, export_id, at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account_id, actor, threshold, window_start) DO NOTHING`),
		c.Account, c.Actor, c.Threshold, store.Millis(c.Window), c.Limit, c.Total, c.Export, store.Millis(c.Time))
	if err != nil {
		return false, fmt.Errorf("claim export crossing %s of %s: %w", c.Threshold, c.Actor, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("claim export crossing %s of %s: %w", c.Threshold, c.Actor, err)
	}
	return n == 1, nil
}

func (a *Accounts) Crossings(ctx context.Context, account int64, limit int) ([]export.Crossing, error) {
	rows, err := a.DB.QueryContext(ctx, a.q(`SELECT account_id, actor, threshold, window_start, limit_value, total, export_id, at
		FROM export_crossings WHERE account_id = ? ORDER BY at DESC, export_id DESC, threshold LIMIT ?`), account, limit)
	if err != nil {
		return nil, fmt.Errorf("export crossings of account %d: %w", account, err)
	}
	defer rows.Close()
	var out []export.Crossing
	for rows.Next() {
		var c export.Crossing
		var window, at int64
		if err := rows.Scan(&c.Account, &c.Actor, &c.Threshold, &window, &c.Limit, &c.Total, &c.Export, &at); err != nil {
			return nil, fmt.Errorf("export crossings of account %d: %w", account, err)
		}
		c.Window, c.Time = store.FromMillis(window), store.FromMillis(at)
		out = append(out, c)
	}
	return out, rows.Err()
}

func (a *Accounts) PurgeExports(ctx context.Context, before time.Time) (int64, error) {
	tx, err := a.DB.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("purge exports: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, a.q(`DELETE FROM exports WHERE at < ?`), store.Millis(before))
	if err != nil {
		return 0, fmt.Errorf("purge exports: %w", err)
	}
	n, _ := res.RowsAffected()
	if _, err := tx.ExecContext(ctx, a.q(`DELETE FROM export_crossings WHERE at < ?`), store.Millis(before)); err != nil {
		return 0, fmt.Errorf("purge export crossings: %w", err)
	}
	return n, tx.Commit()
}
