-- The second factor (PRODUCT §3.4): a user's TOTP secret (RFC 6238), the
-- last time step a code was used for (so a code works once), and
-- single-use recovery codes, of which only hashes are kept. A session
-- that passed the password but not yet the second factor is pending.
ALTER TABLE users ADD COLUMN totp_secret TEXT;
ALTER TABLE users ADD COLUMN totp_last_step INTEGER NOT NULL DEFAULT 0;
CREATE TABLE recovery_codes (
	user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	code_hash TEXT NOT NULL,
	used_at INTEGER,
	PRIMARY KEY (user_id, code_hash)
);
ALTER TABLE sessions ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;
