package config

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"fjord/internal/audit"
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
	// A non-loopback listen without TLS never gets here: Load refuses it.
	out = append(out, checkTLS(c, time.Now())...)
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

// certMinDays: a certificate that expires sooner is reported, while there
// is time to renew it.
const certMinDays = 14

// checkTLS: certificate files that cannot be read, are not a pair, expire
// soon or do not cover public-url's host; a key others can read; an ACME
// cache that cannot be written.
func checkTLS(c *Config, now time.Time) []string {
	var out []string
	if c.TLSOn() && strings.HasPrefix(c.PublicURL, "http://") {
		out = append(out, fmt.Sprintf("public-url %q is http:// but listen serves HTTPS: links would point at plain HTTP; make it https://", c.PublicURL))
	}
	publicHost := ""
	if u, err := url.Parse(c.PublicURL); err == nil && c.PublicURL != "" {
		publicHost = u.Hostname()
	}
	if len(c.ACMEDomains) > 0 {
		out = append(out, checkACME(c, publicHost)...)
	}
	if c.TLSCert == "" {
		return out
	}
	certPEM, err := os.ReadFile(c.TLSCert)
	if err != nil {
		return append(out, fmt.Sprintf("tls-cert %q cannot be read: %v", c.TLSCert, unwrapPath(err)))
	}
	if _, err := os.ReadFile(c.TLSKey); err != nil {
		return append(out, fmt.Sprintf("tls-key %q cannot be read: %v", c.TLSKey, unwrapPath(err)))
	}
	if fi, err := os.Stat(c.TLSKey); err == nil && fi.Mode().Perm()&0o077 != 0 {
		out = append(out, fmt.Sprintf("tls-key %q is readable by other users (mode %v); run chmod 600 on it", c.TLSKey, fi.Mode().Perm()))
	}
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return append(out, fmt.Sprintf("tls-cert %q holds no PEM certificate (-----BEGIN CERTIFICATE-----)", c.TLSCert))
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return append(out, fmt.Sprintf("tls-cert %q: the first certificate does not parse: %v", c.TLSCert, err))
	}
	if _, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey); err != nil {
		// tls's errors never quote the key
		out = append(out, fmt.Sprintf("tls-cert %q and tls-key %q are not a certificate and its key: %v", c.TLSCert, c.TLSKey, err))
	}
	day := leaf.NotAfter.UTC().Format("2006-01-02")
	switch {
	case now.After(leaf.NotAfter):
		out = append(out, fmt.Sprintf("tls-cert %q expired on %s: renew it", c.TLSCert, day))
	case leaf.NotAfter.Sub(now) < certMinDays*24*time.Hour:
		out = append(out, fmt.Sprintf("tls-cert %q expires on %s, in less than %d days: renew it (fjord serve loads the new files without a restart)", c.TLSCert, day, certMinDays))
	case now.Before(leaf.NotBefore):
		out = append(out, fmt.Sprintf("tls-cert %q is not valid before %s: check the clock of this machine or the certificate", c.TLSCert, leaf.NotBefore.UTC().Format(time.RFC3339)))
	}
	if publicHost != "" {
		if err := leaf.VerifyHostname(publicHost); err != nil {
			out = append(out, fmt.Sprintf("tls-cert %q does not cover %q, the host of public-url (it covers %s): browsers would refuse it", c.TLSCert, publicHost, covers(leaf)))
		}
	}
	return out
}

// checkACME: the cache must be writable (and private: it holds the
// account key and the certificates' keys), the CA must be able to reach
// the server, and public-url's host must be one it gets a certificate for.
func checkACME(c *Config, publicHost string) []string {
	var out []string
	dir := c.ACMECacheDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		out = append(out, fmt.Sprintf("acme-cache %q cannot be created: %v", dir, unwrapPath(err)))
	} else {
		probe := filepath.Join(dir, ".fjord-write-check")
		if err := os.WriteFile(probe, nil, 0o600); err != nil {
			out = append(out, fmt.Sprintf("acme-cache %q is not writable: %v", dir, unwrapPath(err)))
		}
		os.Remove(probe)
		if fi, err := os.Stat(dir); err == nil && fi.Mode().Perm()&0o077 != 0 {
			out = append(out, fmt.Sprintf("acme-cache %q is open to other users (mode %v) and holds private keys; run chmod 700 on it", dir, fi.Mode().Perm()))
		}
	}
	if _, port, _ := net.SplitHostPort(c.Listen); c.HTTPListen == "" && port != "443" {
		out = append(out, fmt.Sprintf("acme-domains is set but http-listen is empty and listen %q is not port 443: the CA validates a domain on port 80 (http-listen) or 443 (listen); set http-listen = :80, unless a port forward does it", c.Listen))
	}
	if publicHost != "" && !slices.Contains(c.ACMEDomains, strings.ToLower(publicHost)) {
		out = append(out, fmt.Sprintf("public-url's host %q is not in acme-domains, so it would get no certificate: add it to acme-domains", publicHost))
	}
	return out
}

// covers lists the names and addresses a certificate is for.
func covers(leaf *x509.Certificate) string {
	var names []string
	names = append(names, leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		return "no names"
	}
	return strings.Join(names, ", ")
}

// unwrapPath drops the path from a file error: the sentence names it.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
