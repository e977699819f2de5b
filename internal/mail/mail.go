// Package mail sends Fjord's mail over SMTP: sign-in notices and one-time
// links now, e-mail reports later (PRODUCT §6). A Sender sends one
// message per connection; an Outbox runs mail work in the background, so
// that a slow SMTP server never delays an answer to a browser.
package mail

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// TLS modes of the connection to the SMTP server.
const (
	// StartTLS: connect in plain text and upgrade with STARTTLS, which the
	// server must offer (the default; submission on port 587).
	StartTLS = "starttls"
	// ImplicitTLS: TLS from the first byte (port 465).
	ImplicitTLS = "tls"
	// NoTLS: plain text, allowed only to a loopback address (a relay on
	// the same machine, or a test server).
	NoTLS = "none"
)

// Config is how to reach the SMTP server and whom mail is from.
type Config struct {
	Host     string // host name or address of the SMTP server
	Port     int    // 0: 587 for starttls, 465 for tls, 25 for none
	Username string // empty: no SMTP authentication
	Password string
	TLS      string // StartTLS (also when empty), ImplicitTLS or NoTLS
	From     string // the From address, e.g. "Fjord <fjord@example.com>"
	// TLSConfig, when set, replaces the system's trust roots (a private
	// CA, or a test server's certificate); the server name is Host.
	TLSConfig *tls.Config
	Timeout   time.Duration // per connection; 0 is 30 seconds
}

func (c Config) mode() string {
	if c.TLS == "" {
		return StartTLS
	}
	return c.TLS
}

// Addr is host:port of the SMTP server, with the mode's default port.
func (c Config) Addr() string {
	port := c.Port
	if port == 0 {
		switch c.mode() {
		case ImplicitTLS:
			port = 465
		case NoTLS:
			port = 25
		default:
			port = 587
		}
	}
	return net.JoinHostPort(c.Host, strconv.Itoa(port))
}

// Validate says what is wrong with a configuration, naming the setting.
// It never repeats the password.
func (c Config) Validate() error {
	var errs []error
	if c.Host == "" {
		errs = append(errs, errors.New("smtp-host is empty"))
	}
	if c.Port < 0 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("smtp-port %d is not a port (1 to 65535)", c.Port))
	}
	switch c.mode() {
	case StartTLS, ImplicitTLS:
	case NoTLS:
		if c.Host != "" && !IsLoopback(c.Host) {
			errs = append(errs, fmt.Errorf("smtp-tls = none sends mail (and any SMTP password) in plain text, which is allowed only to a loopback address, and smtp-host %q is not one: use starttls or tls", c.Host))
		}
	default:
		errs = append(errs, fmt.Errorf("smtp-tls %q: want starttls, tls or none", c.TLS))
	}
	if c.Password != "" && c.Username == "" {
		errs = append(errs, errors.New("smtp-password is set but smtp-user is empty"))
	}
	if c.From == "" {
		errs = append(errs, errors.New("mail-from is empty: mail needs a sender address"))
	} else if _, err := mail.ParseAddress(c.From); err != nil {
		errs = append(errs, fmt.Errorf("mail-from %q is not an e-mail address (want fjord@example.com or \"Fjord <fjord@example.com>\")", c.From))
	}
	return errors.Join(errs...)
}

// IsLoopback reports whether host is "localhost" or a loopback address.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && a.IsLoopback()
}

// Message is one mail to one recipient: plain text, and optionally HTML
// as its alternative, with the HTML's inline images and attachments.
type Message struct {
	To, Subject, Text, HTML string
	// EnvelopeFrom is the SMTP MAIL FROM (the VERP bounce address);
	// empty: the From address.
	EnvelopeFrom string
	// Headers are extra header fields (e.g. List-Unsubscribe,
	// List-Unsubscribe-Post, List-Id); a name or value with CR or LF is
	// refused with an error naming the header, and so are values that are
	// not printable ASCII and the fields Send writes itself (From, To,
	// Subject, Date, Message-ID, Content-*, ...).
	Headers []Header
	// Inline parts are referenced from HTML as "cid:"+ContentID (a chart
	// image) and need HTML; Attachments are files (a CSV) and need a Name.
	Inline      []Part
	Attachments []Part
}

// Sender sends messages through one SMTP server.
type Sender struct {
	cfg  Config
	from *mail.Address
}

// New checks cfg and returns a Sender for it; it does not connect.
func New(cfg Config) (*Sender, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	from, _ := mail.ParseAddress(cfg.From)
	return &Sender{cfg: cfg, from: from}, nil
}

// Addr is the SMTP server's host:port.
func (s *Sender) Addr() string { return s.cfg.Addr() }

func (s *Sender) timeout() time.Duration {
	if s.cfg.Timeout <= 0 {
		return 30 * time.Second
	}
	return s.cfg.Timeout
}

