-- Datafeeds (PRODUCT §4): a saved report at a secret URL. Only the
-- token's SHA-256 is stored. A feed dies with its report; its requests
-- (feed_uses) are kept for 90 days, with the client's address, which the
-- Administrators see on the feed's page to recognise their own systems.
CREATE TABLE feeds (
	id BIGSERIAL PRIMARY KEY,
	account_id BIGINT NOT NULL REFERENCES accounts (id),
	report_id BIGINT NOT NULL REFERENCES saved_reports (id) ON DELETE CASCADE,
	owner_id BIGINT NOT NULL REFERENCES users (id),
	name TEXT NOT NULL,
	token_hash TEXT NOT NULL UNIQUE,
	ranges TEXT NOT NULL DEFAULT '',
	max_days BIGINT NOT NULL,
	per_hour BIGINT NOT NULL,
	addresses BIGINT NOT NULL,
	created_at BIGINT NOT NULL,
	since BIGINT NOT NULL,
	last_used BIGINT,
	disabled_at BIGINT,
	disabled_why TEXT NOT NULL DEFAULT ''
);
CREATE INDEX feeds_account ON feeds (account_id, id);
CREATE TABLE feed_uses (
	id BIGSERIAL PRIMARY KEY,
	feed_id BIGINT NOT NULL REFERENCES feeds (id) ON DELETE CASCADE,
	at BIGINT NOT NULL,
	client TEXT NOT NULL,
	status BIGINT NOT NULL,
	rows BIGINT NOT NULL DEFAULT 0,
	bytes BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX feed_uses_feed ON feed_uses (feed_id, at);
CREATE INDEX feed_uses_at ON feed_uses (at);
-- Whether an account lets its Users publish feeds (Administrators always
-- may); no row: it does not.
CREATE TABLE feed_accounts (
	account_id BIGINT PRIMARY KEY REFERENCES accounts (id),
	users_publish BOOLEAN NOT NULL
);
