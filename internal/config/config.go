// Package config turns the config file, FJORD_* environment variables and
// command-line flags into one validated Config. Each setting has one name,
// used as the flag (--data-dir), the file key (data-dir = ...) and the
// variable (FJORD_DATA_DIR). Flags win over the environment, the
// environment over the file, the file over defaults.
package config

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net"
	netmail "net/mail"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"fjord/internal/mail"
	"fjord/internal/mail/inbound"
)

// Config is every setting of the fjord binary.
type Config struct {
	Listen string
	// HTTPS (PRODUCT §9.1): certificate files, or ACME for the domains;
	// HTTPListen is the plain-HTTP port that only redirects and answers
	// ACME challenges.
	TLSCert           string
	TLSKey            string
	ACMEDomains       []string
	ACMEEmail         string
	ACMECache         string // "": DATA_DIR/acme
	HTTPListen        string
	DataDir           string
	ConfigFile        string
	Demo              bool
	Database          string // account store: a postgres:// URL, or "" for SQLite in the data dir
	EventsDatabase    string // event store: a postgres:// URL, or "" for DuckDB in the data dir (or Database when that is PostgreSQL)
	GeoIPDatabase     string
	TrustedProxies    []netip.Prefix
	DuckDBMemoryLimit string
	DuckDBThreads     int
	QueueSize         int
	DiskReserve       int64 // bytes
	LogLevel          string
	PublicURL         string // how users reach the server; "" is http(s)://LISTEN
	AuditKey          string // file of the audit log's checkpoint signing key
	// The staff console (PRODUCT §7): the ranges it answers from (none:
	// it answers nobody) and the limits of training and grants.
	StaffRanges          []netip.Prefix
	StaffTraining        time.Duration
	StaffGrant           time.Duration
	StaffConsultantGrant time.Duration
	// Mail (off without SMTPHost): see internal/mail.
	SMTPHost     string
	SMTPPort     int // 0: the TLS mode's usual port
	SMTPUser     string
	SMTPPassword string
	SMTPTLS      string
	MailFrom     string
	// Bounces of e-mail reports (PRODUCT §6.2): the base of the VERP
	// envelope senders, and where bounces arrive: the built-in SMTP
	// receiver, or a mailbox read over IMAP.
	BounceAddress string
	BounceListen  string
	IMAPAddr      string
	IMAPUser      string
	IMAPPassword  string
	IMAPTLS       string
	IMAPMailbox   string
	// Limits of the public port (PRODUCT §9.2): requests per client
	// address and route class, events per site, when an address is
	// blocked and for how long, connections per address, collection
	// requests at once.
	LimitCollect, LimitSignin, LimitAPI, LimitFeeds, LimitPages Rate
	LimitSiteEvents                                             Rate
	BlockAfter                                                  int
	BlockFor                                                    time.Duration
	ConnsPerAddress                                             int
	CollectInFlight                                             int
	// Security monitoring (PRODUCT §8): where alerts go, and what
	// /.well-known/security.txt says.
	AlertEmail        string
	AlertWebhook      string
	SecurityContact   []string
	SecurityPolicy    string
	SecurityLanguages []string
	// Metrics (PRODUCT §9.3): who may read /metrics on the public port
	// (a bearer token, client ranges; neither: nobody), and a loopback
	// port that serves only /metrics.
	MetricsToken  string
	MetricsRanges []netip.Prefix
	MetricsListen string
	// Data residency (PRODUCT §9.7): where this node, its PostgreSQL
	// database, the standby and the backups are, and where data may be.
	Region         string   // "": not declared (only on loopback)
	AllowedRegions []string // names, or prefixes ending in *
	DatabaseRegion string   // "": Region
	// The PostgreSQL standby (§9.4), watched for its replication lag.
	StandbyURL    string
	StandbyRegion string
	// JournalKeep: how long journal segments are kept after every event
	// in them was applied to a PostgreSQL event store, so that a fail-over
	// to a standby that had not received the last batches replays them.
	JournalKeep time.Duration
	// CollectorsFile admits the edge collectors (§9.5); "": none.
	CollectorsFile string
	// NATS JetStream (§9.5): where edges publish and the server consumes.
	NATSURL      string
	NATSStream   string
	NATSReplicas int
	// Backups (§9.6): off without BackupDir.
	BackupDir        string
	BackupRegion     string
	BackupKey        string   // file of the age identity the backups are encrypted to and drilled with
	BackupRecipients []string // more age recipients, e.g. an offline recovery key
	BackupEvery      time.Duration
	BackupKeep       Keep
}

// Keep is how many backups retention keeps: the newest of each of the
// last Daily days, Weekly ISO weeks and Monthly months.
type Keep struct{ Daily, Weekly, Monthly int }

// Setting describes one setting.
type Setting struct {
	Name    string
	Default string
	Help    string
	set     func(c *Config, v string) error
}

