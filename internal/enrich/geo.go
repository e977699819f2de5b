package enrich

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/oschwald/maxminddb-golang/v2"
)

// Location is where an IP address is, as far as the database knows.
type Location struct {
	Country string // ISO 3166-1 alpha-2, e.g. "FI"
	Region  string // ISO 3166-2 subdivision, e.g. "FI-18"; "" if unknown
	City    string // English name, e.g. "Helsinki"; "" if unknown
}

// Geo looks up locations in a MaxMind DB file (GeoLite2/GeoIP2 City or
// Country, or DB-IP's compatible databases). It is safe for concurrent use.
type Geo struct {
	db *maxminddb.Reader
}

// OpenGeo opens the database at path. The file is memory-mapped, so opening
// is cheap and lookups do not read from disk once pages are cached.
func OpenGeo(path string) (*Geo, error) {
	db, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("geo database %s: %w", path, err)
	}
	return &Geo{db: db}, nil
}

// Close releases the database. No Lookup may run during or after Close.
func (g *Geo) Close() error {
	if g == nil || g.db == nil {
		return nil
	}
	err := g.db.Close()
	g.db = nil
	return err
}

// geoRecord decodes only the fields we report. Decoding "names" into a
// struct with one field skips the other languages without allocating a map
// for them.
type geoRecord struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	RegisteredCountry struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"registered_country"`
	Subdivisions []struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"subdivisions"`
	City struct {
		Names struct {
			EN string `maxminddb:"en"`
		} `maxminddb:"names"`
	} `maxminddb:"city"`
}

// Lookup returns the location of ip, or the zero Location when there is no
// database, the address is not public, or the database does not know it.
// Errors are not returned: a visit without a location is still a visit.
func (g *Geo) Lookup(ip netip.Addr) Location {
	if g == nil || g.db == nil {
		return Location{}
	}
	ip = ip.Unmap()
	if !isPublic(ip) {
		return Location{}
	}
	var rec geoRecord
	if err := g.db.Lookup(ip).Decode(&rec); err != nil {
		return Location{}
	}
	var loc Location
	// registered_country stands in when the network is known but not where
	// it is used (anycast, satellite, some mobile carriers).
	loc.Country = isoCode(rec.Country.ISOCode, 2)
	if loc.Country == "" {
		loc.Country = isoCode(rec.RegisteredCountry.ISOCode, 2)
	}
	if len(loc.Country) != 2 {
		// Region and city without a country cannot be shown sensibly.
		return Location{}
	}
	if len(rec.Subdivisions) > 0 {
		// MaxMind stores the part after the dash ("18" for FI-18); the
		// first subdivision is the largest one.
		if sub := isoCode(rec.Subdivisions[0].ISOCode, 3); sub != "" {
			loc.Region = loc.Country + "-" + sub
		}
	}
	loc.City = cleanValue(rec.City.Names.EN, maxUTMLen)
	return loc
}

// isPublic rejects addresses that no geo database can place: private,
// loopback, link-local, multicast and unspecified addresses, and CGNAT's
// shared space.
func isPublic(ip netip.Addr) bool {
	if !ip.IsValid() || ip.IsPrivate() || ip.IsLoopback() || ip.IsUnspecified() ||
		ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() {
		return false
	}
	if ip.Is4() && cgnat.Contains(ip) {
		return false
	}
	return true
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// isoCode returns s upper-cased if it is 1..maxLen ASCII letters or digits,
// else "". Codes come from a file the operator supplies; a damaged one must
// not put arbitrary text into reports.
func isoCode(s string, maxLen int) string {
	if s == "" || len(s) > maxLen {
		return ""
	}
	lower := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case 'a' <= c && c <= 'z':
			lower = true
		default:
			return ""
		}
	}
	if lower {
		return strings.ToUpper(s)
	}
	return s
}
