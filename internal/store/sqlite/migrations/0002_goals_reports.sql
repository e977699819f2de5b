CREATE TABLE goals (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	site_id INTEGER NOT NULL REFERENCES sites (id),
	kind TEXT NOT NULL CHECK (kind IN ('event', 'page')),
	value TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	UNIQUE (site_id, kind, value)
);
-- owner_id is filled in by the accounts issue (users); NULL until then.
CREATE TABLE saved_reports (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	site_id INTEGER NOT NULL REFERENCES sites (id),
	owner_id INTEGER,
	name TEXT NOT NULL,
	definition TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	UNIQUE (site_id, name)
);
