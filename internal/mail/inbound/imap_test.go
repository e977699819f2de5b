package inbound

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"fjord/internal/mail/inbound/dovecot"
)

// imapMsg is a message as a delivery agent stores it (LF line ends),
// with the given headers and a marker in its body.
func imapMsg(headers, marker string) []byte {
	return []byte(headers + "From: MAILER-DAEMON@mta.example\nSubject: Undelivered Mail\n\nbounce body " + marker + "\n")
}

// crlf is msg as IMAP serves it.
func crlf(msg []byte) []byte { return bytes.ReplaceAll(msg, []byte("\n"), []byte("\r\n")) }

func imapConfig(s *dovecot.Server) IMAPConfig {
	return IMAPConfig{Addr: s.Addr, TLS: "none", Username: s.User, Password: s.Password, Accept: acceptVERP}
}

func testLog() (*slog.Logger, *lockedBuffer) {
	logs := &lockedBuffer{}
	return slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), logs
}

// refuser takes every message but those holding marker.
func refuser(rec *recorder, marker string) Handler {
	return func(ctx context.Context, rcpt string, raw []byte) error {
		rec.handle(ctx, rcpt, raw)
		if bytes.Contains(raw, []byte(marker)) {
			return errors.New("not now")
		}
		return nil
	}
}

func TestPollIMAP(t *testing.T) {
	s := dovecot.Start(t)
	taken1 := imapMsg("Delivered-To: "+verpA+"\n", "m-taken-1")
	taken2 := imapMsg("To: Someone <someone@customer.example>\nCc: "+verpB+"\n", "m-taken-2")
	// Delivered-To comes before To, whatever the order in the message
	taken3 := imapMsg("To: "+verpB+"\nDelivered-To: mailbox@bounces.example.com\nDelivered-To: "+verpA+"\n", "m-taken-3")
	refused := imapMsg("X-Original-To: "+verpA+"\n", "m-refused")
	stray := imapMsg("To: someone@customer.example\n", "m-stray")
	huge := imapMsg("Delivered-To: "+verpA+"\n", "m-huge "+strings.Repeat("0123456789abcdef\n", imapMaxBytes/17+1))
	for _, m := range [][]byte{taken1, taken2, taken3, refused, stray, huge} {
		s.Deliver(t, m)
	}
	rec := &recorder{}
	log, logs := testLog()
	n, err := PollIMAP(context.Background(), imapConfig(s), refuser(rec, "m-refused"), log)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("PollIMAP took %d, want 3", n)
	}
	want := map[string]got{"m-taken-1": {verpA, crlf(taken1)}, "m-taken-2": {verpB, crlf(taken2)},
		"m-taken-3": {verpA, crlf(taken3)}, "m-refused": {verpA, crlf(refused)}}
	calls := rec.got()
	if len(calls) != len(want) {
		t.Errorf("handler called %d times, want %d (not for the stray or the oversize message)", len(calls), len(want))
	}
	for _, c := range calls {
		var marker string
		fmt.Sscanf(string(c.raw[bytes.Index(c.raw, []byte("bounce body "))+len("bounce body "):]), "%s", &marker)
		w, ok := want[marker]
		if !ok {
			t.Errorf("handler got message %q", marker)
			continue
		}
		if c.rcpt != w.rcpt || !bytes.Equal(c.raw, w.raw) {
			t.Errorf("%s: got %q\n%q\nwant %q\n%q", marker, c.rcpt, c.raw, w.rcpt, w.raw)
		}
	}
	left := s.Messages(t)
	if len(left) != 1 || !s.Has(t, "m-refused") {
		t.Errorf("%d messages left, want only the refused one", len(left))
	}
	line := logs.String()
	for _, w := range []string{"too_large=1", "unaddressed=1", "refused=1", "taken=3", "message too large"} {
		if !strings.Contains(line, w) {
			t.Errorf("log lacks %q:\n%s", w, line)
		}
	}
	for _, secret := range []string{s.Password, "@", "m-taken", "bounce body"} {
		if strings.Contains(line, secret) {
			t.Errorf("log holds %q:\n%s", secret, line)
		}
	}

	// the next pass takes the refused message once it is taken
	rec2 := &recorder{}
	n, err = PollIMAP(context.Background(), imapConfig(s), rec2.handle, nil)
	if err != nil || n != 1 {
		t.Fatalf("second pass: %d, %v; want 1 taken", n, err)
	}
	if calls := rec2.got(); len(calls) != 1 || !bytes.Equal(calls[0].raw, crlf(refused)) {
		t.Errorf("second pass handled %d messages, want the one refused before", len(calls))
	}
	if left := s.Messages(t); len(left) != 0 {
		t.Errorf("%d messages left after the second pass", len(left))
	}
	// and an empty mailbox is a pass with nothing to do
	if n, err := PollIMAP(context.Background(), imapConfig(s), rec2.handle, nil); n != 0 || err != nil {
		t.Errorf("empty mailbox: %d, %v", n, err)
	}
}

