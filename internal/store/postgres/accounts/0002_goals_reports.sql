CREATE TABLE goals (
	id BIGSERIAL PRIMARY KEY,
	site_id BIGINT NOT NULL REFERENCES sites (id),
	kind TEXT NOT NULL CHECK (kind IN ('event', 'page')),
	value TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	UNIQUE (site_id, kind, value)
);
-- owner_id is filled in by the accounts issue (users); NULL until then.
CREATE TABLE saved_reports (
	id BIGSERIAL PRIMARY KEY,
	site_id BIGINT NOT NULL REFERENCES sites (id),
	owner_id BIGINT,
	name TEXT NOT NULL,
	definition TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	UNIQUE (site_id, name)
);
