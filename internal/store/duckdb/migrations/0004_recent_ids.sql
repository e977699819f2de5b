-- The identities of the events whose time is within the de-duplication
-- window (sqlstore.DedupWindow): a repeat of one of them with another time
-- (the same event received by two collectors) is counted once.
CREATE TABLE recent_ids (
	site_id BIGINT NOT NULL,
	id UUID NOT NULL,
	ts BIGINT NOT NULL
);
-- the events stored before this table existed
INSERT INTO recent_ids SELECT DISTINCT site_id, id, ts FROM events WHERE ts >= epoch_ms(now()) - 72 * 3600 * 1000;
