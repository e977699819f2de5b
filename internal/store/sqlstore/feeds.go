package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"fjord/internal/feed"
	"fjord/internal/store"
)

// Datafeeds and their requests (feed.Store; PRODUCT §4).

const feedCols = `id, account_id, report_id, owner_id, name, token_hash, ranges, max_days, per_hour, addresses,
	created_at, since, COALESCE(last_used, 0), COALESCE(disabled_at, 0), disabled_why`

func scanFeed(row interface{ Scan(...any) error }) (feed.Feed, error) {
	var f feed.Feed
	var ranges string
	var created, since, used, disabled int64
	err := row.Scan(&f.ID, &f.AccountID, &f.ReportID, &f.OwnerID, &f.Name, &f.TokenHash, &ranges, &f.Limits.MaxDays,
		&f.Limits.PerHour, &f.Limits.Addresses, &created, &since, &used, &disabled, &f.DisabledWhy)
	if err != nil {
		return f, err
	}
	if f.Ranges, err = store.ParseRanges(ranges); err != nil {
		return f, fmt.Errorf("feed %d: stored ranges: %w", f.ID, err)
	}
	f.Created, f.Since = store.FromMillis(created), store.FromMillis(since)
	f.LastUsed, f.Disabled = optMillis(used), optMillis(disabled)
	return f, nil
}

