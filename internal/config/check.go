package config

import (
	"context"
	"fjord/internal/audit"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"fjord/internal/mail"
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
	if c.AuditKey != "" {
		if _, err := audit.LoadKey(c.AuditKey); err != nil {
			out = append(out, fmt.Sprintf("audit-key: %v", err))
		} else if fi, err := os.Stat(c.AuditKey); err == nil && fi.Mode().Perm()&0o077 != 0 {
			out = append(out, fmt.Sprintf("audit-key %q is readable by other users (mode %v); run chmod 600 on it", c.AuditKey, fi.Mode().Perm()))
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
	out = append(out, checkMail(c)...)
	out = append(out, checkBounces(c)...)
	out = append(out, checkSecurity(c)...)
	out = append(out, checkMetrics(c)...)
	return out
}

// checkMetrics: ranges that would open /metrics (account ids, site
// domains, traffic) to everyone.
func checkMetrics(c *Config) []string {
	var out []string
	for _, p := range c.MetricsRanges {
		if p.Bits() == 0 {
			out = append(out, fmt.Sprintf("metrics-ranges contains %s, which lets every address read /metrics (account ids, site domains and traffic): name your Prometheus servers' addresses", p))
		}
	}
	if c.MetricsListen != "" && c.MetricsListen == c.Listen {
		out = append(out, fmt.Sprintf("metrics-listen %q is the listen address: give the metrics port its own", c.MetricsListen))
	}
	return out
}

// checkMail: settings that do nothing alone, links in mail that nobody
// could open, and whether the SMTP server takes the connection, TLS and
// credentials (it connects, and quits without sending).
func checkMail(c *Config) []string {
	if !c.MailOn() {
		var set []string
		for _, s := range []struct{ name, v string }{{"smtp-user", c.SMTPUser}, {"smtp-password", c.SMTPPassword}, {"mail-from", c.MailFrom}} {
			if s.v != "" {
				set = append(set, s.name)
			}
		}
		if len(set) > 0 || c.SMTPPort != 0 {
			return []string{fmt.Sprintf("mail settings are set (%s) but smtp-host is empty, so no mail is sent: set smtp-host, or remove them", strings.Join(append(set, portSet(c)...), ", "))}
		}
		return nil
	}
	var out []string
	if c.PublicURL == "" {
		out = append(out, "smtp-host is set but public-url is empty: the links in mail (password reset) would point at the listen address, which the recipients cannot reach; set public-url")
	}
	s, err := mail.New(c.Mail())
	if err != nil {
		return append(out, err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Probe(ctx); err != nil {
		out = append(out, "mail cannot be sent: "+err.Error()+"; check smtp-host, smtp-port, smtp-tls, smtp-user and smtp-password")
	}
	return out
}

// checkBounces: a bounce address whose bounces nothing reads, and the
// IMAP mailbox's settings.
func checkBounces(c *Config) []string {
	var out []string
	if c.BounceAddress != "" && c.BounceListen == "" && c.IMAPAddr == "" {
		out = append(out, "bounce-address is set but neither bounce-listen nor imap-addr is: the bounces of e-mail reports would not be read; set one of them")
	}
	if c.IMAPAddr != "" {
		if err := c.IMAP().Validate(); err != nil {
			out = append(out, err.Error())
		}
	}
	return out
}

func portSet(c *Config) []string {
	if c.SMTPPort != 0 {
		return []string{"smtp-port"}
	}
	return nil
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

// checkSecurity: alert settings that could not work, and a security.txt
// that would lack what RFC 9116 wants.
func checkSecurity(c *Config) []string {
	var out []string
	if c.AlertEmail != "" && !c.MailOn() {
		out = append(out, "alert-email is set but smtp-host is empty, so alerts cannot be mailed: set smtp-host")
	}
	for _, contact := range c.SecurityContact {
		if err := CheckContactURI(contact); err != nil {
			out = append(out, "security-contact: "+err.Error())
		}
	}
	if len(c.SecurityContact) == 0 && (c.SecurityPolicy != "" || len(c.SecurityLanguages) > 0) {
		out = append(out, "security-policy or security-languages is set but security-contact is empty, so there is no security.txt: set security-contact")
	}
	if len(c.SecurityContact) > 0 && !strings.HasPrefix(c.PublicURL, "https://") {
		out = append(out, "security-contact is set but public-url is not an https:// URL: security.txt must be served over HTTPS and names its Canonical place from public-url")
	}
	return out
}
