package mail_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"fjord/internal/mail"
	"fjord/internal/mail/mailpit"
)

const from = "Fjord <fjord@fjord.test>"

func send(t *testing.T, cfg mail.Config, m mail.Message) error {
	t.Helper()
	s, err := mail.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return s.Send(ctx, m)
}

// TestSendAndReadBack: a message with text and HTML arrives as sent.
func TestSendAndReadBack(t *testing.T) {
	mp := mailpit.Start(t)
	m := mail.Message{To: "Anna@Example.test", Subject: "Sign-in locked – Fjord",
		Text: "Hello,\n\nline two with ünïcödé\n", HTML: "<p>Hello, <b>HTML</b></p>"}
	if err := send(t, mp.Config(from), m); err != nil {
		t.Fatal(err)
	}
	got := mp.WaitFor(t, "Anna@Example.test", 10*time.Second)
	if got.Subject != m.Subject {
		t.Errorf("subject %q, want %q", got.Subject, m.Subject)
	}
	// SMTP carries lines ending in CRLF
	if strings.ReplaceAll(got.Text, "\r\n", "\n") != m.Text {
		t.Errorf("text %q, want %q", got.Text, m.Text)
	}
	if !strings.Contains(got.HTML, "<b>HTML</b>") {
		t.Errorf("HTML %q", got.HTML)
	}
	if len(got.To) != 1 || got.To[0].Address != "Anna@Example.test" || got.From.Address != "fjord@fjord.test" || got.From.Name != "Fjord" {
		t.Errorf("to %+v from %+v", got.To, got.From)
	}
	if h := got.Headers["Auto-Submitted"]; len(h) != 1 || h[0] != "auto-generated" {
		t.Errorf("Auto-Submitted %v", h)
	}
	if len(got.Headers["Message-Id"]) == 0 && len(got.Headers["Message-ID"]) == 0 {
		t.Errorf("no Message-ID: %v", got.Headers)
	}
	// text only
	if err := send(t, mp.Config(from), mail.Message{To: "bo@example.test", Subject: "plain", Text: "just text"}); err != nil {
		t.Fatal(err)
	}
	if got := mp.WaitFor(t, "bo@example.test", 10*time.Second); got.HTML != "" || strings.TrimSpace(got.Text) != "just text" {
		t.Errorf("text-only mail: text %q, HTML %q", got.Text, got.HTML)
	}
	if n := len(mp.Messages(t)); n != 2 {
		t.Errorf("%d messages, want 2", n)
	}
}

// TestTLSModes: STARTTLS (required by the server) and implicit TLS, each
// with SMTP authentication, deliver; the server saw the user.
func TestTLSModes(t *testing.T) {
	for _, mode := range []string{mail.StartTLS, mail.ImplicitTLS} {
		t.Run(mode, func(t *testing.T) {
			mp := mailpit.StartWith(t, mailpit.Options{TLS: mode, User: "fjord", Password: "s3cret-smtp-pw"})
			if err := send(t, mp.Config(from), mail.Message{To: "c@example.test", Subject: "over " + mode, Text: "x"}); err != nil {
				t.Fatal(err)
			}
			mp.WaitFor(t, "c@example.test", 10*time.Second)
			if l := mp.Messages(t); len(l) != 1 || l[0].Username != "fjord" || l[0].Subject != "over "+mode {
				t.Fatalf("%+v", l)
			}
		})
	}
}

