package config

import (
	"errors"
	"fmt"
	"strings"
)

// Data residency (PRODUCT §9.7): every place that holds the data (this
// node with its data dir, the PostgreSQL database, the standby, the
// backups) declares its region, and each must be in allowed-regions.
// Load checks it, so serve, config check and every other command refuse
// a configuration that would put data anywhere else.

// Residency is where the data lives, as declared. A place not in use
// (no PostgreSQL, no standby, no backups) is "".
type Residency struct {
	Node     string // this node and its data dir (journal, embedded stores); "": not declared, on loopback only
	Database string // the PostgreSQL server(s): database-region, or region; "" when the stores are embedded (they are in Node)
	Standby  string
	Backups  string
	Allowed  []string
}

// Residency reports the declared places of the data.
func (c *Config) Residency() Residency {
	r := Residency{Node: c.Region, Allowed: c.AllowedRegions}
	if c.postgresUsed() {
		r.Database = c.databaseRegion()
	}
	if c.StandbyURL != "" {
		r.Standby = c.StandbyRegion
	}
	if c.BackupDir != "" {
		r.Backups = c.BackupRegion
	}
	return r
}

// RegionAllowed reports whether region matches one of allowed: an exact
// name, or a prefix followed by "*" ("eu-*" matches "eu-fi-helsinki").
// An undeclared region ("") matches nothing.
func RegionAllowed(allowed []string, region string) bool {
	if region == "" {
		return false
	}
	for _, a := range allowed {
		if a == region {
			return true
		}
		if prefix, wild := strings.CutSuffix(a, "*"); wild && strings.HasPrefix(region, prefix) {
			return true
		}
	}
	return false
}

// postgresUsed: the embedded stores live in the data dir, so only a
// PostgreSQL store puts data somewhere else.
func (c *Config) postgresUsed() bool { return isPostgres(c.Database) || isPostgres(c.EventsDatabase) }

func (c *Config) databaseRegion() string {
	if c.DatabaseRegion != "" {
		return c.DatabaseRegion
	}
	return c.Region
}

// checkResidency returns every place that is undeclared or outside
// allowed-regions, and region settings that place nothing (they would
// show a place on the dashboard that holds no data). The messages name
// settings and regions only: the URLs may hold passwords.
func (c *Config) checkResidency() error {
	var errs []error
	allowed := strings.Join(c.AllowedRegions, ", ")
	check := func(setting, region, what string) {
		if !RegionAllowed(c.AllowedRegions, region) {
			errs = append(errs, fmt.Errorf("%s = %q is outside allowed-regions (%s): %s would place data there", setting, region, allowed, what))
		}
	}
	switch {
	case c.Region != "":
		check("region", c.Region, "this node and its data dir")
	case !IsLoopbackAddr(c.Listen):
		// Only local use (a demo, a laptop) may leave the node's region
		// out: a server others reach holds their data somewhere.
		errs = append(errs, fmt.Errorf("region is empty but listen %q is not a loopback address: declare the region this node and its data dir are in, e.g. region = eu-fi-helsinki", c.Listen))
	}
	switch {
	case c.postgresUsed() && c.DatabaseRegion != "":
		check("database-region", c.DatabaseRegion, "the PostgreSQL database")
	case !c.postgresUsed() && c.DatabaseRegion != "":
		errs = append(errs, errors.New("database-region is set but neither database nor events-database is PostgreSQL: the embedded stores are in the data dir, in region; remove database-region"))
	}
	// a place that holds data when its setting is set: its region is
	// required with it and refused without it
	optional := func(setting string, used bool, regionSetting, region, declare, what, nothing string) {
		switch {
		case used && region == "":
			errs = append(errs, fmt.Errorf("%s is set but %s is empty: declare %s", setting, regionSetting, declare))
		case used:
			check(regionSetting, region, what)
		case region != "":
			errs = append(errs, fmt.Errorf("%s is set but %s is empty: there %s to place; set %s, or remove %s", regionSetting, setting, nothing, setting, regionSetting))
		}
	}
	optional("standby-url", c.StandbyURL != "", "standby-region", c.StandbyRegion, "the region the standby is in", "the standby", "is no standby")
	optional("backup-dir", c.BackupDir != "", "backup-region", c.BackupRegion, "the region of the backups' storage", "backups", "are no backups")
	return errors.Join(errs...)
}