func (a *Accounts) CreateFeed(ctx context.Context, f feed.Feed) (feed.Feed, error) {
	err := a.DB.QueryRowContext(ctx, a.q(`INSERT INTO feeds (account_id, report_id, owner_id, name, token_hash, ranges, max_days, per_hour,
		addresses, created_at, since) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		f.AccountID, f.ReportID, f.OwnerID, f.Name, f.TokenHash, store.FormatRanges(f.Ranges), f.Limits.MaxDays, f.Limits.PerHour,
		f.Limits.Addresses, store.Millis(f.Created), store.Millis(f.Created)).Scan(&f.ID)
	if err != nil {
		return f, fmt.Errorf("create feed: %w", err)
	}
	f.Since = f.Created
	return f, nil
}

func (a *Accounts) feedWhere(ctx context.Context, what, where string, arg any) (feed.Feed, error) {
	f, err := scanFeed(a.DB.QueryRowContext(ctx, a.q(`SELECT `+feedCols+` FROM feeds WHERE `+where), arg))
	if errors.Is(err, sql.ErrNoRows) {
		return f, fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	if err != nil {
		return f, fmt.Errorf("%s: %w", what, err)
	}
	return f, nil
}

func (a *Accounts) FeedByHash(ctx context.Context, tokenHash string) (feed.Feed, error) {
	return a.feedWhere(ctx, "feed", "token_hash = ?", tokenHash)
}

func (a *Accounts) Feed(ctx context.Context, id int64) (feed.Feed, error) {
	return a.feedWhere(ctx, fmt.Sprintf("feed %d", id), "id = ?", id)
}

func (a *Accounts) Feeds(ctx context.Context, accountID int64) ([]feed.Feed, error) {
	return list(ctx, a.DB, "feeds", scanFeed, a.q(`SELECT `+feedCols+` FROM feeds WHERE account_id = ? ORDER BY id DESC`), accountID)
}

// update runs one UPDATE of one feed; no row is store.ErrNotFound.
func (a *Accounts) updateFeed(ctx context.Context, id int64, what, query string, args ...any) (bool, error) {
	res, err := a.DB.ExecContext(ctx, a.q(query), args...)
	if err != nil {
		return false, fmt.Errorf("feed %d: %s: %w", id, what, err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

func (a *Accounts) mustUpdateFeed(ctx context.Context, id int64, what, query string, args ...any) error {
	ok, err := a.updateFeed(ctx, id, what, query, args...)
	if err == nil && !ok {
		err = fmt.Errorf("feed %d: %w", id, store.ErrNotFound)
	}
	return err
}

func (a *Accounts) SetFeedToken(ctx context.Context, id int64, tokenHash string) error {
	return a.mustUpdateFeed(ctx, id, "rotate token", `UPDATE feeds SET token_hash = ? WHERE id = ?`, tokenHash, id)
}

func (a *Accounts) SetFeedSettings(ctx context.Context, id int64, name string, ranges []netip.Prefix, l feed.Limits) error {
	return a.mustUpdateFeed(ctx, id, "settings", `UPDATE feeds SET name = ?, ranges = ?, max_days = ?, per_hour = ?, addresses = ? WHERE id = ?`,
		name, store.FormatRanges(ranges), l.MaxDays, l.PerHour, l.Addresses, id)
}

func (a *Accounts) DisableFeed(ctx context.Context, id int64, why string, now time.Time) (bool, error) {
	return a.updateFeed(ctx, id, "disable", `UPDATE feeds SET disabled_at = ?, disabled_why = ? WHERE id = ? AND disabled_at IS NULL`,
		store.Millis(now), why, id)
}

func (a *Accounts) EnableFeed(ctx context.Context, id, ownerID int64, now time.Time) error {
	return a.mustUpdateFeed(ctx, id, "enable", `UPDATE feeds SET disabled_at = NULL, disabled_why = '', owner_id = ?, since = ? WHERE id = ?`,
		ownerID, store.Millis(now), id)
}

func (a *Accounts) DeleteFeed(ctx context.Context, id int64) error {
	return a.mustUpdateFeed(ctx, id, "delete", `DELETE FROM feeds WHERE id = ?`, id)
}

func (a *Accounts) StartFeedUse(ctx context.Context, u feed.Use) (int64, error) {
	var id int64
	err := a.DB.QueryRowContext(ctx, a.q(`INSERT INTO feed_uses (feed_id, at, client, status, rows, bytes) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`),
		u.FeedID, store.Millis(u.Time), u.Client, u.Status, u.Rows, u.Bytes).Scan(&id)
	if err == nil && u.Status == 200 {
		err = a.usedFeed(ctx, a.DB, u)
	}
	if err != nil {
		return 0, fmt.Errorf("feed %d: record use: %w", u.FeedID, err)
	}
	return id, nil
}

func (a *Accounts) FinishFeedUse(ctx context.Context, u feed.Use) error {
	return a.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, a.q(`UPDATE feed_uses SET status = ?, rows = ?, bytes = ? WHERE id = ? AND feed_id = ?`),
			u.Status, u.Rows, u.Bytes, u.ID, u.FeedID)
		if err == nil && u.Status == 200 {
			err = a.usedFeed(ctx, tx, u)
		}
		if err != nil {
			return fmt.Errorf("feed %d: record use: %w", u.FeedID, err)
		}
		return nil
	})
}

// usedFeed moves a feed's last use forward to an answered request's time.
func (a *Accounts) usedFeed(ctx context.Context, db interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, u feed.Use) error {
	at := store.Millis(u.Time)
	_, err := db.ExecContext(ctx, a.q(`UPDATE feeds SET last_used = ? WHERE id = ? AND (last_used IS NULL OR last_used < ?)`), at, u.FeedID, at)
	return err
}

func (a *Accounts) FeedUses(ctx context.Context, id int64, limit int) ([]feed.Use, error) {
	return list(ctx, a.DB, "feed uses", func(row interface{ Scan(...any) error }) (feed.Use, error) {
		var u feed.Use
		var at int64
		err := row.Scan(&u.FeedID, &at, &u.Client, &u.Status, &u.Rows, &u.Bytes)
		u.Time = store.FromMillis(at)
		return u, err
	}, a.q(`SELECT feed_id, at, client, status, rows, bytes FROM feed_uses WHERE feed_id = ? ORDER BY at DESC, id DESC LIMIT ?`), id, limit)
}

func (a *Accounts) FeedTraffic(ctx context.Context, id int64, client string, hourAgo, dayAgo time.Time) (feed.Traffic, error) {
	var t feed.Traffic
	var known, asking int
	err := a.DB.QueryRowContext(ctx, a.q(`SELECT
		COUNT(CASE WHEN at >= ? THEN 1 END),
		COUNT(CASE WHEN at >= ? AND status = 429 THEN 1 END),
		COUNT(DISTINCT CASE WHEN status IN (0, 200) THEN client END),
		COUNT(CASE WHEN status IN (0, 200) AND client = ? THEN 1 END),
		COUNT(DISTINCT CASE WHEN client <> ? THEN client END)
		FROM feed_uses WHERE feed_id = ? AND at >= ? AND status NOT IN (403, 410)`),
		store.Millis(hourAgo), store.Millis(hourAgo), client, client, id, store.Millis(dayAgo)).Scan(&t.Hour, &t.Throttled, &t.Served, &known, &asking)
	if err != nil {
		return t, fmt.Errorf("feed %d: traffic: %w", id, err)
	}
	t.Known, t.Asking = known > 0, asking+1
	return t, nil
}

func (a *Accounts) IdleFeeds(ctx context.Context, before time.Time) ([]feed.Feed, error) {
	b := store.Millis(before)
	return list(ctx, a.DB, "idle feeds", scanFeed, a.q(`SELECT `+feedCols+` FROM feeds
		WHERE disabled_at IS NULL AND since <= ? AND COALESCE(last_used, 0) <= ? ORDER BY id`), b, b)
}

func (a *Accounts) PurgeFeedUses(ctx context.Context, before time.Time) (int64, error) {
	res, err := a.DB.ExecContext(ctx, a.q(`DELETE FROM feed_uses WHERE at < ?`), store.Millis(before))
	if err != nil {
		return 0, fmt.Errorf("purge feed uses: %w", err)
	}
	return res.RowsAffected()
}

func (a *Accounts) UsersPublishFeeds(ctx context.Context, accountID int64) (bool, error) {
	var allow bool
	err := a.DB.QueryRowContext(ctx, a.q(`SELECT users_publish FROM feed_accounts WHERE account_id = ?`), accountID).Scan(&allow)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("account %d: feed settings: %w", accountID, err)
	}
	return allow, nil
}

func (a *Accounts) SetUsersPublishFeeds(ctx context.Context, accountID int64, allow bool) error {
	_, err := a.DB.ExecContext(ctx, a.q(`INSERT INTO feed_accounts (account_id, users_publish) VALUES (?, ?)
		ON CONFLICT (account_id) DO UPDATE SET users_publish = excluded.users_publish`), accountID, allow)
	if err != nil {
		return fmt.Errorf("account %d: feed settings: %w", accountID, err)
	}
	return nil
}