// TestErrorsHoldNoSecrets: failures name the problem and the server but
// neither the password nor the recipient.
func TestErrorsHoldNoSecrets(t *testing.T) {
	const pw = "Very-Secret-Password-42"
	const to = "Victim@Example.test"
	// a setting a retry will not change is no temporary failure; nobody
	// listening is
	check := func(t *testing.T, err error, want string, temp bool) {
		t.Helper()
		if err == nil {
			t.Fatal("no error")
		}
		if mail.IsTemporary(err) != temp {
			t.Errorf("IsTemporary(%v) = %v", err, !temp)
		}
		s := err.Error()
		t.Log(s)
		if strings.Contains(s, pw) || strings.Contains(strings.ToLower(s), strings.ToLower(to)) {
			t.Fatalf("the error holds a secret or the recipient: %s", s)
		}
		if !strings.Contains(s, want) {
			t.Fatalf("error %q does not say %q", s, want)
		}
	}
	t.Run("no STARTTLS offered", func(t *testing.T) {
		mp := mailpit.Start(t) // plain SMTP
		cfg := mp.Config(from)
		cfg.TLS, cfg.Username, cfg.Password = mail.StartTLS, "fjord", pw
		check(t, send(t, cfg, mail.Message{To: to, Subject: "s", Text: "t"}), "STARTTLS", false)
		if n := len(mp.Messages(t)); n != 0 {
			t.Fatalf("%d messages went out in plain text", n)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		mp := mailpit.StartWith(t, mailpit.Options{TLS: mail.StartTLS, User: "fjord", Password: "right-password"})
		cfg := mp.Config(from)
		cfg.Password = pw
		err := send(t, cfg, mail.Message{To: to, Subject: "s", Text: "t"})
		check(t, err, "127.0.0.1", false)
		if c := mail.ReplyCode(err); c != 535 {
			t.Errorf("reply code %d, want 535", c)
		}
		if n := len(mp.Messages(t)); n != 0 {
			t.Fatalf("%d messages with a wrong password", n)
		}
		s, _ := mail.New(cfg)
		check(t, s.Probe(context.Background()), "smtp-tls starttls", false)
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		mp := mailpit.StartWith(t, mailpit.Options{TLS: mail.StartTLS})
		cfg := mp.Config(from)
		cfg.TLSConfig, cfg.Password, cfg.Username = nil, pw, "u"
		check(t, send(t, cfg, mail.Message{To: to, Subject: "s", Text: "t"}), "certificate", false)
	})
	t.Run("nobody listening", func(t *testing.T) {
		cfg := mail.Config{Host: "127.0.0.1", Port: 1, TLS: mail.NoTLS, From: from, Username: "u", Password: pw, Timeout: 5 * time.Second}
		check(t, send(t, cfg, mail.Message{To: to, Subject: "s", Text: "t"}), "127.0.0.1:1", true)
	})
}

func TestProbe(t *testing.T) {
	mp := mailpit.StartWith(t, mailpit.Options{TLS: mail.StartTLS, User: "fjord", Password: "pw-pw-pw"})
	s, err := mail.New(mp.Config(from))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Probe(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(mp.Messages(t)); n != 0 {
		t.Fatalf("the probe sent %d messages", n)
	}
}

func TestValidate(t *testing.T) {
	ok := mail.Config{Host: "smtp.example.com", From: "fjord@example.com"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	if ok.Addr() != "smtp.example.com:587" {
		t.Fatalf("default port: %s", ok.Addr())
	}
	for name, c := range map[string]struct {
		cfg  mail.Config
		want string
	}{
		"plain text to another host": {mail.Config{Host: "smtp.example.com", TLS: "none", From: "f@example.com"}, "loopback"},
		"plain text to a LAN host":   {mail.Config{Host: "192.168.1.5", TLS: "none", From: "f@example.com"}, "loopback"},
		"unknown mode":               {mail.Config{Host: "h", TLS: "ssl", From: "f@example.com"}, "want starttls, tls or none"},
		"no from":                    {mail.Config{Host: "h"}, "mail-from"},
		"bad from":                   {mail.Config{Host: "h", From: "not an address"}, "mail-from"},
		"password, no user":          {mail.Config{Host: "h", From: "f@example.com", Password: "hunter2hunter2"}, "smtp-user"},
		"port":                       {mail.Config{Host: "h", From: "f@example.com", Port: 70000}, "smtp-port"},
	} {
		err := c.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want it to say %q", name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2hunter2") {
			t.Errorf("%s: the error repeats the password", name)
		}
	}
	for _, host := range []string{"127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.53"} {
		if err := (mail.Config{Host: host, TLS: "none", From: "f@example.com"}).Validate(); err != nil {
			t.Errorf("none to %s: %v", host, err)
		}
	}
	for mode, port := range map[string]string{"tls": "465", "none": "25", "starttls": "587"} {
		if a := (mail.Config{Host: "h", TLS: mode}).Addr(); a != "h:"+port {
			t.Errorf("%s: %s", mode, a)
		}
	}
}

// TestOutbox: work runs in the background in order; a full queue drops
// and says so; Flush waits for what was queued; Close ends it.
func TestOutbox(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	o := mail.NewOutbox(nil, log, 2)
	release := make(chan struct{})
	var ran atomic.Int32
	block := func(ctx context.Context, _ *mail.Sender) error { <-release; ran.Add(1); return nil }
	if !o.Go("first", block) { // taken by the worker at once or soon
		t.Fatal("first job refused")
	}
	// fill the queue: at most 1 running + 2 waiting fit
	accepted := 1
	for i := 0; i < 5; i++ {
		if o.Go("more", block) {
			accepted++
		}
	}
	if accepted > 3 || accepted < 2 {
		t.Fatalf("%d jobs accepted with room for 2 waiting and 1 running", accepted)
	}
	if !strings.Contains(logs.String(), "outbox is full") {
		t.Fatalf("no log of the dropped work: %s", logs.String())
	}
	close(release)
	if err := o.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if int(ran.Load()) != accepted {
		t.Fatalf("ran %d of %d", ran.Load(), accepted)
	}
	o.Go("fails", func(context.Context, *mail.Sender) error { return context.DeadlineExceeded })
	o.Close(context.Background())
	if !strings.Contains(logs.String(), "what=fails") {
		t.Fatalf("a failure was not logged: %s", logs.String())
	}
	if o.Go("late", block) {
		t.Fatal("a closed outbox took work")
	}
}
