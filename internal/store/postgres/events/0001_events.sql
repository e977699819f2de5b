CREATE TABLE events (
	id UUID NOT NULL,
	site_id BIGINT NOT NULL,
	ts BIGINT NOT NULL,
	name VARCHAR NOT NULL,
	visitor_id BIGINT NOT NULL,
	hostname VARCHAR NOT NULL,
	path VARCHAR NOT NULL,
	referrer VARCHAR NOT NULL,
	source VARCHAR NOT NULL,
	channel VARCHAR NOT NULL,
	utm_source VARCHAR NOT NULL,
	utm_medium VARCHAR NOT NULL,
	utm_campaign VARCHAR NOT NULL,
	utm_content VARCHAR NOT NULL,
	utm_term VARCHAR NOT NULL,
	country VARCHAR NOT NULL,
	region VARCHAR NOT NULL,
	city VARCHAR NOT NULL,
	browser VARCHAR NOT NULL,
	browser_version VARCHAR NOT NULL,
	os VARCHAR NOT NULL,
	os_version VARCHAR NOT NULL,
	device VARCHAR NOT NULL,
	props VARCHAR NOT NULL,
	interactive BOOLEAN NOT NULL,
	scroll_depth SMALLINT NOT NULL,
	engaged_ms INTEGER NOT NULL
);
CREATE TABLE journal_state (
	id INTEGER PRIMARY KEY,
	segment BIGINT NOT NULL,
	off BIGINT NOT NULL
);
CREATE TABLE counts (
	site_id BIGINT NOT NULL,
	day VARCHAR NOT NULL,
	name VARCHAR NOT NULL,
	n BIGINT NOT NULL,
	PRIMARY KEY (site_id, day, name)
);
CREATE TABLE salts (
	site_id BIGINT NOT NULL,
	day VARCHAR NOT NULL,
	salt BYTEA NOT NULL,
	created_at BIGINT NOT NULL,
	PRIMARY KEY (site_id, day)
);
CREATE INDEX events_site_ts ON events (site_id, ts);