// Settings lists every setting; the README's configuration reference is
// generated from the same list by `fjord config help`.
var Settings = []Setting{
	{"listen", "127.0.0.1:8080", "address to serve on: HTTPS with tls-cert and tls-key or acme-domains; plain HTTP only on a loopback address (local use, or behind a TLS proxy on the same host)", func(c *Config, v string) error {
		if _, _, err := net.SplitHostPort(v); err != nil {
			return fmt.Errorf("want HOST:PORT: %v", err)
		}
		c.Listen = v
		return nil
	}},
	{"tls-cert", "", "PEM file of the TLS certificate (and its chain) for listen, read again when it changes; needs tls-key", func(c *Config, v string) error {
		c.TLSCert = v
		return nil
	}},
	{"tls-key", "", "PEM file of the certificate's private key (mode 0600)", func(c *Config, v string) error {
		c.TLSKey = v
		return nil
	}},
	{"acme-domains", "", "comma-separated domain names to get certificates for from Let's Encrypt (ACME; setting it accepts the CA's terms of service); instead of tls-cert and tls-key", func(c *Config, v string) error {
		c.ACMEDomains = nil
		for _, d := range strings.Split(v, ",") {
			d = strings.ToLower(strings.TrimSpace(d))
			if d == "" {
				continue
			}
			if !domainName(d) {
				return fmt.Errorf("%q is not a domain name a public CA issues certificates for (like analytics.example.com)", d)
			}
			c.ACMEDomains = append(c.ACMEDomains, d)
		}
		return nil
	}},
	{"acme-email", "", "e-mail address the ACME CA writes to about the certificates (expiry, problems); empty: none", func(c *Config, v string) error {
		if v != "" {
			a, err := netmail.ParseAddress(v)
			if err != nil || a.Address != v {
				return errors.New("want one plain e-mail address, e.g. ops@example.com")
			}
		}
		c.ACMEEmail = v
		return nil
	}},
	{"acme-cache", "", "directory where ACME keeps the account key and the certificates; empty: acme in the data dir", func(c *Config, v string) error {
		c.ACMECache = v
		return nil
	}},
	{"http-listen", "", "address of the plain-HTTP port (e.g. :80), which only redirects to HTTPS and answers ACME challenges; needs TLS; empty: none", func(c *Config, v string) error {
		if v != "" {
			if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
				return errors.New("want host:port or :port, e.g. :80")
			}
		}
		c.HTTPListen = v
		return nil
	}},
	{"data-dir", "data", "directory for the embedded databases, the journal and the control socket", func(c *Config, v string) error {
		if v == "" {
			return errors.New("must not be empty")
		}
		c.DataDir = v
		return nil
	}},
	{"demo", "false", "create demo sites with 90 days of traffic (on first start) and print where to look", func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		c.Demo = b
		return err
	}},
	{"database", "", "account store: a postgres:// URL; empty means SQLite in the data dir", func(c *Config, v string) error {
		if v != "" && !isPostgres(v) {
			return errors.New("want a postgres:// or postgresql:// URL, or empty for SQLite")
		}
		c.Database = v
		return nil
	}},
	{"events-database", "", "event store: a postgres:// URL; empty means DuckDB in the data dir, or the database URL when that is PostgreSQL", func(c *Config, v string) error {
		if v != "" && !isPostgres(v) {
			return errors.New("want a postgres:// or postgresql:// URL, or empty for DuckDB")
		}
		c.EventsDatabase = v
		return nil
	}},
	{"geoip-database", "", "MaxMind-format (.mmdb) database for country, region and city", func(c *Config, v string) error {
		c.GeoIPDatabase = v
		return nil
	}},
	{"trusted-proxies", "", "comma-separated CIDR ranges of reverse proxies whose X-Forwarded-For is believed; empty trusts none", func(c *Config, v string) error {
		ps, err := parsePrefixes(v)
		c.TrustedProxies = ps
		return err
	}},
	{"duckdb-memory-limit", "512MB", "memory limit of the embedded DuckDB event store", func(c *Config, v string) error {
		c.DuckDBMemoryLimit = v
		return nil
	}},
	{"duckdb-threads", "2", "threads of the embedded DuckDB event store", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 256 {
			return errors.New("want a whole number from 1 to 256")
		}
		c.DuckDBThreads = n
		return nil
	}},
	{"queue-size", "8192", "events waiting for the journal before collection answers 503", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1<<20 {
			return errors.New("want a whole number from 1 to 1048576")
		}
		c.QueueSize = n
		return nil
	}},
	{"disk-reserve", "64", "MiB the journal (an edge collector's spool) leaves free on its disk: below it, collection answers 503 (disk_full) until there is room again, so the databases beside it are not starved; 0: none", func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || n > 1<<20 {
			return errors.New("want a whole number of MiB from 0 to 1048576")
		}
		c.DiskReserve = n << 20
		return nil
	}},
	{"journal-keep", "1h", "with the event store on PostgreSQL, how long journal segments are kept after their events were applied, so that a fail-over to a standby that had not yet received them replays them from the journal (longer than the standby can fall behind); 0: delete at once", func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > 30*24*time.Hour {
			return errors.New("want a duration from 0 to 720h, e.g. 1h")
		}
		c.JournalKeep = d
		return nil
	}},
	{"collectors-file", "", "file of the edge collectors (fjord collect) that may forward events to this server and fetch its sites and salts: one line NAME SHA256-OF-TOKEN each, as `fjord collector add` prints; read again when it changes; empty: none", func(c *Config, v string) error {
		c.CollectorsFile = v
		return nil
	}},
	{"nats-url", "", "NATS server(s) with JetStream (nats://HOST:4222, comma-separated for a cluster; a token as nats://TOKEN@HOST): fjord serve consumes the events the edge collectors publish there, fjord collect publishes its spool there instead of to --main; empty: none", func(c *Config, v string) error {
		c.NATSURL = v
		return nil
	}},
	{"nats-stream", "FJORD_EVENTS", "the JetStream stream of the events (subject: the stream's name in lower case with dots, e.g. fjord.events)", func(c *Config, v string) error {
		if v == "" || strings.ContainsAny(v, ". *>") {
			return errors.New("want a stream name without dots, spaces or wildcards")
		}
		c.NATSStream = v
		return nil
	}},
	{"nats-replicas", "1", "copies of the stream in a NATS cluster (3 for a cluster that survives the loss of a node)", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 5 {
			return errors.New("want 1 to 5")
		}
		c.NATSReplicas = n
		return nil
	}},
	{"limit-collect", "50:500", "collection requests per client address: RATE:BURST, RATE a second with up to BURST at once (an IPv6 /64 counts as one address); off: no limit", rateSetting(func(c *Config) *Rate { return &c.LimitCollect })},
	{"limit-signin", "0.5:20", "sign-in, second-factor and reset requests per client address (RATE:BURST, or off)", rateSetting(func(c *Config) *Rate { return &c.LimitSignin })},
	{"limit-api", "10:100", "Stats API requests per client address (RATE:BURST, or off)", rateSetting(func(c *Config) *Rate { return &c.LimitAPI })},
	{"limit-feeds", "2:30", "datafeed requests per client address (RATE:BURST, or off)", rateSetting(func(c *Config) *Rate { return &c.LimitFeeds })},
	{"limit-pages", "20:200", "requests for pages (dashboard, administration, everything else) per client address (RATE:BURST, or off)", rateSetting(func(c *Config) *Rate { return &c.LimitPages })},
	{"limit-site-events", "2000:60000", "events collected per site, from all its visitors together (RATE:BURST, or off)", rateSetting(func(c *Config) *Rate { return &c.LimitSiteEvents })},
	{"block-after", "300", "refused requests of one client address within a minute that block it (a security event); 0: never block", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1_000_000 {
			return errors.New("want a whole number from 0 to 1000000")
		}
		c.BlockAfter = n
		return nil
	}},
	{"block-for", "10m", "how long a blocked address stays blocked, e.g. 10m or 1h", func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second || d > 7*24*time.Hour {
			return errors.New("want a duration from 1s to 168h, e.g. 10m")
		}
		c.BlockFor = d
		return nil
	}},
	{"conns-per-address", "64", "open connections of one client address (not counting trusted proxies); 0: no limit", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1_000_000 {
			return errors.New("want a whole number from 0 to 1000000")
		}
		c.ConnsPerAddress = n
		return nil
	}},
	{"collect-in-flight", "512", "collection requests served at once; beyond it collection answers 503 with Retry-After; 0: no limit", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1_000_000 {
			return errors.New("want a whole number from 0 to 1000000")
		}
		c.CollectInFlight = n
		return nil
	}},
	{"public-url", "", "the server's address as users reach it, for the links it hands out (https://analytics.example.com); empty: https:// (http:// without TLS) and the listen address, or the first of acme-domains", func(c *Config, v string) error {
		if v == "" {
			c.PublicURL = ""
			return nil
		}
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return errors.New("want a URL like https://analytics.example.com (scheme and host only)")
		}
		c.PublicURL = strings.TrimSuffix(v, "/")
		return nil
	}},
	{"audit-key", "", "file holding the Ed25519 key that signs the audit log's checkpoints (make one with fjord audit keygen FILE); empty: no checkpoints, so a cut tail of the log cannot be detected", func(c *Config, v string) error {
		c.AuditKey = v
		return nil
	}},
	{"staff-ranges", "", "comma-separated CIDR ranges (the operator's VPN) the staff console at /staff/ answers from; from anywhere else, and when empty, every /staff/ path is 404", func(c *Config, v string) error {
		ps, err := parsePrefixes(v)
		c.StaffRanges = ps
		return err
	}},
	{"staff-training-days", "92", "days a staff member's security and privacy training counts (at most 92, one quarter); after it, no access to customer accounts", func(c *Config, v string) error {
		d, err := wholeDays(v, 92)
		c.StaffTraining = d
		return err
	}},
	{"staff-grant-hours", "24", "the longest access grant of staff other than consultants, in hours (at most 24)", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 24 {
			return errors.New("want a whole number of hours from 1 to 24")
		}
		c.StaffGrant = time.Duration(n) * time.Hour
		return nil
	}},
	{"staff-consultant-days", "14", "the longest access grant of a consultant, in days (at most 14)", func(c *Config, v string) error {
		d, err := wholeDays(v, 14)
		c.StaffConsultantGrant = d
		return err
	}},
	{"smtp-host", "", "SMTP server for the mail Fjord sends (sign-in notices, password reset links); empty: no mail", func(c *Config, v string) error {
		if strings.ContainsAny(v, " /@") {
			return errors.New("want a host name or address")
		}
		if _, err := netip.ParseAddr(strings.Trim(v, "[]")); strings.Contains(v, ":") && err != nil {
			return errors.New("want a host name or address without a port (the port is smtp-port)")
		}
		c.SMTPHost = v
		return nil
	}},
	{"smtp-port", "", "port of the SMTP server; empty: 587 for starttls, 465 for tls, 25 for none", func(c *Config, v string) error {
		c.SMTPPort = 0
		if v == "" {
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 65535 {
			return errors.New("want a port from 1 to 65535")
		}
		c.SMTPPort = n
		return nil
	}},
	{"smtp-user", "", "user name for SMTP authentication; empty: none", func(c *Config, v string) error {
		c.SMTPUser = v
		return nil
	}},
	{"smtp-password", "", "password for SMTP authentication (better in the environment or the config file than on the command line)", func(c *Config, v string) error {
		c.SMTPPassword = v
		return nil
	}},
	{"smtp-tls", "starttls", "starttls (required, not opportunistic), tls (implicit TLS), or none (plain text, only to a loopback address)", func(c *Config, v string) error {
		switch v {
		case mail.StartTLS, mail.ImplicitTLS, mail.NoTLS:
			c.SMTPTLS = v
			return nil
		}
		return errors.New("want starttls, tls or none")
	}},
	{"mail-from", "", "the From address of Fjord's mail, e.g. \"Fjord <fjord@example.com>\"", func(c *Config, v string) error {
		if v != "" {
			if _, err := netmail.ParseAddress(v); err != nil {
				return errors.New("want an e-mail address, e.g. fjord@example.com or \"Fjord <fjord@example.com>\"")
			}
		}
		c.MailFrom = v
		return nil
	}},
	{"bounce-address", "", "base of the envelope senders of e-mail reports, e.g. bounces@mail.example.com: each mail goes out from bounces+TOKEN@mail.example.com (VERP), which must reach bounce-listen or the IMAP mailbox; empty: bounces are not read", func(c *Config, v string) error {
		if v != "" {
			a, err := netmail.ParseAddress(v)
			if err != nil || a.Address != v || strings.Contains(v[:strings.LastIndexByte(v, '@')], "+") {
				return errors.New("want one plain e-mail address without + in its local part, e.g. bounces@mail.example.com")
			}
		}
		c.BounceAddress = v
		return nil
	}},
	{"bounce-listen", "", "address of the built-in SMTP receiver of bounces, e.g. :25 or 127.0.0.1:2525 (needs bounce-address); empty: none", func(c *Config, v string) error {
		if v != "" {
			if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
				return errors.New("want host:port or :port, e.g. :25")
			}
		}
		c.BounceListen = v
		return nil
	}},
	{"imap-addr", "", "host:port of an IMAP server whose mailbox receives the bounces (needs bounce-address); empty: none", func(c *Config, v string) error {
		if v != "" {
			if host, port, err := net.SplitHostPort(v); err != nil || host == "" || port == "" {
				return errors.New("want host:port, e.g. imap.example.com:993")
			}
		}
		c.IMAPAddr = v
		return nil
	}},
	{"imap-user", "", "IMAP user name", func(c *Config, v string) error { c.IMAPUser = v; return nil }},
	{"imap-password", "", "IMAP password (better in the environment or the config file than on the command line)", func(c *Config, v string) error {
		c.IMAPPassword = v
		return nil
	}},
	{"imap-tls", "tls", "tls (implicit TLS, port 993), starttls, or none (plain text, only to a loopback address)", func(c *Config, v string) error {
		switch v {
		case "tls", "starttls", "none":
			c.IMAPTLS = v
			return nil
		}
		return errors.New("want tls, starttls or none")
	}},
	{"imap-mailbox", "INBOX", "the IMAP mailbox that receives the bounces", func(c *Config, v string) error { c.IMAPMailbox = v; return nil }},
	{"alert-email", "", "e-mail address that receives every security alert (needs smtp-host); empty: none", func(c *Config, v string) error {
		if v != "" {
			a, err := netmail.ParseAddress(v)
			if err != nil || a.Name != "" || strings.ContainsAny(v, "<>") {
				return errors.New("want one plain e-mail address, e.g. security@example.com")
			}
		}
		c.AlertEmail = v
		return nil
	}},
	{"alert-webhook", "", "URL that receives every security alert as a JSON POST (https, or http to a loopback address); empty: none", func(c *Config, v string) error {
		if v != "" {
			u, err := url.Parse(v)
			if err != nil || u.Host == "" || u.User != nil || !(u.Scheme == "https" || u.Scheme == "http" && mail.IsLoopback(u.Hostname())) {
				return errors.New("want an https:// URL (http:// only to a loopback address), without user:password@")
			}
		}
		c.AlertWebhook = v
		return nil
	}},
	{"security-contact", "", "comma-separated mailto: or https: URIs where security issues are reported, for /.well-known/security.txt (RFC 9116); empty: no security.txt", func(c *Config, v string) error {
		c.SecurityContact = nil
		for _, f := range strings.Split(v, ",") {
			f = strings.TrimSpace(f)
			if f == "" {
				continue
			}
			if err := CheckContactURI(f); err != nil {
				return err
			}
			c.SecurityContact = append(c.SecurityContact, f)
		}
		return nil
	}},
	{"security-policy", "", "https: URL of the security policy (vulnerability disclosure), for security.txt", func(c *Config, v string) error {
		if v != "" {
			if u, err := url.Parse(v); err != nil || u.Scheme != "https" || u.Host == "" || strings.ContainsAny(v, " \t\r\n") {
				return errors.New("want an https:// URL")
			}
		}
		c.SecurityPolicy = v
		return nil
	}},
	{"security-languages", "", "comma-separated language tags of security reports Fjord's operator reads, e.g. en, fi; for security.txt", func(c *Config, v string) error {
		c.SecurityLanguages = nil
		for _, f := range strings.Split(v, ",") {
			f = strings.TrimSpace(f)
			if f == "" {
				continue
			}
			if !languageTag(f) {
				return fmt.Errorf("%q is not a language tag like en or pt-BR", f)
			}
			c.SecurityLanguages = append(c.SecurityLanguages, f)
		}
		return nil
	}},
	{"log-level", "info", "debug, info, warn or error", func(c *Config, v string) error {
		switch v {
		case "debug", "info", "warn", "error":
			c.LogLevel = v
			return nil
		}
		return errors.New("want debug, info, warn or error")
	}},
	{"metrics-token", "", "bearer token that /metrics on the public port answers (Authorization: Bearer TOKEN), at least 32 characters of A-Z a-z 0-9 - . _ ~ + /; empty: no token", func(c *Config, v string) error {
		if v != "" {
			if len(v) < 32 {
				return errors.New("shorter than 32 characters: too guessable (make one with: openssl rand -hex 32)")
			}
			if len(v) > 200 || strings.Trim(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~+/") != "" {
				return errors.New("want at most 200 characters of A-Z a-z 0-9 - . _ ~ + / (what a bearer token may hold)")
			}
		}
		c.MetricsToken = v
		return nil
	}},
	{"metrics-ranges", "", "comma-separated CIDR ranges of Prometheus servers that may read /metrics on the public port without the token; empty: none", func(c *Config, v string) error {
		ps, err := parsePrefixes(v)
		c.MetricsRanges = ps
		return err
	}},
	{"metrics-listen", "", "loopback address (127.0.0.1:9090, [::1]:9090) of a port that serves only /metrics, without token or ranges; empty: none", func(c *Config, v string) error {
		if v != "" {
			host, port, err := net.SplitHostPort(v)
			if err != nil || port == "" {
				return errors.New("want HOST:PORT on a loopback address, e.g. 127.0.0.1:9090")
			}
			if a, err := netip.ParseAddr(host); host != "localhost" && (err != nil || !a.IsLoopback()) {
				return errors.New("not a loopback address: the metrics port has no guard, so it may listen only on 127.0.0.1, ::1 or localhost (use metrics-token or metrics-ranges for /metrics on the public port)")
			}
		}
		c.MetricsListen = v
		return nil
	}},
	{"region", "", "the region this node and its data dir are in, e.g. eu-fi-helsinki (lower-case letters, digits, hyphens); must match allowed-regions; required unless listen is a loopback address", optionalRegion(func(c *Config) *string { return &c.Region })},
	{"allowed-regions", "eu-*", "comma-separated regions where data may be: names, or prefixes ending in * (the default: every region named eu-...)", func(c *Config, v string) error {
		c.AllowedRegions = nil
		for _, r := range strings.Split(v, ",") {
			r = strings.TrimSpace(r)
			if err := regionName(strings.TrimSuffix(r, "*")); err != nil {
				return err
			}
			c.AllowedRegions = append(c.AllowedRegions, r)
		}
		return nil
	}},
	{"database-region", "", "the region of the PostgreSQL server(s) of database and events-database (only with PostgreSQL); empty: the same as region", optionalRegion(func(c *Config) *string { return &c.DatabaseRegion })},
	{"standby-url", "", "postgres:// URL of the streaming-replication standby of the database, whose replication lag /readyz and /metrics report; empty: none", func(c *Config, v string) error {
		if v != "" && !isPostgres(v) {
			return errors.New("want a postgres:// or postgresql:// URL")
		}
		c.StandbyURL = v
		return nil
	}},
	{"standby-region", "", "the region of the standby; required with standby-url, refused without it", optionalRegion(func(c *Config) *string { return &c.StandbyRegion })},
	{"backup-dir", "", "directory (local or mounted) where backups are stored; empty: no backups", func(c *Config, v string) error { c.BackupDir = v; return nil }},
	{"backup-region", "", "the region of backup-dir's storage; required with backup-dir, refused without it", optionalRegion(func(c *Config) *string { return &c.BackupRegion })},
	{"backup-key", "", "file of the age identity (mode 0600) the backups are encrypted to and their drills decrypt with (make one with fjord backup keygen FILE); required with backup-dir", func(c *Config, v string) error { c.BackupKey = v; return nil }},
	{"backup-recipients", "", "comma-separated age recipients (age1...) every backup is also encrypted to, e.g. an offline recovery key; empty: none", func(c *Config, v string) error {
		c.BackupRecipients = nil
		for _, r := range strings.Split(v, ",") {
			if r = strings.TrimSpace(r); r == "" {
				continue
			}
			if !strings.HasPrefix(r, "age1") || len(r) < 20 {
				return fmt.Errorf("%q is not an age recipient (age1...)", r)
			}
			c.BackupRecipients = append(c.BackupRecipients, r)
		}
		return nil
	}},
	{"backup-every", "24h", "how often fjord serve makes a backup (with backup-dir), e.g. 24h or 6h; off: only fjord backup create", func(c *Config, v string) error {
		if v == "off" {
			c.BackupEvery = 0
			return nil
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Hour {
			return errors.New("want a duration of at least 1h, e.g. 24h, or off")
		}
		c.BackupEvery = d
		return nil
	}},
	{"backup-keep", "7:4:12", "retention DAILY:WEEKLY:MONTHLY: the newest backup of each of the last DAILY days, WEEKLY weeks and MONTHLY months is kept, the rest deleted", func(c *Config, v string) error {
		k, err := ParseKeep(v)
		c.BackupKeep = k
		return err
	}},
}

