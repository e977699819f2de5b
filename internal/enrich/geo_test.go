package enrich

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// cityRecord builds a record in the GeoLite2-City layout.
func cityRecord(country, subdivision, city string) mmdbtype.Map {
	rec := mmdbtype.Map{
		"country": mmdbtype.Map{
			"iso_code": mmdbtype.String(country),
			"names":    mmdbtype.Map{"en": mmdbtype.String("Country " + country), "de": mmdbtype.String("Land")},
		},
	}
	if subdivision != "" {
		rec["subdivisions"] = mmdbtype.Slice{
			mmdbtype.Map{"iso_code": mmdbtype.String(subdivision), "names": mmdbtype.Map{"en": mmdbtype.String("Sub")}},
			mmdbtype.Map{"iso_code": mmdbtype.String("ZZZ")},
		}
	}
	if city != "" {
		rec["city"] = mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(city), "fi": mmdbtype.String("Kaupunki")}}
	}
	return rec
}

// writeDB writes a database with the given networks to a temporary file.
func writeDB(t testing.TB, dbType string, nets map[string]mmdbtype.Map) string {
	t.Helper()
	w, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType: dbType,
		RecordSize:   24,
		// Lets the test store data for private ranges, to prove Lookup
		// refuses them rather than relying on the database to be empty.
		IncludeReservedNetworks: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	for cidr, rec := range nets {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Insert(n, rec); err != nil {
			t.Fatalf("insert %s: %v", cidr, err)
		}
	}
	path := filepath.Join(t.TempDir(), dbType+".mmdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestGeoCity(t *testing.T) {
	path := writeDB(t, "GeoLite2-City", map[string]mmdbtype.Map{
		"81.2.69.0/24":  cityRecord("GB", "ENG", "London"),
		"89.27.64.0/18": cityRecord("FI", "18", "Helsinki"),
		"2a01:4f9::/32": cityRecord("FI", "18", "Helsinki"),
		"2001:480::/32": cityRecord("US", "CA", ""),
		"5.5.5.0/24":    cityRecord("de", "", ""), // lower case in a damaged file
		"7.7.7.0/24": {
			"registered_country": mmdbtype.Map{"iso_code": mmdbtype.String("SE")},
		},
		"8.8.8.0/24": {
			"country": mmdbtype.Map{"iso_code": mmdbtype.String("<script>")},
			"city":    mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String("Nowhere")}},
		},
		"10.0.0.0/8":     cityRecord("XX", "1", "Private"),
		"192.168.0.0/16": cityRecord("XX", "1", "Private"),
		"fd00::/8":       cityRecord("XX", "1", "Private"),
	})
	g, err := OpenGeo(path)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()

	tests := []struct {
		ip   string
		want Location
	}{
		{"81.2.69.142", Location{"GB", "GB-ENG", "London"}},
		{"89.27.100.1", Location{"FI", "FI-18", "Helsinki"}},
		{"::ffff:89.27.100.1", Location{"FI", "FI-18", "Helsinki"}},
		{"2a01:4f9:c010:1234::1", Location{"FI", "FI-18", "Helsinki"}},
		{"2001:480:10::1", Location{"US", "US-CA", ""}},
		{"5.5.5.5", Location{Country: "DE"}},
		{"7.7.7.7", Location{Country: "SE"}},
		{"8.8.8.8", Location{}},
		{"1.1.1.1", Location{}}, // not in the database
		{"2606:4700::1111", Location{}},
		{"10.1.2.3", Location{}},
		{"192.168.1.1", Location{}},
		{"fd00::1", Location{}},
		{"127.0.0.1", Location{}},
		{"::1", Location{}},
		{"169.254.1.1", Location{}},
		{"100.64.1.1", Location{}},
		{"0.0.0.0", Location{}},
	}
	for _, tt := range tests {
		if got := g.Lookup(netip.MustParseAddr(tt.ip)); got != tt.want {
			t.Errorf("Lookup(%s) = %+v, want %+v", tt.ip, got, tt.want)
		}
	}
	if got := g.Lookup(netip.Addr{}); got != (Location{}) {
		t.Errorf("Lookup(zero Addr) = %+v, want zero", got)
	}
}

func TestGeoCountryLayout(t *testing.T) {
	// GeoLite2-Country and DB-IP country databases have no subdivisions or
	// cities; lookups must still give the country.
	path := writeDB(t, "GeoLite2-Country", map[string]mmdbtype.Map{
		"81.2.69.0/24": {"country": mmdbtype.Map{"iso_code": mmdbtype.String("GB")}},
	})
	g, err := OpenGeo(path)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if got, want := g.Lookup(netip.MustParseAddr("81.2.69.1")), (Location{Country: "GB"}); got != want {
		t.Errorf("Lookup = %+v, want %+v", got, want)
	}
}

func TestGeoNilAndClose(t *testing.T) {
	var g *Geo
	if got := g.Lookup(netip.MustParseAddr("81.2.69.142")); got != (Location{}) {
		t.Errorf("nil Geo Lookup = %+v", got)
	}
	if err := g.Close(); err != nil {
		t.Errorf("nil Geo Close = %v", err)
	}

	path := writeDB(t, "GeoLite2-City", map[string]mmdbtype.Map{"81.2.69.0/24": cityRecord("GB", "ENG", "London")})
	g, err := OpenGeo(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if err := g.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if got := g.Lookup(netip.MustParseAddr("81.2.69.142")); got != (Location{}) {
		t.Errorf("Lookup after Close = %+v, want zero", got)
	}
}

func TestOpenGeoErrorsNameFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.mmdb")
	garbage := filepath.Join(t.TempDir(), "garbage.mmdb")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("not a database ", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{missing, garbage} {
		g, err := OpenGeo(path)
		if err == nil {
			g.Close()
			t.Errorf("OpenGeo(%s) succeeded", path)
			continue
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("OpenGeo error %q does not name %s", err, path)
		}
	}
}

func BenchmarkGeoLookup(b *testing.B) {
	path := writeDB(b, "GeoLite2-City", map[string]mmdbtype.Map{"81.2.69.0/24": cityRecord("GB", "ENG", "London")})
	g, err := OpenGeo(path)
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	ip := netip.MustParseAddr("81.2.69.142")
	b.ReportAllocs()
	for b.Loop() {
		g.Lookup(ip)
	}
}
