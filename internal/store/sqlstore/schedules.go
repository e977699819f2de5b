package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"fjord/internal/mail/schedule"
	"fjord/internal/store"
)

// E-mail schedules, deliveries and suppressions (schedule.Store; PRODUCT §6).

const scheduleCols = `id, account_id, report_id, frequency, weekday, day, hour, created_by, created_at, next_at, COALESCE(last_at, 0)`

func scanSchedule(row interface{ Scan(...any) error }) (schedule.Schedule, error) {
	var s schedule.Schedule
	var weekday int
	var created, next, last int64
	err := row.Scan(&s.ID, &s.AccountID, &s.ReportID, &s.Frequency, &weekday, &s.Day, &s.Hour, &s.CreatedBy, &created, &next, &last)
	s.Weekday = time.Weekday(weekday)
	s.Created, s.Next, s.Last = store.FromMillis(created), store.FromMillis(next), optMillis(last)
	return s, err
}

func (a *Accounts) CreateSchedule(ctx context.Context, s schedule.Schedule) (schedule.Schedule, error) {
	err := a.inTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, a.q(`INSERT INTO schedules (account_id, report_id, frequency, weekday, day, hour, created_by, created_at, next_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`), s.AccountID, s.ReportID, s.Frequency, int(s.Weekday), s.Day, s.Hour,
			s.CreatedBy, store.Millis(s.Created), store.Millis(s.Next)).Scan(&s.ID)
		if err != nil {
			return err
		}
		for i, r := range s.Recipients {
			r.ScheduleID = s.ID
			if r, err = a.addRecipient(ctx, tx, r); err != nil {
				return err
			}
			s.Recipients[i] = r
		}
		return nil
	})
	if err != nil {
		return s, fmt.Errorf("create schedule: %w", err)
	}
	return s, nil
}

func (a *Accounts) addRecipient(ctx context.Context, tx *sql.Tx, r schedule.Recipient) (schedule.Recipient, error) {
	var user any
	email := r.Email
	if r.UserID != 0 {
		user, email = r.UserID, "" // read from users when mailing
	}
	err := tx.QueryRowContext(ctx, a.q(`INSERT INTO schedule_recipients (schedule_id, user_id, email) VALUES (?, ?, ?) RETURNING id`),
		r.ScheduleID, user, email).Scan(&r.ID)
	if err != nil && a.D.IsUnique != nil && a.D.IsUnique(err) {
		return r, fmt.Errorf("the recipient is on the schedule already: %w", store.ErrExists)
	}
	return r, err
}

func (a *Accounts) AddRecipient(ctx context.Context, r schedule.Recipient) (schedule.Recipient, error) {
	err := a.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		r, err = a.addRecipient(ctx, tx, r)
		return err
	})
	if err != nil {
		return r, fmt.Errorf("schedule %d: add recipient: %w", r.ScheduleID, err)
	}
	return r, nil
}