// ParseKeep reads DAILY:WEEKLY:MONTHLY, each 0 to 1000, not all 0.
func ParseKeep(v string) (Keep, error) {
	parts := strings.Split(v, ":")
	var n [3]int
	if len(parts) != 3 {
		return Keep{}, errors.New("want DAILY:WEEKLY:MONTHLY, e.g. 7:4:12")
	}
	for i, p := range parts {
		x, err := strconv.Atoi(p)
		if err != nil || x < 0 || x > 1000 {
			return Keep{}, errors.New("want DAILY:WEEKLY:MONTHLY, each a whole number from 0 to 1000, e.g. 7:4:12")
		}
		n[i] = x
	}
	if n == [3]int{} {
		return Keep{}, errors.New("0:0:0 would delete every backup: keep at least one")
	}
	return Keep{n[0], n[1], n[2]}, nil
}

// regionName: lower-case letters, digits and hyphens, starting with a
// letter, e.g. eu-fi-helsinki.
func regionName(v string) error {
	if v == "" || len(v) > 63 || v[0] < 'a' || v[0] > 'z' || strings.Trim(v, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
		return fmt.Errorf("region %q: want lower-case letters, digits and hyphens, starting with a letter, e.g. eu-fi-helsinki", v)
	}
	return nil
}

