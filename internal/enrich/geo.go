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
	res := g.db.Lookup(ip)
	if !res.Found() {
		return Location{}
	}
	// DecodePath follows each path and skips everything else in the record
	// (names in other languages, location, postal code). Measured against
	// decoding a tagged struct on a full GeoLite2-style record it was no
	// slower and left less garbage.
	var country, sub, city string
	if res.DecodePath(&country, "country", "iso_code") != nil {
		return Location{}
	}
	var loc Location
	loc.Country = isoCode(country, 2)
	if loc.Country == "" {
		// registered_country stands in when the network is known but not
		// where it is used (anycast, satellite, some mobile carriers).
		var reg string
		if res.DecodePath(&reg, "registered_country", "iso_code") != nil {
			return Location{}
		}
		loc.Country = isoCode(reg, 2)
	}
	if len(loc.Country) != 2 {
		// Region and city without a country cannot be shown sensibly.
		return Location{}
	}
	// The first subdivision is the largest (a region, not a county in it).
	_ = res.DecodePath(&sub, "subdivisions", 0, "iso_code")
	_ = res.DecodePath(&city, "city", "names", "en")
	// MaxMind stores the part after the dash ("18" for FI-18).
	if sub := isoCode(sub, 3); sub != "" {
		loc.Region = loc.Country + "-" + sub
	}
	loc.City = cleanValue(city, maxUTMLen)
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
