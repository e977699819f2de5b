-- Daily rollups: per site, local day, dimension and value, the additive
-- sums of report queries. A day counts as built only while it is listed in
-- rollup_days; a late event for a built day removes it from there.
CREATE TABLE rollup_days (
	site_id BIGINT NOT NULL,
	day VARCHAR NOT NULL,
	from_ms BIGINT NOT NULL,
	to_ms BIGINT NOT NULL,
	events BIGINT NOT NULL,
	built_at BIGINT NOT NULL,
	PRIMARY KEY (site_id, day)
);
CREATE TABLE rollups (
	site_id BIGINT NOT NULL,
	day VARCHAR NOT NULL,
	dim VARCHAR NOT NULL,
	val VARCHAR NOT NULL,
	visitors BIGINT NOT NULL,
	pageviews BIGINT NOT NULL,
	events BIGINT NOT NULL,
	visits BIGINT NOT NULL,
	bounces BIGINT NOT NULL,
	dur BIGINT NOT NULL,
	vpv BIGINT NOT NULL
);
