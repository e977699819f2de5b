package inbound

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"fjord/internal/mail"
)

// Bounds of one IMAP pass.
const (
	// imapMaxMessages: a pass reads at most this many messages (the
	// oldest); the rest wait for the next pass.
	imapMaxMessages = 500
	// imapMaxBytes: a larger message is deleted unread; no bounce of a
	// report is that large.
	imapMaxBytes = defaultMaxBytes
)

// IMAPConfig is how to reach the mailbox that bounce mail is delivered to.
type IMAPConfig struct {
	Addr string // host:port, or host with the TLS mode's default port
	// TLS: "tls" (implicit, port 993; the default), "starttls" (port 143)
	// or "none" (port 143, only to a loopback address).
	TLS       string
	TLSConfig *tls.Config // optional trust roots; the server name is Addr's host
	Username  string
	Password  string
	Mailbox   string // default "INBOX"
	// Accept says which address a message was for: the first address
	// that it takes of Delivered-To, X-Original-To, X-Envelope-To,
	// Envelope-To, To and Cc (every address in them, in that order).
	// Required.
	Accept func(rcpt string) bool
	// Timeout bounds connecting and each IMAP command, 0 = 1 minute. The
	// handler's time is not counted.
	Timeout time.Duration
}

func (c IMAPConfig) mode() string {
	if c.TLS == "" {
		return mail.ImplicitTLS
	}
	return c.TLS
}

func (c IMAPConfig) mailbox() string {
	if c.Mailbox == "" {
		return "INBOX"
	}
	return c.Mailbox
}

func (c IMAPConfig) timeout() time.Duration {
	if c.Timeout == 0 {
		return time.Minute
	}
	return c.Timeout
}

// hostPort splits Addr, adding the mode's default port when it has none.
func (c IMAPConfig) hostPort() (host, addr string, err error) {
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		// no port: all of Addr is the host (an IPv6 address in brackets or not)
		host, port = strings.Trim(c.Addr, "[]"), "993"
		if c.mode() != mail.ImplicitTLS {
			port = "143"
		}
	}
	if host == "" {
		return "", "", fmt.Errorf("imap-addr %q has no host", c.Addr)
	}
	if strings.Contains(host, ":") {
		if _, err := netip.ParseAddr(host); err != nil {
			return "", "", fmt.Errorf("imap-addr %q: want host:port, host, or [IPv6]:port", c.Addr)
		}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", "", fmt.Errorf("imap-addr %q: the port is not 1 to 65535", c.Addr)
	}
	return host, net.JoinHostPort(host, port), nil
}

// Validate says what is wrong with a configuration, naming the setting
// (imap-addr, imap-tls, imap-user, imap-password, imap-mailbox). It never
// repeats the password.
func (c IMAPConfig) Validate() error {
	var errs []error
	host, _, err := c.hostPort()
	if c.Addr == "" {
		errs = append(errs, errors.New("imap-addr is empty"))
	} else if err != nil {
		errs = append(errs, err)
	}
	switch c.mode() {
	case mail.ImplicitTLS, mail.StartTLS:
	case mail.NoTLS:
		if host != "" && !mail.IsLoopback(host) {
			errs = append(errs, fmt.Errorf("imap-tls = none sends the IMAP password in plain text, which is allowed only to a loopback address, and imap-addr %q is not one: use tls or starttls", c.Addr))
		}
	default:
		errs = append(errs, fmt.Errorf("imap-tls %q: want tls, starttls or none", c.TLS))
	}
	// IMAP cannot carry a line break or NUL in these
	const bad = "\r\n\x00"
	switch {
	case c.Username == "":
		errs = append(errs, errors.New("imap-user is empty"))
	case strings.ContainsAny(c.Username, bad):
		errs = append(errs, errors.New("imap-user holds a line break or NUL"))
	}
	switch {
	case c.Password == "":
		errs = append(errs, errors.New("imap-password is empty"))
	case strings.ContainsAny(c.Password, bad):
		errs = append(errs, errors.New("imap-password holds a line break or NUL"))
	}
	if strings.ContainsAny(c.Mailbox, bad) {
		errs = append(errs, errors.New("imap-mailbox holds a line break or NUL"))
	}
	if c.Accept == nil {
		// without it no message could be matched, and every one deleted
		errs = append(errs, errors.New("inbound: IMAPConfig.Accept is nil"))
	}
	if c.Timeout < 0 {
		errs = append(errs, errors.New("inbound: IMAPConfig.Timeout is negative"))
	}
	return errors.Join(errs...)
}

