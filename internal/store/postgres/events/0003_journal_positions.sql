-- Several journals (servers, edge collectors) may feed one event store:
-- each has its own applied position, named by the journal's ID. No store
-- with an unapplied journal existed before this migration, so the old
-- single position is not carried over.
CREATE TABLE journal_positions (
	journal VARCHAR PRIMARY KEY,
	segment BIGINT NOT NULL,
	off BIGINT NOT NULL
);
DROP TABLE journal_state;
