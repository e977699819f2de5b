-- API keys (PRODUCT §3.4): a user's keys to the Stats API, each named,
-- scoped to sites of the user's account, and expiring. The key itself is
-- shown once; only its SHA-256 (hex) is stored, with a few leading
-- characters (prefix) that recognise it in lists and are no secret. A key
-- reads at most what its user may read at the time of each request, and
-- dies with its user: the lookup joins users on removed_at IS NULL, and
-- the rows go when the user's row does.
CREATE TABLE api_keys (
	id BIGSERIAL PRIMARY KEY,
	user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	token_hash TEXT NOT NULL UNIQUE,
	prefix TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	last_used_at BIGINT,
	revoked_at BIGINT
);
CREATE INDEX api_keys_user ON api_keys (user_id);
-- The sites a key is scoped to; a site's removal takes it out of every key.
CREATE TABLE api_key_sites (
	key_id BIGINT NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
	site_id BIGINT NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
	PRIMARY KEY (key_id, site_id)
);
CREATE INDEX api_key_sites_site ON api_key_sites (site_id);
