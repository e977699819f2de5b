-- Datafeeds (PRODUCT §4): a saved report at a secret URL. Only the
-- token's SHA-256 is stored. A feed dies with its report; its requests
-- (feed_uses) are kept for 90 days, with the client's address, which the
-- Administrators see on the feed's page to recognise their own systems.
CREATE TABLE feeds (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	account_id INTEGER NOT NULL REFERENCES accounts (id),
	report_id INTEGER NOT NULL REFERENCES saved_reports (id) ON DELETE CASCADE,
	owner_id INTEGER NOT NULL REFERENCES users (id),
	name TEXT NOT NULL,
	token_hash TEXT NOT NULL UNIQUE,
	ranges TEXT NOT NULL DEFAULT '',
	max_days INTEGER NOT NULL,
	per_hour INTEGER NOT NULL,
	addresses INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	since INTEGER NOT NULL,
	last_used INTEGER,
	disabled_at INTEGER,
	disabled_why TEXT NOT NULL DEFAULT ''
);
CREATE INDEX feeds_account ON feeds (account_id, id);
CREATE TABLE feed_uses (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	feed_id INTEGER NOT NULL REFERENCES feeds (id) ON DELETE CASCADE,
	at INTEGER NOT NULL,
	client TEXT NOT NULL,
	status INTEGER NOT NULL,
	rows INTEGER NOT NULL DEFAULT 0,
	bytes INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX feed_uses_feed ON feed_uses (feed_id, at);
CREATE INDEX feed_uses_at ON feed_uses (at);
-- Whether an account lets its Users publish feeds (Administrators always
-- may); no row: it does not.
CREATE TABLE feed_accounts (
	account_id INTEGER PRIMARY KEY REFERENCES accounts (id),
	users_publish INTEGER NOT NULL
);
