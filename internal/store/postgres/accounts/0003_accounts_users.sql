-- Accounts (customer organisations), their users and what Users are
-- granted (PRODUCT §3.1–3.3); a grant goes with its site or report. A user's e-mail is stored in lower case; it
-- is NULL for the account's generic user (which inherits a leaver's
-- reports) and once a leaver's personal data is purged.
CREATE TABLE accounts (
	id BIGSERIAL PRIMARY KEY,
	name TEXT NOT NULL,
	main_contact BIGINT,
	require_second_factor BOOLEAN NOT NULL DEFAULT FALSE,
	leaver_retention_days INTEGER NOT NULL DEFAULT 90 CHECK (leaver_retention_days BETWEEN 1 AND 90),
	created_at BIGINT NOT NULL
);
CREATE TABLE users (
	id BIGSERIAL PRIMARY KEY,
	account_id BIGINT NOT NULL REFERENCES accounts (id),
	email TEXT,
	name TEXT NOT NULL DEFAULT '',
	role TEXT NOT NULL CHECK (role IN ('admin', 'user', 'generic')),
	password_hash TEXT,
	created_at BIGINT NOT NULL,
	removed_at BIGINT,
	purged_at BIGINT
);
CREATE UNIQUE INDEX users_email ON users (email) WHERE email IS NOT NULL;
CREATE TABLE grants (
	user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	site_id BIGINT REFERENCES sites (id) ON DELETE CASCADE,
	report_id BIGINT REFERENCES saved_reports (id) ON DELETE CASCADE,
	created_at BIGINT NOT NULL,
	CHECK ((site_id IS NULL) <> (report_id IS NULL))
);
CREATE UNIQUE INDEX grants_site ON grants (user_id, site_id) WHERE site_id IS NOT NULL;
CREATE UNIQUE INDEX grants_report ON grants (user_id, report_id) WHERE report_id IS NOT NULL;
ALTER TABLE sites ADD COLUMN account_id BIGINT REFERENCES accounts (id);
