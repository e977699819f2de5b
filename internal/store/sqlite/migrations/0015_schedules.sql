-- E-mail reports (PRODUCT §6): schedules on saved reports, their
-- recipients (users of the account, or outside addresses where the account
-- allows them), each mailing per recipient (a delivery, with its attempts
-- and bounce) and the addresses suppressed after hard bounces. A user
-- recipient's address is read from users when mailing, so a leaver's is
-- purged with them; a delivery keeps the address it went to until the
-- purge blanks it.
CREATE TABLE schedules (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	account_id INTEGER NOT NULL REFERENCES accounts (id),
	report_id INTEGER NOT NULL REFERENCES saved_reports (id) ON DELETE CASCADE,
	frequency TEXT NOT NULL,
	weekday INTEGER NOT NULL DEFAULT 0,
	day INTEGER NOT NULL DEFAULT 0,
	hour INTEGER NOT NULL,
	created_by INTEGER NOT NULL REFERENCES users (id),
	created_at INTEGER NOT NULL,
	next_at INTEGER NOT NULL,
	last_at INTEGER
);
CREATE INDEX schedules_account ON schedules (account_id, id);
CREATE INDEX schedules_report ON schedules (report_id);
CREATE INDEX schedules_next ON schedules (next_at);
CREATE TABLE schedule_recipients (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	schedule_id INTEGER NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
	user_id INTEGER REFERENCES users (id),
	email TEXT NOT NULL DEFAULT '',
	unsubscribed_at INTEGER
);
CREATE UNIQUE INDEX schedule_recipients_user ON schedule_recipients (schedule_id, user_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX schedule_recipients_email ON schedule_recipients (schedule_id, email) WHERE user_id IS NULL;
CREATE TABLE mail_deliveries (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	schedule_id INTEGER NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
	recipient_id INTEGER NOT NULL REFERENCES schedule_recipients (id) ON DELETE CASCADE,
	account_id INTEGER NOT NULL REFERENCES accounts (id),
	email TEXT NOT NULL,
	period_from INTEGER NOT NULL,
	period_to INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	status TEXT NOT NULL,
	attempts INTEGER NOT NULL DEFAULT 0,
	next_try INTEGER NOT NULL,
	detail TEXT NOT NULL DEFAULT '',
	bounce TEXT NOT NULL DEFAULT '',
	bounce_why TEXT NOT NULL DEFAULT '',
	bounce_at INTEGER
);
CREATE INDEX mail_deliveries_due ON mail_deliveries (status, next_try);
CREATE INDEX mail_deliveries_schedule ON mail_deliveries (schedule_id, id);
CREATE INDEX mail_deliveries_email ON mail_deliveries (account_id, email, id);
CREATE INDEX mail_deliveries_created ON mail_deliveries (created_at);
CREATE TABLE mail_suppressions (
	account_id INTEGER NOT NULL REFERENCES accounts (id),
	email TEXT NOT NULL,
	since INTEGER NOT NULL,
	why TEXT NOT NULL,
	PRIMARY KEY (account_id, email)
);
-- An account's mail settings; no row: no outside recipients, and the
-- default number of hard bounces.
CREATE TABLE mail_accounts (
	account_id INTEGER PRIMARY KEY REFERENCES accounts (id),
	outside_recipients INTEGER NOT NULL DEFAULT 0,
	hard_bounces INTEGER NOT NULL DEFAULT 0
);
-- The key of VERP and unsubscribe tokens (one row, made at first use).
CREATE TABLE mail_keys (
	id INTEGER PRIMARY KEY,
	mail_key TEXT NOT NULL
);