func TestPollIMAPFlaggedDeleted(t *testing.T) {
	// a pass cut short after flagging leaves \Deleted messages: the next
	// pass expunges them and does not hand them over again
	s := dovecot.Start(t)
	s.DeliverDeleted(t, imapMsg("Delivered-To: "+verpA+"\n", "m-flagged"))
	s.Deliver(t, imapMsg("Delivered-To: "+verpB+"\n", "m-new"))
	rec := &recorder{}
	n, err := PollIMAP(context.Background(), imapConfig(s), rec.handle, nil)
	if err != nil || n != 1 {
		t.Fatalf("%d, %v; want 1 taken", n, err)
	}
	if calls := rec.got(); len(calls) != 1 || calls[0].rcpt != verpB {
		t.Errorf("handler calls %v, want only the unflagged message", calls)
	}
	if left := s.Messages(t); len(left) != 0 {
		t.Errorf("%d messages left, want the flagged one expunged too", len(left))
	}
}

func TestPollIMAPBounded(t *testing.T) {
	s := dovecot.Start(t)
	for i := 0; i < imapMaxMessages+3; i++ {
		s.Deliver(t, imapMsg("Delivered-To: "+verpA+"\n", fmt.Sprintf("m-%d", i)))
	}
	rec := &recorder{}
	n, err := PollIMAP(context.Background(), imapConfig(s), rec.handle, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n != imapMaxMessages || len(rec.got()) != imapMaxMessages {
		t.Errorf("one pass took %d (handler called %d times), want %d", n, len(rec.got()), imapMaxMessages)
	}
	if left := s.Messages(t); len(left) != 3 {
		t.Errorf("%d messages left, want 3 for the next pass", len(left))
	}
}

func TestPollIMAPTLS(t *testing.T) {
	s := dovecot.StartWith(t, dovecot.Options{TLS: true})
	for _, tc := range []struct{ mode, addr string }{{"tls", s.TLSAddr}, {"starttls", s.Addr}} {
		t.Run(tc.mode, func(t *testing.T) {
			msg := imapMsg("Delivered-To: "+verpA+"\n", "m-"+tc.mode)
			s.Deliver(t, msg)
			cfg := imapConfig(s)
			cfg.TLS, cfg.Addr, cfg.TLSConfig = tc.mode, tc.addr, s.TLSConfig
			rec := &recorder{}
			n, err := PollIMAP(context.Background(), cfg, rec.handle, nil)
			if err != nil || n != 1 {
				t.Fatalf("%d, %v; want 1 taken", n, err)
			}
			if calls := rec.got(); !bytes.Equal(calls[0].raw, crlf(msg)) {
				t.Errorf("got %q", calls[0].raw)
			}
			// without trusting the server's certificate: no login at all
			cfg.TLSConfig = nil
			if _, err := PollIMAP(context.Background(), cfg, rec.handle, nil); err == nil {
				t.Error("an untrusted certificate was accepted")
			}
		})
	}
}

func TestPollIMAPWrongPassword(t *testing.T) {
	s := dovecot.Start(t)
	s.Deliver(t, imapMsg("Delivered-To: "+verpA+"\n", "m-kept"))
	cfg := imapConfig(s)
	cfg.Password = "Wrong-Pa55word-9d1c"
	rec := &recorder{}
	n, err := PollIMAP(context.Background(), cfg, rec.handle, nil)
	if err == nil || n != 0 {
		t.Fatalf("wrong password: %d, %v; want an error", n, err)
	}
	if strings.Contains(err.Error(), cfg.Password) || strings.Contains(err.Error(), s.Password) {
		t.Errorf("error repeats a password: %v", err)
	}
	if !strings.Contains(err.Error(), "imap-password") || !strings.Contains(err.Error(), "login") {
		t.Errorf("error does not say the login failed: %v", err)
	}
	if len(rec.got()) != 0 || len(s.Messages(t)) != 1 {
		t.Error("messages touched without a login")
	}

	// a mailbox that is not there is named too
	cfg = imapConfig(s)
	cfg.Mailbox = "Bounces"
	if _, err := PollIMAP(context.Background(), cfg, rec.handle, nil); err == nil || !strings.Contains(err.Error(), "imap-mailbox") {
		t.Errorf("missing mailbox: %v, want an error naming imap-mailbox", err)
	}
}

func TestPollIMAPCanceled(t *testing.T) {
	s := dovecot.Start(t)
	s.Deliver(t, imapMsg("Delivered-To: "+verpA+"\n", "m-1"))
	s.Deliver(t, imapMsg("Delivered-To: "+verpA+"\n", "m-2"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec := &recorder{}
	h := func(hctx context.Context, rcpt string, raw []byte) error {
		cancel()
		return rec.handle(hctx, rcpt, raw)
	}
	_, err := PollIMAP(ctx, imapConfig(s), h, nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("canceled pass: %v, want context.Canceled", err)
	}
	if n := len(rec.got()); n != 1 {
		t.Errorf("handler called %d times after the cancel, want 1", n)
	}
}

func TestIMAPValidate(t *testing.T) {
	ok := IMAPConfig{Addr: "imap.example.com", Username: "bounces@example.com", Password: "S3cret-pw", Accept: acceptVERP}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*IMAPConfig)
		want string
	}{
		{"no addr", func(c *IMAPConfig) { c.Addr = "" }, "imap-addr"},
		{"bad port", func(c *IMAPConfig) { c.Addr = "imap.example.com:99999" }, "imap-addr"},
		{"no host", func(c *IMAPConfig) { c.Addr = ":993" }, "imap-addr"},
		{"colons", func(c *IMAPConfig) { c.Addr = "a:b:c" }, "imap-addr"},
		{"bad tls", func(c *IMAPConfig) { c.TLS = "ssl" }, "imap-tls"},
		{"none remote", func(c *IMAPConfig) { c.TLS = "none" }, "imap-tls"},
		{"none private net", func(c *IMAPConfig) { c.TLS, c.Addr = "none", "10.0.0.5:143" }, "imap-tls"},
		{"no user", func(c *IMAPConfig) { c.Username = "" }, "imap-user"},
		{"no password", func(c *IMAPConfig) { c.Password = "" }, "imap-password"},
		{"password line break", func(c *IMAPConfig) { c.Password = "S3cret\r\nA LOGOUT" }, "imap-password"},
		{"mailbox line break", func(c *IMAPConfig) { c.Mailbox = "INBOX\r\nx" }, "imap-mailbox"},
		{"no accept", func(c *IMAPConfig) { c.Accept = nil }, "Accept"},
	} {
		c := ok
		tc.edit(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %s", tc.name, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "S3cret") {
			t.Errorf("%s: error repeats the password: %v", tc.name, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:1143", "localhost", "[::1]:143", "::1", "127.0.0.2"} {
		c := ok
		c.TLS, c.Addr = "none", addr
		if err := c.Validate(); err != nil {
			t.Errorf("none to %s: %v", addr, err)
		}
	}
	for _, tc := range []struct{ tls, addr, want string }{
		{"", "imap.example.com", "imap.example.com:993"},
		{"tls", "imap.example.com:1993", "imap.example.com:1993"},
		{"starttls", "imap.example.com", "imap.example.com:143"},
		{"none", "::1", "[::1]:143"},
	} {
		c := ok
		c.TLS, c.Addr = tc.tls, tc.addr
		if _, addr, err := c.hostPort(); err != nil || addr != tc.want {
			t.Errorf("%s %s: %s %v, want %s", tc.tls, tc.addr, addr, err, tc.want)
		}
	}
	// PollIMAP checks first and does not connect
	if _, err := PollIMAP(context.Background(), IMAPConfig{}, (&recorder{}).handle, nil); err == nil {
		t.Error("PollIMAP with an empty config: no error")
	}
}
