package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"fjord/internal/audit"
	"fjord/internal/store"
)

// The audit log's storage (audit.Store).

const auditCols = `seq, at, actor, account_id, action, target, detail, grant_id, prev, hash`

func scanAudit(row interface{ Scan(...any) error }) (audit.Entry, error) {
	var e audit.Entry
	var at int64
	err := row.Scan(&e.Seq, &at, &e.Actor, &e.Account, &e.Action, &e.Target, &e.Detail, &e.Grant, &e.Prev, &e.Hash)
	e.Time = store.FromMillis(at)
	return e, err
}

func (a *Accounts) LastEntry(ctx context.Context) (audit.Entry, error) {
	e, err := scanAudit(a.DB.QueryRowContext(ctx, `SELECT `+auditCols+` FROM audit_log ORDER BY seq DESC LIMIT 1`))
	if errors.Is(err, sql.ErrNoRows) {
		return audit.Entry{}, nil
	}
	return e, err
}

func (a *Accounts) AppendEntry(ctx context.Context, e audit.Entry) error {
	_, err := a.DB.ExecContext(ctx, a.q(`INSERT INTO audit_log (`+auditCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		e.Seq, store.Millis(e.Time), e.Actor, e.Account, e.Action, e.Target, e.Detail, e.Grant, e.Prev, e.Hash)
	if err != nil && a.D.IsUnique != nil && a.D.IsUnique(err) {
		return audit.ErrRace
	}
	if err != nil {
		return fmt.Errorf("append audit entry %d: %w", e.Seq, err)
	}
	return nil
}

func (a *Accounts) Entries(ctx context.Context, from int64, fn func(audit.Entry) error) error {
	rows, err := a.DB.QueryContext(ctx, a.q(`SELECT `+auditCols+` FROM audit_log WHERE seq >= ? ORDER BY seq`), from)
	if err != nil {
		return fmt.Errorf("audit entries: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return fmt.Errorf("audit entries: %w", err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return rows.Err()
}

func (a *Accounts) AddCheckpoint(ctx context.Context, c audit.Checkpoint) error {
	_, err := a.DB.ExecContext(ctx, a.q(`INSERT INTO audit_checkpoints (seq, hash, at, signature) VALUES (?, ?, ?, ?)`),
		c.Seq, c.Hash, store.Millis(c.Time), c.Signature)
	if err != nil {
		return fmt.Errorf("audit checkpoint %d: %w", c.Seq, err)
	}
	return nil
}

func (a *Accounts) Checkpoints(ctx context.Context) ([]audit.Checkpoint, error) {
	return list(ctx, a.DB, "audit checkpoints", func(row interface{ Scan(...any) error }) (audit.Checkpoint, error) {
		var c audit.Checkpoint
		var at int64
		err := row.Scan(&c.Seq, &c.Hash, &at, &c.Signature)
		c.Time = store.FromMillis(at)
		return c, err
	}, `SELECT seq, hash, at, signature FROM audit_checkpoints ORDER BY seq`)
}

// StaffAccess lists the audit entries of staff under a grant in an
// account, newest first, at most limit (access transparency, §7.5).
func (a *Accounts) StaffAccess(ctx context.Context, account int64, limit int) ([]audit.Entry, error) {
	return list(ctx, a.DB, "staff access", scanAudit, a.q(`SELECT `+auditCols+` FROM audit_log
		WHERE account_id = ? AND grant_id <> 0 ORDER BY seq DESC LIMIT ?`), account, limit)
}
