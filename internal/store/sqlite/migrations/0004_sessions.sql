-- Sign-in (PRODUCT §3.4). A session's cookie holds a random token and a
-- one-time link carries one; only the token's SHA-256 (hex) is stored, so
-- a copy of the database signs no one in. A session ends when idle or old
-- (the limits are the server's), at sign-out, or when its user leaves.
CREATE TABLE sessions (
	token_hash TEXT PRIMARY KEY,
	user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	csrf TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	seen_at INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
-- One-time links: the first sign-in of a new user (set a password) and a
-- password reset. A link works once, and not after expires_at.
CREATE TABLE user_links (
	token_hash TEXT PRIMARY KEY,
	user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	purpose TEXT NOT NULL CHECK (purpose IN ('welcome', 'reset')),
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	used_at INTEGER
);
CREATE INDEX user_links_user ON user_links (user_id);
-- Failed sign-ins of a user since the last success, and the lock they led
-- to (throttling per account; per client address is kept in memory).
ALTER TABLE users ADD COLUMN failed_signins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN locked_until INTEGER;
