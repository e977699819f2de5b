package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
)

// Check looks past syntax: whether the data dir is usable, the files
// exist, the URLs parse, and what the settings imply. Each problem is a
// sentence that names the setting and says what to do.
func Check(c *Config) []string {
	var out []string
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		out = append(out, fmt.Sprintf("data-dir %q cannot be created: %v", c.DataDir, err))
	} else {
		probe := filepath.Join(c.DataDir, ".fjord-write-check")
		if err := os.WriteFile(probe, nil, 0o600); err != nil {
			out = append(out, fmt.Sprintf("data-dir %q is not writable: %v", c.DataDir, err))
		}
		os.Remove(probe)
		if fi, err := os.Stat(c.DataDir); err == nil && fi.Mode().Perm()&0o077 != 0 {
			out = append(out, fmt.Sprintf("data-dir %q is readable by other users (mode %v); run chmod 700 on it", c.DataDir, fi.Mode().Perm()))
		}
	}
	for _, s := range []struct{ name, v string }{{"database", c.Database}, {"events-database", c.EventsDatabase}} {
		if s.v == "" {
			continue
		}
		if _, err := url.Parse(s.v); err != nil {
			out = append(out, fmt.Sprintf("%s is not a valid URL", s.name))
		}
	}
	if c.GeoIPDatabase != "" {
		if _, err := os.Stat(c.GeoIPDatabase); err != nil {
			out = append(out, fmt.Sprintf("geoip-database %q cannot be read: %v", c.GeoIPDatabase, err))
		}
	}
	host, _, _ := net.SplitHostPort(c.Listen)
	if a, err := netip.ParseAddr(host); (err != nil && host != "localhost") || (err == nil && !a.IsLoopback()) {
		out = append(out, fmt.Sprintf("listen %q is not a loopback address: serve plain HTTP only on loopback, behind a TLS proxy on the same host (set trusted-proxies to it)", c.Listen))
	}
	for _, p := range c.TrustedProxies {
		if p.Bits() == 0 {
			out = append(out, fmt.Sprintf("trusted-proxies contains %s, which trusts every address: any client could forge its address", p))
		}
	}
	return out
}

// Redact hides the password of a store URL for display.
func Redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
