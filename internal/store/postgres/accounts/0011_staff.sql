-- Staff (PRODUCT §7): the operator's people, apart from customer users so
-- that no customer role reaches the console. A removed member's row stays
-- (removed_at) so that the record of their accesses keeps their name.
-- Sign-in needs password and TOTP; only hashes of the set-up link and
-- session tokens are stored.
CREATE TABLE staff (
	id BIGSERIAL PRIMARY KEY,
	email TEXT NOT NULL,
	name TEXT NOT NULL DEFAULT '',
	role TEXT NOT NULL CHECK (role IN ('support', 'consultant', 'engineer', 'head-of-development', 'dpo')),
	password_hash TEXT NOT NULL DEFAULT '',
	totp_secret TEXT NOT NULL DEFAULT '',
	totp_last_step BIGINT NOT NULL DEFAULT 0,
	trained_at BIGINT NOT NULL,
	reminded_for BIGINT NOT NULL DEFAULT 0,
	created_at BIGINT NOT NULL,
	removed_at BIGINT,
	failed_signins BIGINT NOT NULL DEFAULT 0,
	locked_until BIGINT
);
CREATE UNIQUE INDEX staff_email ON staff (email) WHERE removed_at IS NULL;
CREATE TABLE staff_links (
	token_hash TEXT PRIMARY KEY,
	staff_id BIGINT NOT NULL REFERENCES staff (id),
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	used_at BIGINT
);
CREATE TABLE staff_sessions (
	token_hash TEXT PRIMARY KEY,
	staff_id BIGINT NOT NULL REFERENCES staff (id),
	csrf TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	seen_at BIGINT NOT NULL,
	acting_grant BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX staff_sessions_staff ON staff_sessions (staff_id);
-- Access grants (§7.3): asked for by one member with a reason, a scope and
-- a duration, approved by another, valid from the approval until
-- expires_at unless revoked. Rows are never deleted: they explain the
-- audit log's entries (grant_id) to the customer.
CREATE TABLE access_grants (
	id BIGSERIAL PRIMARY KEY,
	staff_id BIGINT NOT NULL REFERENCES staff (id),
	account_id BIGINT NOT NULL REFERENCES accounts (id),
	reason TEXT NOT NULL,
	scope TEXT NOT NULL CHECK (scope IN ('read', 'read-write')),
	duration_ms BIGINT NOT NULL,
	requested_at BIGINT NOT NULL,
	approved_by BIGINT,
	approved_at BIGINT,
	expires_at BIGINT,
	revoked_by BIGINT,
	revoked_at BIGINT,
	CHECK (approved_by IS NULL OR approved_by <> staff_id)
);
CREATE INDEX access_grants_staff ON access_grants (staff_id, id);
CREATE INDEX access_grants_account ON access_grants (account_id, id);