// optionalRegion sets a region setting that may be empty.
func optionalRegion(field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error {
		if v != "" {
			if err := regionName(v); err != nil {
				return err
			}
		}
		*field(c) = v
		return nil
	}
}

// parsePrefixes reads a comma-separated list of CIDR ranges.
func parsePrefixes(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := ParsePrefix(f)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// wholeDays reads a number of days from 1 to max.
func wholeDays(v string, max int) (time.Duration, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, fmt.Errorf("want a whole number of days from 1 to %d", max)
	}
	return time.Duration(n) * 24 * time.Hour, nil
}

// CheckContactURI: a security contact is a mailto: URI with one plain
// address, or an https: URL (RFC 9116 §2.5.3).
func CheckContactURI(s string) error {
	shown := s
	if len(shown) > 80 {
		shown = shown[:80] + "…"
	}
	if strings.ContainsAny(s, " \t\r\n<>\"") {
		return fmt.Errorf("contact %q: want mailto:security@example.com or https://example.com/security, without spaces or quotes", shown)
	}
	switch {
	case strings.HasPrefix(s, "mailto:"):
		a, err := netmail.ParseAddress(strings.TrimPrefix(s, "mailto:"))
		if err != nil || a.Name != "" {
			return fmt.Errorf("contact %q: the mailto: address is not an e-mail address", shown)
		}
	case strings.HasPrefix(s, "https://"):
		u, err := url.Parse(s)
		if err != nil || u.Host == "" || u.User != nil {
			return fmt.Errorf("contact %q: not a usable https:// URL", shown)
		}
	default:
		return fmt.Errorf("contact %q: want a mailto: or https: URI (e.g. mailto:security@example.com)", shown)
	}
	return nil
}

