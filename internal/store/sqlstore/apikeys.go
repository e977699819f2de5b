package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"fjord/internal/store"
)

// API keys (PRODUCT §3.4) and the withdrawal of grants, which narrows what
// a key may read. Only a key's hash is stored; a removed user's keys are
// never found.

func (a *Accounts) Ungrant(ctx context.Context, userID, siteID, reportID int64) error {
	if (siteID == 0) == (reportID == 0) {
		return fmt.Errorf("a grant is of a site or of a report, not both or neither")
	}
	if siteID != 0 {
		return a.one(ctx, fmt.Sprintf("withdraw site %d from user %d", siteID, userID),
			`DELETE FROM grants WHERE user_id = ? AND site_id = ?`, userID, siteID)
	}
	return a.one(ctx, fmt.Sprintf("withdraw report %d from user %d", reportID, userID),
		`DELETE FROM grants WHERE user_id = ? AND report_id = ?`, userID, reportID)
}

func (a *Accounts) CreateAPIKey(ctx context.Context, k store.APIKey) (store.APIKey, error) {
	if len(k.Sites) == 0 {
		return store.APIKey{}, fmt.Errorf("an API key needs at least one site")
	}
	k.Sites = slices.Clone(k.Sites)
	slices.Sort(k.Sites)
	k.Sites = slices.Compact(k.Sites) // a site named twice is one site
	k.Created = k.Created.UTC().Truncate(time.Millisecond)
	k.Expires = k.Expires.UTC().Truncate(time.Millisecond)
	err := a.inTx(ctx, func(tx *sql.Tx) error {
		// only a person of an account (not its generic user) who has not left
		err := tx.QueryRowContext(ctx, a.q(`INSERT INTO api_keys (user_id, name, token_hash, prefix, created_at, expires_at)
			SELECT id, CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS BIGINT) FROM users
			WHERE id = ? AND role <> 'generic' AND removed_at IS NULL RETURNING id`),
			k.Name, k.TokenHash, k.Prefix, store.Millis(k.Created), store.Millis(k.Expires), k.UserID).Scan(&k.ID)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("API key of user %d: no such user: %w", k.UserID, store.ErrNotFound)
		}
		if err != nil {
			if a.D.IsUnique != nil && a.D.IsUnique(err) {
				return fmt.Errorf("API key: %w", store.ErrExists)
			}
			return fmt.Errorf("API key of user %d: %w", k.UserID, err)
		}
		for _, site := range k.Sites {
			// only a site of the user's account
			res, err := tx.ExecContext(ctx, a.q(`INSERT INTO api_key_sites (key_id, site_id)
				SELECT CAST(? AS BIGINT), s.id FROM sites s JOIN users u ON u.account_id = s.account_id
				WHERE u.id = ? AND s.id = ?`), k.ID, k.UserID, site)
			if err != nil {
				return fmt.Errorf("API key's site %d: %w", site, err)
			}
			if n, err := res.RowsAffected(); err == nil && n == 0 {
				return fmt.Errorf("API key's site %d: not a site of the user's account: %w", site, store.ErrNotFound)
			}
		}
		return nil
	})
	if err != nil {
		return store.APIKey{}, err
	}
	return k, nil
}

const apiKeyCols = `k.id, k.user_id, k.name, k.prefix, k.created_at, k.expires_at, COALESCE(k.last_used_at, 0), COALESCE(k.revoked_at, 0)`

func scanAPIKey(row interface{ Scan(...any) error }) (store.APIKey, error) {
	var k store.APIKey
	var created, expires, used, revoked int64
	if err := row.Scan(&k.ID, &k.UserID, &k.Name, &k.Prefix, &created, &expires, &used, &revoked); err != nil {
		return store.APIKey{}, err
	}
	k.Created, k.Expires = store.FromMillis(created), store.FromMillis(expires)
	if used != 0 {
		k.LastUsed = store.FromMillis(used)
	}
	if revoked != 0 {
		k.Revoked = store.FromMillis(revoked)
	}
	return k, nil
}

func (a *Accounts) APIKeyByHash(ctx context.Context, tokenHash string) (store.APIKey, error) {
	k, err := scanAPIKey(a.DB.QueryRowContext(ctx, a.q(`SELECT `+apiKeyCols+` FROM api_keys k
		JOIN users u ON u.id = k.user_id AND u.removed_at IS NULL WHERE k.token_hash = ?`), tokenHash))
	if errors.Is(err, sql.ErrNoRows) {
		return store.APIKey{}, fmt.Errorf("API key: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.APIKey{}, fmt.Errorf("API key: %w", err)
	}
	k.TokenHash = tokenHash
	rows, err := a.DB.QueryContext(ctx, a.q(`SELECT site_id FROM api_key_sites WHERE key_id = ? ORDER BY site_id`), k.ID)
	if err != nil {
		return store.APIKey{}, fmt.Errorf("API key's sites: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var site int64
		if err := rows.Scan(&site); err != nil {
			return store.APIKey{}, err
		}
		k.Sites = append(k.Sites, site)
	}
	return k, rows.Err()
}

func (a *Accounts) APIKeys(ctx context.Context, userID int64) ([]store.APIKey, error) {
	rows, err := a.DB.QueryContext(ctx, a.q(`SELECT `+apiKeyCols+` FROM api_keys k WHERE k.user_id = ? ORDER BY k.id DESC`), userID)
	if err != nil {
		return nil, fmt.Errorf("API keys of user %d: %w", userID, err)
	}
	var out []store.APIKey
	at := map[int64]int{}
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		at[k.ID] = len(out)
		out = append(out, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = a.DB.QueryContext(ctx, a.q(`SELECT ks.key_id, ks.site_id FROM api_key_sites ks JOIN api_keys k ON k.id = ks.key_id
		WHERE k.user_id = ? ORDER BY ks.key_id, ks.site_id`), userID)
	if err != nil {
		return nil, fmt.Errorf("API keys' sites of user %d: %w", userID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var key, site int64
		if err := rows.Scan(&key, &site); err != nil {
			return nil, err
		}
		if i, ok := at[key]; ok {
			out[i].Sites = append(out[i].Sites, site)
		}
	}
	return out, rows.Err()
}

func (a *Accounts) RevokeAPIKey(ctx context.Context, userID, id int64, now time.Time) error {
	what := fmt.Sprintf("revoke API key %d", id)
	// COALESCE: a second revocation keeps the first time
	if userID == 0 {
		return a.one(ctx, what, `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`, store.Millis(now), id)
	}
	return a.one(ctx, what, `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? AND user_id = ?`, store.Millis(now), id, userID)
}

func (a *Accounts) TouchAPIKey(ctx context.Context, id int64, now time.Time, every time.Duration) error {
	_, err := a.DB.ExecContext(ctx, a.q(`UPDATE api_keys SET last_used_at = ?
		WHERE id = ? AND (last_used_at IS NULL OR last_used_at <= ?)`), store.Millis(now), id, store.Millis(now.Add(-every)))
	if err != nil {
		return fmt.Errorf("API key %d: record use: %w", id, err)
	}
	return nil
}
