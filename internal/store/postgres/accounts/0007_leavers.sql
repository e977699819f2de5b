-- Leavers (PRODUCT §3.5): a removed user's saved reports move to the
-- account's generic user; former_owner remembers whose they were, so that
-- restoring the user gives them back. The purge clears it with the rest
-- of the user's personal data.
ALTER TABLE saved_reports ADD COLUMN former_owner BIGINT;
