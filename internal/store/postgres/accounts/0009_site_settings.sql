-- A site's collection settings (PRODUCT §1.1, §3.2), set by its
-- Administrators: respect_dnt drops the hits of browsers that send Do Not
-- Track or Global Privacy Control; ignored_ranges (CIDR ranges, separated
-- by spaces) drops the hits of those client addresses, such as the
-- customer's own office.
ALTER TABLE sites ADD COLUMN respect_dnt BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE sites ADD COLUMN ignored_ranges TEXT NOT NULL DEFAULT '';
