-- Usage (PRODUCT §9.3): how much an account uses the service per UTC day,
-- by kind (events accepted, Stats API calls, exports), per site (0: of no
-- one site; account 0: sites in no account). Counts only: nothing here
-- names a person or a visitor.
CREATE TABLE account_usage (
	account_id INTEGER NOT NULL,
	site_id INTEGER NOT NULL,
	day TEXT NOT NULL,
	kind TEXT NOT NULL CHECK (kind IN ('events', 'api', 'exports')),
	n INTEGER NOT NULL,
	PRIMARY KEY (account_id, site_id, day, kind)
);
CREATE INDEX account_usage_day ON account_usage (day);
