-- Staff (PRODUCT §7): the operator's people, apart from customer users so
-- that no customer role reaches the console. A removed member's row stays
-- (removed_at) so that the record of their accesses keeps their name.
-- Sign-in needs password and TOTP; only hashes of the set-up link and
-- session tokens are stored.
CREATE TABLE staff (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	email TEXT NOT NULL,
	name TEXT NOT NULL DEFAULT '',
	role TEXT NOT NULL CHECK (role IN ('support', 'consultant', 'engineer', 'head-of-development', 'dpo')),
	password_hash TEXT NOT NULL DEFAULT '',
	totp_secret TEXT NOT NULL DEFAULT '',
	totp_last_step INTEGER NOT NULL DEFAULT 0,
	trained_at INTEGER NOT NULL,
	reminded_for INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL,
	removed_at INTEGER,
	failed_signins INTEGER NOT NULL DEFAULT 0,
	locked_until INTEGER
);
CREATE UNIQUE INDEX staff_email ON staff (email) WHERE removed_at IS NULL;
CREATE TABLE staff_links (
	token_hash TEXT PRIMARY KEY,
	staff_id INTEGER NOT NULL REFERENCES staff (id),
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	used_at INTEGER
);
CREATE TABLE staff_sessions (
	token_hash TEXT PRIMARY KEY,
	staff_id INTEGER NOT NULL REFERENCES staff (id),
	csrf TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	seen_at INTEGER NOT NULL,
	acting_grant INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX staff_sessions_staff ON staff_sessions (staff_id);
-- Access grants (§7.3): asked for by one member with a reason, a scope and
-- a duration, approved by another, valid from the approval until
-- expires_at unless revoked. Rows are never deleted: they explain the
-- audit log's entries (grant_id) to the customer.
CREATE TABLE access_grants (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	staff_id INTEGER NOT NULL REFERENCES staff (id),
	account_id INTEGER NOT NULL REFERENCES accounts (id),
	reason TEXT NOT NULL,
	scope TEXT NOT NULL CHECK (scope IN ('read', 'read-write')),
	duration_ms INTEGER NOT NULL,
	requested_at INTEGER NOT NULL,
	approved_by INTEGER,
	approved_at INTEGER,
	expires_at INTEGER,
	revoked_by INTEGER,
	revoked_at INTEGER,
	CHECK (approved_by IS NULL OR approved_by <> staff_id)
);
CREATE INDEX access_grants_staff ON access_grants (staff_id, id);
CREATE INDEX access_grants_account ON access_grants (account_id, id);
