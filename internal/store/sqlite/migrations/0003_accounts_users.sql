-- Accounts (customer organisations), their users and what Users are
-- granted (PRODUCT §3.1–3.3); a grant goes with its site or report. A user's e-mail is stored in lower case; it
-- is NULL for the account's generic user (which inherits a leaver's
-- reports) and once a leaver's personal data is purged.
CREATE TABLE accounts (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	name TEXT NOT NULL,
	main_contact INTEGER,
	require_second_factor INTEGER NOT NULL DEFAULT 0,
	leaver_retention_days INTEGER NOT NULL DEFAULT 90 CHECK (leaver_retention_days BETWEEN 1 AND 90),
	created_at INTEGER NOT NULL
);
CREATE TABLE users (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	account_id INTEGER NOT NULL REFERENCES accounts (id),
	email TEXT,
	name TEXT NOT NULL DEFAULT '',
	role TEXT NOT NULL CHECK (role IN ('admin', 'user', 'generic')),
	password_hash TEXT,
	created_at INTEGER NOT NULL,
	removed_at INTEGER,
	purged_at INTEGER
);
CREATE UNIQUE INDEX users_email ON users (email) WHERE email IS NOT NULL;
CREATE TABLE grants (
	user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	site_id INTEGER REFERENCES sites (id) ON DELETE CASCADE,
	report_id INTEGER REFERENCES saved_reports (id) ON DELETE CASCADE,
	created_at INTEGER NOT NULL,
	CHECK ((site_id IS NULL) <> (report_id IS NULL))
);
CREATE UNIQUE INDEX grants_site ON grants (user_id, site_id) WHERE site_id IS NOT NULL;
CREATE UNIQUE INDEX grants_report ON grants (user_id, report_id) WHERE report_id IS NOT NULL;
ALTER TABLE sites ADD COLUMN account_id INTEGER REFERENCES accounts (id);
