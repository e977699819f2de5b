package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"fjord/internal/secmon"
	"fjord/internal/store"
)

// Security events, alerts and incidents (secmon.Store).

func (a *Accounts) AddSecurityEvent(ctx context.Context, e secmon.Event) (secmon.Event, error) {
	err := a.DB.QueryRowContext(ctx, a.q(`INSERT INTO security_events (at, kind, account_id, actor, subject, detail) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`),
		store.Millis(e.Time), e.Kind, e.Account, e.Actor, e.Subject(), e.Detail).Scan(&e.ID)
	if err != nil {
		return e, fmt.Errorf("add security event: %w", err)
	}
	return e, nil
}

func (a *Accounts) CountSecurityEvents(ctx context.Context, kind, subject string, since time.Time) (int, time.Time, error) {
	var n int
	var first sql.NullInt64
	err := a.DB.QueryRowContext(ctx, a.q(`SELECT COUNT(*), MIN(at) FROM security_events WHERE kind = ? AND subject = ? AND at >= ?`),
		kind, subject, store.Millis(since)).Scan(&n, &first)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("count security events: %w", err)
	}
	var t time.Time
	if first.Valid {
		t = store.FromMillis(first.Int64)
	}
	return n, t, nil
}

func (a *Accounts) PurgeSecurityEvents(ctx context.Context, before time.Time) (int64, error) {
	res, err := a.DB.ExecContext(ctx, a.q(`DELETE FROM security_events WHERE at < ?`), store.Millis(before))
	if err != nil {
		return 0, fmt.Errorf("purge security events: %w", err)
	}
	return res.RowsAffected()
}

const alertCols = `id, rule, kind, account_id, subject, count, first_at, last_at, COALESCE(resolved_at, 0), resolved_by`

func scanAlert(row interface{ Scan(...any) error }) (secmon.Alert, error) {
	var al secmon.Alert
	var first, last, resolved int64
	if err := row.Scan(&al.ID, &al.Rule, &al.Kind, &al.Account, &al.Subject, &al.Count, &first, &last, &resolved, &al.ResolvedBy); err != nil {
		return al, err
	}
	al.First, al.Last = store.FromMillis(first), store.FromMillis(last)
	if resolved != 0 {
		al.Resolved = store.FromMillis(resolved)
	}
	return al, nil
}

func (a *Accounts) LatestAlert(ctx context.Context, rule, subject string) (secmon.Alert, error) {
	al, err := scanAlert(a.DB.QueryRowContext(ctx, a.q(`SELECT `+alertCols+` FROM security_alerts
		WHERE rule = ? AND subject = ? ORDER BY id DESC LIMIT 1`), rule, subject))
	if errors.Is(err, sql.ErrNoRows) {
		return al, fmt.Errorf("alert of %s: %w", rule, store.ErrNotFound)
	}
	if err != nil {
		return al, fmt.Errorf("alert of %s: %w", rule, err)
	}
	return al, nil
}

func (a *Accounts) AddAlert(ctx context.Context, al secmon.Alert) (secmon.Alert, error) {
	err := a.DB.QueryRowContext(ctx, a.q(`INSERT INTO security_alerts (rule, kind, account_id, subject, count, first_at, last_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		al.Rule, al.Kind, al.Account, al.Subject, al.Count, store.Millis(al.First), store.Millis(al.Last)).Scan(&al.ID)
	if err != nil {
		return al, fmt.Errorf("add alert: %w", err)
	}
	return al, nil
}

func (a *Accounts) AlertSeen(ctx context.Context, id int64, at time.Time) error {
	return a.one(ctx, fmt.Sprintf("alert %d", id), `UPDATE security_alerts SET count = count + 1, last_at = ? WHERE id = ?`, store.Millis(at), id)
}

func (a *Accounts) Alert(ctx context.Context, id int64) (secmon.Alert, error) {
	al, err := scanAlert(a.DB.QueryRowContext(ctx, a.q(`SELECT `+alertCols+` FROM security_alerts WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return al, fmt.Errorf("alert %d: %w", id, store.ErrNotFound)
	}
	return al, err
}

func (a *Accounts) Alerts(ctx context.Context, f secmon.AlertFilter) ([]secmon.Alert, error) {
	q := `SELECT ` + alertCols + ` FROM security_alerts WHERE 1 = 1`
	var args []any
	if f.Account != 0 {
		q += ` AND account_id = ?`
		args = append(args, f.Account)
	}
	if f.OpenOnly {
		q += ` AND resolved_at IS NULL`
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 200
	}
	q += fmt.Sprintf(` ORDER BY id DESC LIMIT %d`, limit)
	return list(ctx, a.DB, "alerts", scanAlert, a.q(q), args...)
}

func (a *Accounts) ResolveAlert(ctx context.Context, id int64, by string, at time.Time) error {
	return a.one(ctx, fmt.Sprintf("open alert %d", id), `UPDATE security_alerts SET resolved_at = ?, resolved_by = ? WHERE id = ? AND resolved_at IS NULL`, store.Millis(at), by, id)
}

func (a *Accounts) AddIncident(ctx context.Context, in secmon.Incident) (secmon.Incident, error) {
	err := a.inTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, a.q(`INSERT INTO incidents (title, opened_at, opened_by) VALUES (?, ?, ?) RETURNING id`),
			in.Title, store.Millis(in.Opened), in.OpenedBy).Scan(&in.ID); err != nil {
			return fmt.Errorf("add incident: %w", err)
		}
		for _, acc := range in.Accounts {
			if _, err := tx.ExecContext(ctx, a.q(`INSERT INTO incident_accounts (incident_id, account_id) VALUES (?, ?)`), in.ID, acc); err != nil {
				return fmt.Errorf("incident: account %d: %w", acc, err)
			}
		}
		for _, e := range in.Entries {
			if err := a.addEntry(ctx, tx, in.ID, e); err != nil {
				return err
			}
		}
		return nil
	})
	return in, err
}