// languageTag: a simple BCP 47 tag (a 2-3 letter language, then up to
// three subtags of 1-8 letters or digits), enough for security.txt.
func languageTag(s string) bool {
	parts := strings.Split(s, "-")
	if len(parts) > 4 || len(parts[0]) < 2 || len(parts[0]) > 3 {
		return false
	}
	for i, p := range parts {
		if len(p) < 1 || len(p) > 8 {
			return false
		}
		for _, r := range p {
			letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
			if !letter && (i == 0 || r < '0' || r > '9') {
				return false
			}
		}
	}
	return true
}

// ParsePrefix parses a CIDR range, or a single address as its /32 or /128.
func ParsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR range", s)
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR range", s)
	}
	return p.Masked(), nil
}

func isPostgres(v string) bool {
	return strings.HasPrefix(v, "postgres://") || strings.HasPrefix(v, "postgresql://")
}

// EnvName is the environment variable of a setting.
func EnvName(name string) string {
	return "FJORD_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Rate is a token bucket: PerSecond a second, up to Burst at once; the
// zero Rate is off.
type Rate struct {
	PerSecond float64
	Burst     int
}

// ParseRate reads "RATE:BURST" (50:500, 0.5:20) or "off".
func ParseRate(v string) (Rate, error) {
	if v == "off" {
		return Rate{}, nil
	}
	r, b, ok := strings.Cut(v, ":")
	per, err1 := strconv.ParseFloat(r, 64)
	burst, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || !(per >= 0.001 && per <= 1e6) || burst < 1 || burst > 10_000_000 {
		return Rate{}, errors.New("want RATE:BURST, e.g. 50:500 (RATE a second from 0.001 to 1000000, BURST a whole number from 1), or off")
	}
	return Rate{PerSecond: per, Burst: burst}, nil
}

func rateSetting(field func(*Config) *Rate) func(*Config, string) error {
	return func(c *Config, v string) error {
		r, err := ParseRate(v)
		*field(c) = r
		return err
	}
}

// removedSettings are settings that no longer exist, with what took
// their place.
var removedSettings = map[string]string{
	"stats-api-token": "the Stats API takes API keys now (fjord apikey create, or /keys in the dashboard)",
}

// Flags registers every setting on fs (plus --config) and returns a
// function that, after fs.Parse, builds the Config.
func Flags(fs *flag.FlagSet) func() (*Config, error) {
	for _, s := range Settings {
		help := s.Help + " (env " + EnvName(s.Name) + ")"
		// Values are read back through fs.Visit, so only explicitly given
		// flags override the file and the environment.
		if s.Default == "false" {
			fs.Bool(s.Name, false, help)
			continue
		}
		fs.String(s.Name, s.Default, help)
	}
	cfgFile := fs.String("config", "", "config file with one 'name = value' per line (env FJORD_CONFIG)")
	return func() (*Config, error) {
		set := map[string]string{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = f.Value.String() })
		path := *cfgFile
		if _, ok := set["config"]; !ok {
			path = os.Getenv("FJORD_CONFIG")
		}
		return Load(path, set, os.Getenv)
	}
}