// PollIMAP makes one pass over the mailbox: it logs in, reads the oldest
// messages (at most 500 a pass, each at most 1 MiB: a larger one is
// deleted with a log line, never handled), and calls h for each with an
// accepted recipient. Messages h took (nil error) and messages for no
// accepted address are flagged \Deleted and expunged; messages h refused
// stay for the next pass. It returns how many h took, also with an error.
//
// A message is flagged as soon as it is done with, so a pass cut short
// (ctx, a lost connection) does not hand it over again: the next pass
// expunges what is already flagged without reading it.
func PollIMAP(ctx context.Context, cfg IMAPConfig, h Handler, log *slog.Logger) (int, error) {
	if err := cfg.Validate(); err != nil {
		return 0, err
	}
	if h == nil {
		return 0, errors.New("inbound: PollIMAP without a handler")
	}
	log = logger(log)
	c, err := dialIMAP(ctx, cfg)
	if err != nil {
		return 0, err
	}
	defer c.close()
	p := &pass{c: c, cfg: cfg, h: h, log: log}
	err = p.run(ctx)
	// a pass that found nothing is routine, one a minute perhaps
	level := slog.LevelDebug
	if p.seen > 0 || len(p.deleted) > 0 || err != nil {
		level = slog.LevelInfo
	}
	log.Log(ctx, level, "imap: pass done", "messages", p.seen, "taken", p.taken, "refused", p.refused,
		"unaddressed", p.unaddressed, "too_large", p.tooLarge, "expunged", len(p.deleted), "ok", err == nil)
	return p.taken, err
}

// pass is one PollIMAP, with its counts.
type pass struct {
	c   *imapConn
	cfg IMAPConfig
	h   Handler
	log *slog.Logger

	deleted                                     []imap.UID
	seen, taken, refused, unaddressed, tooLarge int
}

func (p *pass) run(ctx context.Context) error {
	if err := p.c.login(p.cfg); err != nil {
		return err
	}
	n, err := p.c.selectMailbox(p.cfg.mailbox())
	if err != nil || n == 0 {
		return err
	}
	msgs, err := p.c.list(min(n, imapMaxMessages))
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("inbound: imap pass cut short: %w", err)
		}
		if err := p.one(ctx, m); err != nil {
			return err
		}
	}
	if err := p.c.expunge(p.deleted); err != nil {
		return err
	}
	p.c.logout()
	return nil
}

// one deals with one listed message.
func (p *pass) one(ctx context.Context, m *imapclient.FetchMessageBuffer) error {
	if slices.Contains(m.Flags, imap.FlagDeleted) {
		// flagged by a pass that was cut short: only expunge it
		p.deleted = append(p.deleted, m.UID)
		return nil
	}
	p.seen++
	if m.RFC822Size > imapMaxBytes {
		p.tooLarge++
		p.log.Warn("imap: message too large, deleted unread", "bytes", m.RFC822Size, "max_bytes", imapMaxBytes)
		return p.remove(m.UID)
	}
	raw, tooBig, found, err := p.c.body(m.UID, imapMaxBytes)
	switch {
	case err != nil:
		return err
	case !found:
		return nil // expunged meanwhile by another client
	case tooBig:
		p.tooLarge++
		p.log.Warn("imap: message larger than its stated size, deleted", "stated_bytes", m.RFC822Size, "max_bytes", imapMaxBytes)
		return p.remove(m.UID)
	}
	rcpt, ok := recipient(raw, p.cfg.Accept)
	if !ok {
		p.unaddressed++
		p.log.Info("imap: message for no accepted address, deleted", "bytes", len(raw))
		return p.remove(m.UID)
	}
	if err := p.h(ctx, rcpt, raw); err != nil {
		p.refused++
		p.log.Warn("imap: handler did not take a message, left in the mailbox", "bytes", len(raw), "err", err)
		return nil
	}
	p.taken++
	return p.remove(m.UID)
}

func (p *pass) remove(uid imap.UID) error {
	if err := p.c.flagDeleted(uid); err != nil {
		return err
	}
	p.deleted = append(p.deleted, uid)
	return nil
}

// imapConn is a logged-in or logging-in IMAP client whose commands are
// bounded by a deadline.
type imapConn struct {
	c       *imapclient.Client
	raw     net.Conn // the TCP connection under any TLS, for deadlines
	timeout time.Duration
	ctx     context.Context
	stop    func() bool // ends the watch of ctx
}