func (a *Accounts) addEntry(ctx context.Context, tx *sql.Tx, id int64, e secmon.Entry) error {
	_, err := tx.ExecContext(ctx, a.q(`INSERT INTO incident_entries (incident_id, at, by_actor, kind, text) VALUES (?, ?, ?, ?, ?)`),
		id, store.Millis(e.Time), e.By, e.Kind, e.Text)
	if err != nil {
		return fmt.Errorf("incident %d: add to the timeline: %w", id, err)
	}
	return nil
}

func (a *Accounts) AddIncidentEntry(ctx context.Context, id int64, e secmon.Entry) error {
	return a.inTx(ctx, func(tx *sql.Tx) error {
		var closed sql.NullInt64
		err := tx.QueryRowContext(ctx, a.q(`SELECT closed_at FROM incidents WHERE id = ?`), id).Scan(&closed)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("incident %d: %w", id, store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("incident %d: %w", id, err)
		}
		if closed.Valid {
			return fmt.Errorf("incident %d is closed: %w", id, store.ErrConflict)
		}
		if e.Kind == secmon.EntryClosed {
			// only the first closer wins: a concurrent close finds it closed
			res, err := tx.ExecContext(ctx, a.q(`UPDATE incidents SET closed_at = ? WHERE id = ? AND closed_at IS NULL`), store.Millis(e.Time), id)
			if err != nil {
				return fmt.Errorf("close incident %d: %w", id, err)
			}
			if n, _ := res.RowsAffected(); n != 1 {
				return fmt.Errorf("incident %d is closed: %w", id, store.ErrConflict)
			}
		}
		return a.addEntry(ctx, tx, id, e)
	})
}

const incidentCols = `id, title, opened_at, opened_by, COALESCE(closed_at, 0)`

func scanIncident(row interface{ Scan(...any) error }) (secmon.Incident, error) {
	var in secmon.Incident
	var opened, closed int64
	if err := row.Scan(&in.ID, &in.Title, &opened, &in.OpenedBy, &closed); err != nil {
		return in, err
	}
	in.Opened = store.FromMillis(opened)
	if closed != 0 {
		in.Closed = store.FromMillis(closed)
	}
	return in, nil
}

func (a *Accounts) Incident(ctx context.Context, id int64) (secmon.Incident, error) {
	in, err := scanIncident(a.DB.QueryRowContext(ctx, a.q(`SELECT `+incidentCols+` FROM incidents WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return in, fmt.Errorf("incident %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return in, fmt.Errorf("incident %d: %w", id, err)
	}
	return in, a.fillIncident(ctx, &in)
}

func (a *Accounts) Incidents(ctx context.Context, account int64) ([]secmon.Incident, error) {
	q := `SELECT ` + incidentCols + ` FROM incidents ORDER BY id DESC`
	var args []any
	if account != 0 {
		q = `SELECT ` + incidentCols + ` FROM incidents WHERE id IN (SELECT incident_id FROM incident_accounts WHERE account_id = ?) ORDER BY id DESC`
		args = append(args, account)
	}
	out, err := list(ctx, a.DB, "incidents", scanIncident, a.q(q), args...)
	if err != nil {
		return nil, err
	}
	for i := range out {
		if err := a.fillIncident(ctx, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// fillIncident reads an incident's accounts and timeline.
func (a *Accounts) fillIncident(ctx context.Context, in *secmon.Incident) error {
	accs, err := list(ctx, a.DB, "incident accounts", func(row interface{ Scan(...any) error }) (int64, error) {
		var id int64
		return id, row.Scan(&id)
	}, a.q(`SELECT account_id FROM incident_accounts WHERE incident_id = ? ORDER BY account_id`), in.ID)
	if err != nil {
		return err
	}
	in.Accounts = accs
	in.Entries, err = list(ctx, a.DB, "incident timeline", func(row interface{ Scan(...any) error }) (secmon.Entry, error) {
		var e secmon.Entry
		var at int64
		err := row.Scan(&at, &e.By, &e.Kind, &e.Text)
		e.Time = store.FromMillis(at)
		return e, err
	}, a.q(`SELECT at, by_actor, kind, text FROM incident_entries WHERE incident_id = ? ORDER BY id`), in.ID)
	return err
}

var _ secmon.Store = (*Accounts)(nil)
