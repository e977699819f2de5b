-- Exports (PRODUCT §5.2): every download and Stats API answer of report
-- data, who took it (a user, with the API key it went through, or a staff
-- member acting in the account) and what (site, panel or report, period,
-- format, how), with the rows and bytes sent and whether it completed.
-- People are named by id only, so a leaver's records stay without their
-- personal data.
CREATE TABLE exports (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	at INTEGER NOT NULL,
	account_id INTEGER NOT NULL REFERENCES accounts (id),
	user_id INTEGER NOT NULL DEFAULT 0,
	staff_id INTEGER NOT NULL DEFAULT 0,
	api_key_id INTEGER NOT NULL DEFAULT 0,
	site_id INTEGER NOT NULL DEFAULT 0,
	report_id INTEGER NOT NULL DEFAULT 0,
	panel TEXT NOT NULL DEFAULT '',
	period TEXT NOT NULL DEFAULT '',
	format TEXT NOT NULL CHECK (format IN ('csv', 'json')),
	via TEXT NOT NULL CHECK (via IN ('dashboard', 'report', 'api')),
	row_count INTEGER NOT NULL,
	byte_count INTEGER NOT NULL,
	complete INTEGER NOT NULL
);
CREATE INDEX exports_account ON exports (account_id, id);
CREATE INDEX exports_person ON exports (account_id, user_id, staff_id, at);
CREATE INDEX exports_at ON exports (at);
-- An account's thresholds; an account without a row has the defaults
-- (export.Defaults).
CREATE TABLE export_thresholds (
	account_id INTEGER PRIMARY KEY REFERENCES accounts (id),
	rows_per_day INTEGER NOT NULL,
	bytes_per_day INTEGER NOT NULL,
	exports_per_hour INTEGER NOT NULL
);
-- A threshold crossed by a person in a day or hour: the key makes one
-- security event of it however many exports go beyond it, on any number
-- of servers.
CREATE TABLE export_crossings (
	account_id INTEGER NOT NULL REFERENCES accounts (id),
	actor TEXT NOT NULL,
	threshold TEXT NOT NULL,
	window_start INTEGER NOT NULL,
	limit_value INTEGER NOT NULL,
	total INTEGER NOT NULL,
	export_id INTEGER NOT NULL,
	at INTEGER NOT NULL,
	PRIMARY KEY (account_id, actor, threshold, window_start)
);
CREATE INDEX export_crossings_account ON export_crossings (account_id, at);