func (a *Accounts) RemoveRecipient(ctx context.Context, scheduleID, id int64) error {
	res, err := a.DB.ExecContext(ctx, a.q(`DELETE FROM schedule_recipients WHERE schedule_id = ? AND id = ?`), scheduleID, id)
	if err != nil {
		return fmt.Errorf("schedule %d: remove recipient: %w", scheduleID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("schedule %d: recipient %d: %w", scheduleID, id, store.ErrNotFound)
	}
	return nil
}

// recipients fills in the recipients of the schedules, in one query.
func (a *Accounts) recipients(ctx context.Context, where string, arg any, out []schedule.Schedule) error {
	rows, err := a.DB.QueryContext(ctx, a.q(`SELECT r.id, r.schedule_id, COALESCE(r.user_id, 0), COALESCE(u.email, r.email), COALESCE(r.unsubscribed_at, 0)
		FROM schedule_recipients r JOIN schedules s ON s.id = r.schedule_id LEFT JOIN users u ON u.id = r.user_id
		WHERE `+where+` ORDER BY r.id`), arg)
	if err != nil {
		return err
	}
	defer rows.Close()
	at := map[int64]int{}
	for i, s := range out {
		at[s.ID] = i
	}
	for rows.Next() {
		var r schedule.Recipient
		var unsub int64
		if err := rows.Scan(&r.ID, &r.ScheduleID, &r.UserID, &r.Email, &unsub); err != nil {
			return err
		}
		r.Unsubscribed = optMillis(unsub)
		if i, ok := at[r.ScheduleID]; ok {
			out[i].Recipients = append(out[i].Recipients, r)
		}
	}
	return rows.Err()
}

func (a *Accounts) schedulesWhere(ctx context.Context, where string, arg any) ([]schedule.Schedule, error) {
	rows, err := a.DB.QueryContext(ctx, a.q(`SELECT `+scheduleCols+` FROM schedules WHERE `+where+` ORDER BY id`), arg)
	if err != nil {
		return nil, err
	}
	var out []schedule.Schedule
	for rows.Next() {
		s, err := scanSchedule(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(out) == 0 {
		return out, err
	}
	return out, a.recipients(ctx, "s."+where, arg, out)
}

func (a *Accounts) Schedule(ctx context.Context, id int64) (schedule.Schedule, error) {
	l, err := a.schedulesWhere(ctx, "id = ?", id)
	if err != nil {
		return schedule.Schedule{}, fmt.Errorf("schedule %d: %w", id, err)
	}
	if len(l) == 0 {
		return schedule.Schedule{}, fmt.Errorf("schedule %d: %w", id, store.ErrNotFound)
	}
	return l[0], nil
}

func (a *Accounts) Schedules(ctx context.Context, accountID int64) ([]schedule.Schedule, error) {
	l, err := a.schedulesWhere(ctx, "account_id = ?", accountID)
	if err != nil {
		return nil, fmt.Errorf("account %d: schedules: %w", accountID, err)
	}
	return l, nil
}

func (a *Accounts) ReportSchedules(ctx context.Context, reportID int64) ([]schedule.Schedule, error) {
	l, err := a.schedulesWhere(ctx, "report_id = ?", reportID)
	if err != nil {
		return nil, fmt.Errorf("report %d: schedules: %w", reportID, err)
	}
	return l, nil
}

func (a *Accounts) DueSchedules(ctx context.Context, now time.Time) ([]schedule.Schedule, error) {
	l, err := a.schedulesWhere(ctx, "next_at <= ?", store.Millis(now))
	if err != nil {
		return nil, fmt.Errorf("due schedules: %w", err)
	}
	return l, nil
}

func (a *Accounts) SetScheduleTiming(ctx context.Context, s schedule.Schedule) error {
	res, err := a.DB.ExecContext(ctx, a.q(`UPDATE schedules SET frequency = ?, weekday = ?, day = ?, hour = ?, next_at = ? WHERE id = ?`),
		s.Frequency, int(s.Weekday), s.Day, s.Hour, store.Millis(s.Next), s.ID)
	if err != nil {
		return fmt.Errorf("schedule %d: %w", s.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("schedule %d: %w", s.ID, store.ErrNotFound)
	}
	return nil
}

func (a *Accounts) DeleteSchedule(ctx context.Context, id int64) error {
	res, err := a.DB.ExecContext(ctx, a.q(`DELETE FROM schedules WHERE id = ?`), id)
	if err != nil {
		return fmt.Errorf("delete schedule %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("schedule %d: %w", id, store.ErrNotFound)
	}
	return nil
}

func (a *Accounts) Unsubscribe(ctx context.Context, recipientID int64, now time.Time) (bool, error) {
	res, err := a.DB.ExecContext(ctx, a.q(`UPDATE schedule_recipients SET unsubscribed_at = ? WHERE id = ? AND unsubscribed_at IS NULL`),
		store.Millis(now), recipientID)
	if err != nil {
		return false, fmt.Errorf("unsubscribe recipient %d: %w", recipientID, err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

func (a *Accounts) FireSchedule(ctx context.Context, id int64, next, newNext, now time.Time, ds []schedule.Delivery) (bool, error) {
	fired := false
	err := a.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, a.q(`UPDATE schedules SET next_at = ?, last_at = ? WHERE id = ? AND next_at = ?`),
			store.Millis(newNext), store.Millis(now), id, store.Millis(next))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil // another run fired it
		}
		fired = true
		for _, d := range ds {
			_, err := tx.ExecContext(ctx, a.q(`INSERT INTO mail_deliveries (schedule_id, recipient_id, account_id, email, period_from, period_to,
				created_at, status, next_try, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`), id, d.RecipientID, d.AccountID, d.Email,
				store.Millis(d.From), store.Millis(d.To), store.Millis(now), d.Status, store.Millis(now), d.Detail)
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("fire schedule %d: %w", id, err)
	}
	return fired, nil
}

const deliveryCols = `id, schedule_id, recipient_id, account_id, email, period_from, period_to, created_at, status, attempts, next_try,
	detail, bounce, bounce_why, COALESCE(bounce_at, 0)`

func scanDelivery(row interface{ Scan(...any) error }) (schedule.Delivery, error) {
	var d schedule.Delivery
	var from, to, created, next, bounced int64
	err := row.Scan(&d.ID, &d.ScheduleID, &d.RecipientID, &d.AccountID, &d.Email, &from, &to, &created, &d.Status, &d.Attempts, &next,
		&d.Detail, &d.Bounce, &d.BounceWhy, &bounced)
	d.From, d.To, d.Created, d.NextTry = store.FromMillis(from), store.FromMillis(to), store.FromMillis(created), store.FromMillis(next)
	d.BounceAt = optMillis(bounced)
	return d, err
}

func (a *Accounts) deliveries(ctx context.Context, query string, args ...any) ([]schedule.Delivery, error) {
	rows, err := a.DB.QueryContext(ctx, a.q(`SELECT `+deliveryCols+` FROM mail_deliveries WHERE `+query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []schedule.Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

func (a *Accounts) DueDeliveries(ctx context.Context, now time.Time, limit int) ([]schedule.Delivery, error) {
	l, err := a.deliveries(ctx, `status IN (?, ?) AND next_try <= ? ORDER BY next_try, id LIMIT ?`,
		schedule.Pending, schedule.Retry, store.Millis(now), limit)
	if err != nil {
		return nil, fmt.Errorf("due deliveries: %w", err)
	}
	return l, nil
}

func (a *Accounts) Delivery(ctx context.Context, id int64) (schedule.Delivery, error) {
	l, err := a.deliveries(ctx, `id = ?`, id)
	if err != nil {
		return schedule.Delivery{}, fmt.Errorf("delivery %d: %w", id, err)
	}
	if len(l) == 0 {
		return schedule.Delivery{}, fmt.Errorf("delivery %d: %w", id, store.ErrNotFound)
	}
	return l[0], nil
}

func (a *Accounts) Deliveries(ctx context.Context, scheduleID int64, limit int) ([]schedule.Delivery, error) {
	l, err := a.deliveries(ctx, `schedule_id = ? ORDER BY id DESC LIMIT ?`, scheduleID, limit)
	if err != nil {
		return nil, fmt.Errorf("schedule %d: deliveries: %w", scheduleID, err)
	}
	return l, nil
}

func (a *Accounts) Attempted(ctx context.Context, d schedule.Delivery) error {
	_, err := a.DB.ExecContext(ctx, a.q(`UPDATE mail_deliveries SET status = ?, attempts = ?, next_try = ?, detail = ?, email = ? WHERE id = ?`),
		d.Status, d.Attempts, store.Millis(d.NextTry), d.Detail, d.Email, d.ID)
	if err != nil {
		return fmt.Errorf("delivery %d: %w", d.ID, err)
	}
	return nil
}

func (a *Accounts) RecordBounce(ctx context.Context, id int64, kind, why string, at time.Time) (bool, error) {
	// a hard bounce replaces a soft one (a delay, then the failure); a
	// soft one never replaces a hard one, and the same kind twice is one
	q := `UPDATE mail_deliveries SET bounce = ?, bounce_why = ?, bounce_at = ? WHERE id = ? AND bounce = ''`
	if kind == schedule.BounceHard {
		q = `UPDATE mail_deliveries SET bounce = ?, bounce_why = ?, bounce_at = ? WHERE id = ? AND bounce <> 'hard'`
	}
	res, err := a.DB.ExecContext(ctx, a.q(q), kind, why, store.Millis(at), id)
	if err != nil {
		return false, fmt.Errorf("delivery %d: bounce: %w", id, err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

func (a *Accounts) RecentSends(ctx context.Context, accountID int64, email string, limit int) ([]schedule.Delivery, error) {
	l, err := a.deliveries(ctx, `account_id = ? AND email = ? AND status = ? ORDER BY id DESC LIMIT ?`,
		accountID, email, schedule.Sent, limit)
	if err != nil {
		return nil, fmt.Errorf("recent sends: %w", err)
	}
	return l, nil
}

func (a *Accounts) ClaimDelivery(ctx context.Context, id int64, next, until time.Time) (bool, error) {
	res, err := a.DB.ExecContext(ctx, a.q(`UPDATE mail_deliveries SET next_try = ? WHERE id = ? AND status IN (?, ?) AND next_try = ?`),
		store.Millis(until), id, schedule.Pending, schedule.Retry, store.Millis(next))
	if err != nil {
		return false, fmt.Errorf("claim delivery %d: %w", id, err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

func (a *Accounts) Suppress(ctx context.Context, s schedule.Suppressed) (bool, error) {
	res, err := a.DB.ExecContext(ctx, a.q(`INSERT INTO mail_suppressions (account_id, email, since, why) VALUES (?, ?, ?, ?)
		ON CONFLICT (account_id, email) DO NOTHING`), s.AccountID, s.Email, store.Millis(s.Since), s.Why)
	if err != nil {
		return false, fmt.Errorf("suppress: %w", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

func (a *Accounts) Unsuppress(ctx context.Context, accountID int64, email string) (bool, error) {
	res, err := a.DB.ExecContext(ctx, a.q(`DELETE FROM mail_suppressions WHERE account_id = ? AND email = ?`), accountID, email)
	if err != nil {
		return false, fmt.Errorf("unsuppress: %w", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

func (a *Accounts) IsSuppressed(ctx context.Context, accountID int64, email string) (bool, error) {
	var n int
	err := a.DB.QueryRowContext(ctx, a.q(`SELECT COUNT(*) FROM mail_suppressions WHERE account_id = ? AND email = ?`), accountID, email).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("suppressed: %w", err)
	}
	return n > 0, nil
}

func (a *Accounts) Suppressions(ctx context.Context, accountID int64) ([]schedule.Suppressed, error) {
	rows, err := a.DB.QueryContext(ctx, a.q(`SELECT m.account_id, m.email, m.since, m.why, COALESCE(u.id, 0) FROM mail_suppressions m
		LEFT JOIN users u ON u.account_id = m.account_id AND u.email = m.email AND u.removed_at IS NULL
		WHERE m.account_id = ? ORDER BY m.since, m.email`), accountID)
	if err != nil {
		return nil, fmt.Errorf("account %d: suppressions: %w", accountID, err)
	}
	defer rows.Close()
	var out []schedule.Suppressed
	for rows.Next() {
		var s schedule.Suppressed
		var since int64
		if err := rows.Scan(&s.AccountID, &s.Email, &since, &s.Why, &s.UserID); err != nil {
			return nil, err
		}
		s.Since = store.FromMillis(since)
		out = append(out, s)
	}
	return out, rows.Err()
}

func (a *Accounts) mailSetting(ctx context.Context, accountID int64, col string, v any) error {
	err := a.DB.QueryRowContext(ctx, a.q(`SELECT `+col+` FROM mail_accounts WHERE account_id = ?`), accountID).Scan(v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("account %d: mail settings: %w", accountID, err)
	}
	return nil
}

func (a *Accounts) setMailSetting(ctx context.Context, accountID int64, col string, v any) error {
	_, err := a.DB.ExecContext(ctx, a.q(`INSERT INTO mail_accounts (account_id, `+col+`) VALUES (?, ?)
		ON CONFLICT (account_id) DO UPDATE SET `+col+` = excluded.`+col), accountID, v)
	if err != nil {
		return fmt.Errorf("account %d: mail settings: %w", accountID, err)
	}
	return nil
}

func (a *Accounts) OutsideRecipients(ctx context.Context, accountID int64) (bool, error) {
	var allow bool
	return allow, a.mailSetting(ctx, accountID, "outside_recipients", &allow)
}

func (a *Accounts) SetOutsideRecipients(ctx context.Context, accountID int64, allow bool) error {
	return a.setMailSetting(ctx, accountID, "outside_recipients", allow)
}

func (a *Accounts) HardBounces(ctx context.Context, accountID int64) (int, error) {
	var n int
	if err := a.mailSetting(ctx, accountID, "hard_bounces", &n); err != nil {
		return 0, err
	}
	if n <= 0 {
		n = schedule.DefaultHardBounces
	}
	return n, nil
}

func (a *Accounts) SetHardBounces(ctx context.Context, accountID int64, n int) error {
	return a.setMailSetting(ctx, accountID, "hard_bounces", n)
}

func (a *Accounts) MailKey(ctx context.Context) ([]byte, error) {
	read := func() (string, error) {
		var k string
		err := a.DB.QueryRowContext(ctx, a.q(`SELECT mail_key FROM mail_keys WHERE id = 1`)).Scan(&k)
		return k, err
	}
	k, err := read()
	if errors.Is(err, sql.ErrNoRows) {
		// made at first use; the first to insert wins, and everyone
		// reads the row that won
		b := make([]byte, 32)
		rand.Read(b)
		if _, err := a.DB.ExecContext(ctx, a.q(`INSERT INTO mail_keys (id, mail_key) VALUES (1, ?) ON CONFLICT (id) DO NOTHING`), hex.EncodeToString(b)); err != nil {
			return nil, fmt.Errorf("mail key: %w", err)
		}
		k, err = read()
	}
	if err != nil {
		return nil, fmt.Errorf("mail key: %w", err)
	}
	return hex.DecodeString(k)
}

func (a *Accounts) PurgeDeliveries(ctx context.Context, before time.Time) (int64, error) {
	res, err := a.DB.ExecContext(ctx, a.q(`DELETE FROM mail_deliveries WHERE created_at < ?`), store.Millis(before))
	if err != nil {
		return 0, fmt.Errorf("purge deliveries: %w", err)
	}
	return res.RowsAffected()
}