// Load builds a Config from defaults, the file at path (if any), the
// environment (getenv) and the flags that were given explicitly.
func Load(path string, flags map[string]string, getenv func(string) string) (*Config, error) {
	c := &Config{ConfigFile: path}
	values := map[string]string{}
	for _, s := range Settings {
		values[s.Name] = s.Default
	}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config file: %w", err)
		}
		file, err := ParseFile(data)
		if err != nil {
			return nil, fmt.Errorf("config file %s: %w", path, err)
		}
		for k, v := range file {
			values[k] = v
		}
	}
	for _, s := range Settings {
		if v := getenv(EnvName(s.Name)); v != "" {
			values[s.Name] = v
		}
	}
	for k, v := range flags {
		if k != "config" {
			values[k] = v
		}
	}
	var errs []error
	for _, s := range Settings {
		if err := s.set(c, values[s.Name]); err != nil {
			shown := fmt.Sprintf("%q", values[s.Name])
			switch s.Name {
			case "database", "events-database", "standby-url", "smtp-password", "imap-password", "metrics-token", "nats-url":
				shown = "(value hidden: it may hold a secret)"
			}
			errs = append(errs, fmt.Errorf("%s = %s: %w", s.Name, shown, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	// every problem of both at once: a node to be moved to TLS usually
	// needs its region declared too
	if err := errors.Join(c.checkTLS(), c.checkResidency()); err != nil {
		return nil, err
	}
	if c.SMTPHost != "" {
		if err := c.Mail().Validate(); err != nil {
			return nil, fmt.Errorf("mail: %w", err)
		}
	}
	if c.BounceAddress != "" && c.SMTPHost == "" {
		return nil, errors.New("bounce-address is set but smtp-host is empty: bounces come back only to mail that was sent")
	}
	if (c.BounceListen != "" || c.IMAPAddr != "") && c.BounceAddress == "" {
		return nil, errors.New("bounce-listen or imap-addr is set but bounce-address is empty: bounces are recognised by their VERP address")
	}
	if c.BackupDir != "" && c.BackupKey == "" {
		return nil, errors.New("backup-dir is set but backup-key is empty: backups are encrypted, and drilled, with that key (make one with fjord backup keygen FILE)")
	}
	if c.BackupDir == "" && (c.BackupKey != "" || len(c.BackupRecipients) > 0) {
		return nil, errors.New("backup-key or backup-recipients is set but backup-dir is empty: set where backups go")
	}
	return c, nil
}

// checkTLS: HTTPS unless listen is loopback, from one source only, and a
// plain-HTTP port only in front of HTTPS.
func (c *Config) checkTLS() error {
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("tls-cert and tls-key go together: set both (the certificate and its private key) or neither")
	}
	if c.TLSCert != "" && len(c.ACMEDomains) > 0 {
		return errors.New("tls-cert and acme-domains are both set: certificates come from files or from ACME, not both; remove one")
	}
	if len(c.ACMEDomains) == 0 && (c.ACMEEmail != "" || c.ACMECache != "") {
		return errors.New("acme-email or acme-cache is set but acme-domains is empty: set acme-domains, or remove them")
	}
	if !c.TLSOn() && !IsLoopbackAddr(c.Listen) {
		return fmt.Errorf("listen %q is not a loopback address: set tls-cert and tls-key, or acme-domains (plain HTTP only on loopback, e.g. behind a TLS proxy on the same host)", c.Listen)
	}
	if c.HTTPListen != "" && !c.TLSOn() {
		return fmt.Errorf("http-listen %q is set but TLS is not: the plain-HTTP port only redirects to HTTPS; set tls-cert and tls-key, or acme-domains, or remove http-listen", c.HTTPListen)
	}
	return nil
}

// TLSOn reports whether listen serves HTTPS.
func (c *Config) TLSOn() bool { return c.TLSCert != "" || len(c.ACMEDomains) > 0 }

// ACMECacheDir is where ACME keeps its account key and certificates.
func (c *Config) ACMECacheDir() string {
	if c.ACMECache != "" {
		return c.ACMECache
	}
	return filepath.Join(c.DataDir, "acme")
}

// IsLoopbackAddr reports whether a host:port listens on loopback only
// ("localhost", 127.0.0.0/8, ::1); an empty host (":8080") is every
// interface.
func IsLoopbackAddr(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	return err == nil && host != "" && mail.IsLoopback(host)
}

// domainName: a name a public CA would issue for: letters, digits and
// hyphens in dot-separated labels, at least two labels, not an address.
func domainName(s string) bool {
	if len(s) > 253 || !strings.Contains(s, ".") || net.ParseIP(s) != nil {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// MailOn reports whether mail is configured (smtp-host is set).
func (c *Config) MailOn() bool { return c.SMTPHost != "" }

// Mail is the SMTP configuration of the mail settings.
func (c *Config) Mail() mail.Config {
	return mail.Config{Host: strings.Trim(c.SMTPHost, "[]"), Port: c.SMTPPort, Username: c.SMTPUser,
		Password: c.SMTPPassword, TLS: c.SMTPTLS, From: c.MailFrom}
}

// IMAP is the bounce mailbox's configuration (without its Accept, which
// the server gives).
func (c *Config) IMAP() inbound.IMAPConfig {
	return inbound.IMAPConfig{Addr: c.IMAPAddr, TLS: c.IMAPTLS, Username: c.IMAPUser, Password: c.IMAPPassword, Mailbox: c.IMAPMailbox}
}

// ParseFile reads 'name = value' lines; '#' starts a comment line; values
// may be double-quoted. Unknown names and repeated names are errors, so a
// typo never silently falls back to a default.
func ParseFile(data []byte) (map[string]string, error) {
	if !utf8.Valid(data) {
		return nil, errors.New("not valid UTF-8")
	}
	known := map[string]bool{}
	for _, s := range Settings {
		known[s.Name] = true
	}
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: want 'name = value'", n)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if why, ok := removedSettings[k]; ok {
			return nil, fmt.Errorf("line %d: %q was removed: %s", n, k, why)
		}
		if !known[k] {
			return nil, fmt.Errorf("line %d: unknown setting %q", n, k)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("line %d: %q set twice", n, k)
		}
		if strings.HasPrefix(v, `"`) {
			uq, err := strconv.Unquote(v)
			if err != nil {
				return nil, fmt.Errorf("line %d: bad quoted value: %v", n, err)
			}
			v = uq
		}
		out[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", n+1, err)
	}
	return out, nil
}

// AccountsURL is what the account store opens: a postgres URL or a file.
func (c *Config) AccountsURL() string {
	if c.Database != "" {
		return c.Database
	}
	return filepath.Join(c.DataDir, "accounts.db")
}

// EventsURL is what the event store opens.
func (c *Config) EventsURL() string {
	switch {
	case c.EventsDatabase != "":
		return c.EventsDatabase
	case c.Database != "":
		return c.Database
	}
	return filepath.Join(c.DataDir, "events.duckdb")
}

// IsPostgres reports whether a store URL selects PostgreSQL.
func IsPostgres(url string) bool { return isPostgres(url) }

// SocketPath is the control socket of a server on this data dir.
func (c *Config) SocketPath() string { return filepath.Join(c.DataDir, "fjord.sock") }

// NATSSubject is the subject of the events' stream.
func (c *Config) NATSSubject() string {
	return strings.ToLower(strings.ReplaceAll(c.NATSStream, "_", "."))
}

// JournalDir is where the write-ahead journal lives.
func (c *Config) JournalDir() string { return filepath.Join(c.DataDir, "journal") }
