-- The audit log (PRODUCT §7.4): append-only, each entry holding the hash
-- of the one before it; checkpoints sign an entry's hash with the
-- server's Ed25519 key. The application only ever inserts here.
CREATE TABLE audit_log (
	seq INTEGER PRIMARY KEY,
	at INTEGER NOT NULL,
	actor TEXT NOT NULL,
	account_id INTEGER NOT NULL DEFAULT 0,
	action TEXT NOT NULL,
	target TEXT NOT NULL DEFAULT '',
	detail TEXT NOT NULL DEFAULT '',
	grant_id INTEGER NOT NULL DEFAULT 0,
	prev TEXT NOT NULL,
	hash TEXT NOT NULL
);
CREATE INDEX audit_log_account ON audit_log (account_id, seq);
CREATE TABLE audit_checkpoints (
	seq INTEGER PRIMARY KEY,
	hash TEXT NOT NULL,
	at INTEGER NOT NULL,
	signature BLOB NOT NULL
);
