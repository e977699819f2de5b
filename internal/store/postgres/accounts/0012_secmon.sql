-- Security monitoring (PRODUCT §8): events, the alerts rules open from
-- them, and incidents with their timelines. An event names people by id
-- and a client only by a keyed pseudonym of its network, never by its
-- address; subject is what the rules count it under (its account, or
-- else its actor).
CREATE TABLE security_events (
	id BIGSERIAL PRIMARY KEY,
	at BIGINT NOT NULL,
	kind TEXT NOT NULL,
	account_id BIGINT NOT NULL DEFAULT 0,
	actor TEXT NOT NULL,
	subject TEXT NOT NULL,
	detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX security_events_subject ON security_events (kind, subject, at);
CREATE INDEX security_events_at ON security_events (at);
CREATE TABLE security_alerts (
	id BIGSERIAL PRIMARY KEY,
	rule TEXT NOT NULL,
	kind TEXT NOT NULL,
	account_id BIGINT NOT NULL DEFAULT 0,
	subject TEXT NOT NULL,
	count BIGINT NOT NULL,
	first_at BIGINT NOT NULL,
	last_at BIGINT NOT NULL,
	resolved_at BIGINT,
	resolved_by TEXT NOT NULL DEFAULT ''
);
CREATE INDEX security_alerts_rule ON security_alerts (rule, subject, last_at);
CREATE INDEX security_alerts_account ON security_alerts (account_id, id);
CREATE TABLE incidents (
	id BIGSERIAL PRIMARY KEY,
	title TEXT NOT NULL,
	opened_at BIGINT NOT NULL,
	opened_by TEXT NOT NULL,
	closed_at BIGINT
);
CREATE TABLE incident_accounts (
	incident_id BIGINT NOT NULL REFERENCES incidents (id),
	account_id BIGINT NOT NULL REFERENCES accounts (id),
	PRIMARY KEY (incident_id, account_id)
);
CREATE INDEX incident_accounts_account ON incident_accounts (account_id);
CREATE TABLE incident_entries (
	id BIGSERIAL PRIMARY KEY,
	incident_id BIGINT NOT NULL REFERENCES incidents (id),
	at BIGINT NOT NULL,
	by_actor TEXT NOT NULL,
	kind TEXT NOT NULL CHECK (kind IN ('opened', 'update', 'closed')),
	text TEXT NOT NULL
);
CREATE INDEX incident_entries_incident ON incident_entries (incident_id, id);