func (s *Sender) client() (*gomail.Client, error) {
	host, portStr, _ := net.SplitHostPort(s.cfg.Addr())
	port, _ := strconv.Atoi(portStr)
	timeout := s.timeout()
	tc := &tls.Config{}
	if s.cfg.TLSConfig != nil {
		tc = s.cfg.TLSConfig.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	if tc.MinVersion < tls.VersionTLS12 {
		tc.MinVersion = tls.VersionTLS12
	}
	opts := []gomail.Option{gomail.WithPort(port), gomail.WithTimeout(timeout), gomail.WithTLSConfig(tc)}
	switch s.cfg.mode() {
	case ImplicitTLS:
		opts = append(opts, gomail.WithSSL())
	case NoTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if s.cfg.Username != "" {
		auth := gomail.SMTPAuthAutoDiscover // the strongest the server offers
		if s.cfg.mode() == NoTLS {
			auth = gomail.SMTPAuthPlainNoEnc // loopback only, see Validate
		}
		opts = append(opts, gomail.WithSMTPAuth(auth), gomail.WithUsername(s.cfg.Username), gomail.WithPassword(s.cfg.Password))
	}
	return gomail.NewClient(host, opts...)
}

// Send delivers m to the SMTP server. A message that cannot be written
// (a bad header, part or address) is refused before connecting. Its error
// says what failed at which server; it never holds the SMTP password,
// nor the recipient's address (so it can be logged as it is), but keeps
// the SMTP reply code: see IsTemporary and ReplyCode.
func (s *Sender) Send(ctx context.Context, m Message) error {
	to, err := mail.ParseAddress(m.To)
	if err != nil || strings.ContainsAny(m.To, "\r\n") {
		return errors.New("mail: the recipient is not an e-mail address")
	}
	envFrom := s.from.Address
	if m.EnvelopeFrom != "" {
		a, err := mail.ParseAddress(m.EnvelopeFrom)
		if err != nil || strings.ContainsAny(m.EnvelopeFrom, "\r\n") || a.Name != "" {
			return errors.New("mail: the envelope-from is not a bare e-mail address")
		}
		envFrom = a.Address
	}
	raw, err := compose(m, envelope{from: s.from, to: to, date: time.Now(), messageID: s.messageID()})
	if err != nil {
		return err
	}
	c, err := s.client()
	if err == nil {
		err = s.deliver(ctx, c, envFrom, to.Address, raw)
	}
	if err != nil {
		text := s.scrub(err.Error(), m.To)
		if m.EnvelopeFrom != "" { // a VERP address may encode the recipient
			text = ReplaceFold(text, envFrom, "(envelope-from)")
		}
		return &sendError{
			text: fmt.Sprintf("mail: sending through %s: %s", s.cfg.Addr(), text),
			code: replyCode(err),
			temp: isTemporary(err),
		}
	}
	return nil
}

// stepTimeout is the connection's timeout, or less when ctx ends sooner.
func (s *Sender) stepTimeout(ctx context.Context) time.Duration {
	d := s.timeout()
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		d = time.Until(dl)
	}
	return d
}

// messageID is a new Message-ID: random, at the From address's domain
// (the machine's host name may be a container's, or "localhost").
func (s *Sender) messageID() string {
	domain := s.from.Address[strings.LastIndexByte(s.from.Address, '@')+1:]
	return strings.ToLower(rand.Text()) + "@" + domain
}

// deliver runs one SMTP transaction for raw. go-mail connects (TLS,
// authentication); the transaction is ours, since go-mail's Msg cannot
// carry the MIME structure compose writes.
func (s *Sender) deliver(ctx context.Context, c *gomail.Client, from, to string, raw []byte) error {
	sc, err := c.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return fmt.Errorf("connecting: %w", err)
	}
	defer func() {
		// QUIT's answer does not matter: the message was taken or not
		// already; Close ends the connection when QUIT could not
		c.CloseWithSMTPClient(sc)
		sc.Close()
	}()
	// the connection's deadline was set when dialling: the commands and
	// then the message each get the whole timeout again. ctx ends the
	// transaction only by its deadline, as go-mail's sending did.
	sc.UpdateDeadline(s.stepTimeout(ctx))
	if err := sc.Mail((&mail.Address{Address: from}).String()); err != nil {
		return fmt.Errorf("MAIL FROM: %w", err)
	}
	if err := sc.Rcpt((&mail.Address{Address: to}).String()); err != nil {
		return fmt.Errorf("RCPT TO: %w", err)
	}
	w, err := sc.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	sc.UpdateDeadline(s.stepTimeout(ctx))
	if _, err := w.Write(raw); err != nil {
		return fmt.Errorf("writing the message: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("end of DATA: %w", err)
	}
	return nil
}

// Probe connects, says hello, starts TLS and authenticates as Send would,
// then quits without sending: what `fjord config check` asks.
func (s *Sender) Probe(ctx context.Context) error {
	c, err := s.client()
	if err == nil {
		err = c.DialWithContext(ctx)
	}
	if err == nil {
		err = c.Close()
	}
	if err != nil {
		return fmt.Errorf("SMTP server %s (smtp-tls %s): %s", s.cfg.Addr(), s.cfg.mode(), s.scrub(err.Error(), ""))
	}
	return nil
}

// scrub removes the password and the recipient from an error's text.
func (s *Sender) scrub(text, to string) string {
	if s.cfg.Password != "" {
		text = strings.ReplaceAll(text, s.cfg.Password, "(password)")
	}
	if to != "" {
		if a, err := mail.ParseAddress(to); err == nil {
			text = ReplaceFold(text, a.Address, "(recipient)")
		}
		text = ReplaceFold(text, to, "(recipient)")
	}
	return text
}

// ReplaceFold replaces every case-insensitive occurrence of old (ASCII
// folding, as e-mail addresses are compared in practice).
func ReplaceFold(s, old, repl string) string {
	if old == "" {
		return s
	}
	lo, lold := strings.ToLower(s), strings.ToLower(old)
	if len(lo) != len(s) {
		return strings.ReplaceAll(s, old, repl)
	}
	var b strings.Builder
	for {
		i := strings.Index(lo, lold)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		b.WriteString(repl)
		s, lo = s[i+len(old):], lo[i+len(old):]
	}
}
