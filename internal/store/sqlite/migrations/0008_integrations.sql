-- Third-party approval (PRODUCT §3.6): an outbound integration (for now a
-- webhook that receives a site's daily numbers) is configured by an
-- Administrator and sends nothing until the account's main contact has
-- approved it. Changing its target needs a new approval. Every approval
-- and withdrawal is kept in integration_approvals: who, when, and what
-- exactly (the kind, the site and the URL) they approved. A deleted
-- integration is kept (deleted_at) so that this record stays.
CREATE TABLE integrations (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	account_id INTEGER NOT NULL REFERENCES accounts (id),
	site_id INTEGER NOT NULL REFERENCES sites (id),
	kind TEXT NOT NULL CHECK (kind IN ('webhook')),
	url TEXT NOT NULL,
	created_by INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	approved_by INTEGER,
	approved_at INTEGER,
	last_sent_day TEXT,
	last_status TEXT NOT NULL DEFAULT '',
	deleted_at INTEGER
);
CREATE INDEX integrations_account ON integrations (account_id);
CREATE TABLE integration_approvals (
	integration_id INTEGER NOT NULL REFERENCES integrations (id),
	action TEXT NOT NULL CHECK (action IN ('approved', 'withdrawn', 'deleted')),
	user_id INTEGER NOT NULL,
	at INTEGER NOT NULL,
	what TEXT NOT NULL
);
CREATE INDEX integration_approvals_integration ON integration_approvals (integration_id);
