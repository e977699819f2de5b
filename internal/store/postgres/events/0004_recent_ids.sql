-- The identities of the events whose time is within the de-duplication
-- window (sqlstore.DedupWindow): a repeat of one of them with another time
-- (the same event received by two collectors) is counted once.
CREATE TABLE recent_ids (
	site_id BIGINT NOT NULL,
	id UUID NOT NULL,
	ts BIGINT NOT NULL,
	PRIMARY KEY (site_id, id)
);
CREATE INDEX recent_ids_ts ON recent_ids (ts);
-- the events stored before this table existed
INSERT INTO recent_ids SELECT site_id, id, min(ts) FROM events
	WHERE ts >= (extract(epoch FROM now()) * 1000)::bigint - 72 * 3600 * 1000
	GROUP BY site_id, id;
