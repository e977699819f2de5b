-- Security monitoring (PRODUCT §8): events, the alerts rules open from
-- them, and incidents with their timelines. An event names people by id
-- and a client only by a keyed pseudonym of its network, never by its
-- address; subject is what the rules count it under (its account, or
-- else its actor).
CREATE TABLE security_events (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	at INTEGER NOT NULL,
	kind TEXT NOT NULL,
	account_id INTEGER NOT NULL DEFAULT 0,
	actor TEXT NOT NULL,
	subject TEXT NOT NULL,
	detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX security_events_subject ON security_events (kind, subject, at);
CREATE INDEX security_events_at ON security_events (at);
CREATE TABLE security_alerts (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	rule TEXT NOT NULL,
	kind TEXT NOT NULL,
	account_id INTEGER NOT NULL DEFAULT 0,
	subject TEXT NOT NULL,
	count INTEGER NOT NULL,
	first_at INTEGER NOT NULL,
	last_at INTEGER NOT NULL,
	resolved_at INTEGER,
	resolved_by TEXT NOT NULL DEFAULT ''
);
CREATE INDEX security_alerts_rule ON security_alerts (rule, subject, last_at);
CREATE INDEX security_alerts_account ON security_alerts (account_id, id);
CREATE TABLE incidents (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	title TEXT NOT NULL,
	opened_at INTEGER NOT NULL,
	opened_by TEXT NOT NULL,
	closed_at INTEGER
);
CREATE TABLE incident_accounts (
	incident_id INTEGER NOT NULL REFERENCES incidents (id),
	account_id INTEGER NOT NULL REFERENCES accounts (id),
	PRIMARY KEY (incident_id, account_id)
);
CREATE INDEX incident_accounts_account ON incident_accounts (account_id);
CREATE TABLE incident_entries (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	incident_id INTEGER NOT NULL REFERENCES incidents (id),
	at INTEGER NOT NULL,
	by_actor TEXT NOT NULL,
	kind TEXT NOT NULL CHECK (kind IN ('opened', 'update', 'closed')),
	text TEXT NOT NULL
);
CREATE INDEX incident_entries_incident ON incident_entries (incident_id, id);