// dialIMAP connects as cfg says and waits for the greeting. The
// connection is closed when ctx ends, which fails the command waiting.
func dialIMAP(ctx context.Context, cfg IMAPConfig) (*imapConn, error) {
	host, addr, _ := cfg.hostPort()
	timeout := cfg.timeout()
	d := &net.Dialer{Timeout: timeout}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("inbound: imap connect to imap-addr %s: %w", addr, err)
	}
	tlsConf := &tls.Config{}
	if cfg.TLSConfig != nil {
		tlsConf = cfg.TLSConfig.Clone()
	}
	if tlsConf.ServerName == "" {
		tlsConf.ServerName = host
	}
	opts := &imapclient.Options{TLSConfig: tlsConf}
	raw.SetDeadline(time.Now().Add(timeout))
	var client *imapclient.Client
	switch cfg.mode() {
	case mail.ImplicitTLS:
		tc := tls.Client(raw, tlsConf)
		if err = tc.HandshakeContext(ctx); err == nil {
			client = imapclient.New(tc, opts)
		}
	case mail.StartTLS:
		client, err = imapclient.NewStartTLS(raw, opts)
	default:
		client = imapclient.New(raw, opts)
	}
	if err == nil {
		err = client.WaitGreeting()
	}
	if err != nil {
		raw.Close()
		return nil, fmt.Errorf("inbound: imap %s to imap-addr %s: %w", cfg.mode(), addr, err)
	}
	raw.SetDeadline(time.Time{})
	c := &imapConn{c: client, raw: raw, timeout: timeout, ctx: ctx}
	c.stop = context.AfterFunc(ctx, func() { raw.Close() })
	return c, nil
}

// do runs one command under the deadline, which is lifted afterwards so
// that the time a handler takes between commands does not count.
func (c *imapConn) do(what string, f func() error) error {
	c.raw.SetDeadline(time.Now().Add(c.timeout))
	err := f()
	c.raw.SetDeadline(time.Time{})
	if err == nil {
		return nil
	}
	if ctxErr := c.ctx.Err(); ctxErr != nil {
		err = ctxErr // the connection was closed for it
	}
	return fmt.Errorf("inbound: imap %s: %w", what, err)
}

// login names the settings to check, not their values: the server's
// answer says no more than that the credentials were refused.
func (c *imapConn) login(cfg IMAPConfig) error {
	err := c.do("login", func() error { return c.c.Login(cfg.Username, cfg.Password).Wait() })
	if err != nil {
		return fmt.Errorf("%w (check imap-user and imap-password)", err)
	}
	return nil
}

func (c *imapConn) selectMailbox(name string) (uint32, error) {
	var n uint32
	err := c.do("select imap-mailbox "+strconv.Quote(name), func() error {
		data, err := c.c.Select(name, nil).Wait()
		if err == nil {
			n = data.NumMessages
		}
		return err
	})
	return n, err
}

// list fetches the UID, size and flags of messages 1 to n.
func (c *imapConn) list(n uint32) ([]*imapclient.FetchMessageBuffer, error) {
	var msgs []*imapclient.FetchMessageBuffer
	err := c.do("fetch sizes", func() error {
		var set imap.SeqSet
		set.AddRange(1, n)
		var err error
		msgs, err = c.c.Fetch(set, &imap.FetchOptions{UID: true, RFC822Size: true, Flags: true}).Collect()
		return err
	})
	slices.SortFunc(msgs, func(a, b *imapclient.FetchMessageBuffer) int { return int(a.SeqNum) - int(b.SeqNum) })
	return msgs, err
}

// body reads one message whole without setting \Seen, reading at most max
// bytes of it: the server's stated size was checked before, but it is
// the literal that counts.
func (c *imapConn) body(uid imap.UID, max int64) (raw []byte, tooBig, found bool, err error) {
	err = c.do("fetch message", func() error {
		cmd := c.c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{
			BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
		for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
			for item := msg.Next(); item != nil; item = msg.Next() {
				b, ok := item.(imapclient.FetchItemDataBodySection)
				if !ok || b.Literal == nil || found {
					continue
				}
				found = true
				var rerr error
				if raw, tooBig, rerr = readLimited(b.Literal, max); rerr != nil {
					cmd.Close()
					return rerr
				}
			}
		}
		return cmd.Close()
	})
	return raw, tooBig, found, err
}

func (c *imapConn) flagDeleted(uid imap.UID) error {
	return c.do("store \\Deleted", func() error {
		return c.c.Store(imap.UIDSetNum(uid), &imap.StoreFlags{
			Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close()
	})
}

// expunge removes the messages flagged in this pass: only those where the
// server can say which (UID EXPUNGE), otherwise every \Deleted one.
func (c *imapConn) expunge(uids []imap.UID) error {
	if len(uids) == 0 {
		return nil
	}
	return c.do("expunge", func() error {
		if c.c.Caps().Has(imap.CapUIDPlus) {
			return c.c.UIDExpunge(imap.UIDSetNum(uids...)).Close()
		}
		return c.c.Expunge().Close()
	})
}

// logout says goodbye; the pass is done whatever the answer.
func (c *imapConn) logout() {
	c.do("logout", func() error { return c.c.Logout().Wait() })
}

func (c *imapConn) close() {
	c.stop()
	c.c.Close()
}
