// Package mailpit starts a real SMTP server for tests: the Mailpit binary
// named by FJORD_TEST_MAILPIT, on free loopback ports, read back through
// its HTTP API. Without the variable, the tests that need it skip.
package mailpit

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"fjord/internal/mail"
	"fjord/internal/testnet"
)

// Env names the Mailpit binary.
const Env = "FJORD_TEST_MAILPIT"

// Options choose how the server is reached.
type Options struct {
	// TLS: "" or mail.NoTLS for plain SMTP, mail.StartTLS to offer and
	// require STARTTLS, mail.ImplicitTLS for TLS from the first byte; the
	// certificate is made for 127.0.0.1 and Server.TLSConfig trusts it.
	TLS string
	// User and Password, when set, are the only SMTP credentials accepted;
	// otherwise any client may send without authenticating.
	User, Password string
}

// Server is a running Mailpit.
type Server struct {
	SMTPHost  string
	SMTPPort  int
	APIURL    string      // http://127.0.0.1:PORT
	TLSConfig *tls.Config // trusts the server's certificate (with Options.TLS)
	opts      Options
}

// Start runs Mailpit with plain SMTP and no authentication.
func Start(t testing.TB) *Server { return StartWith(t, Options{}) }

// StartWith runs Mailpit as opts say, waits until it answers, and stops
// it when the test ends. It skips the test when FJORD_TEST_MAILPIT is
// unset.
func StartWith(t testing.TB, opts Options) *Server {
	t.Helper()
	bin := testnet.Binary(t, Env, "it names the Mailpit binary (go install github.com/axllent/mailpit@v1.33.1) that the mail tests send to")
	dir := t.TempDir()
	s := &Server{SMTPHost: "127.0.0.1", opts: opts}
	var extra []string
	if opts.TLS == mail.StartTLS || opts.TLS == mail.ImplicitTLS {
		cert, key, pool := testnet.SelfSigned(t, dir, "smtp")
		s.TLSConfig = &tls.Config{RootCAs: pool}
		extra = append(extra, "--smtp-tls-cert", cert, "--smtp-tls-key", key)
		if opts.TLS == mail.StartTLS {
			extra = append(extra, "--smtp-require-starttls")
		} else {
			extra = append(extra, "--smtp-require-tls")
		}
	}
	if opts.User != "" {
		file := filepath.Join(dir, "smtp-auth")
		if err := os.WriteFile(file, []byte(opts.User+":"+opts.Password+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		extra = append(extra, "--smtp-auth-file", file)
		if s.TLSConfig == nil {
			extra = append(extra, "--smtp-auth-allow-insecure")
		}
	}
	// a free port can be taken between asking and Mailpit's listening:
	// try again with new ports
	var lastErr error
	for try := 0; try < 3; try++ {
		smtpPort, httpPort := testnet.FreePort(t), testnet.FreePort(t)
		s.SMTPPort = smtpPort
		s.APIURL = "http://127.0.0.1:" + strconv.Itoa(httpPort)
		args := append([]string{
			"--smtp", "127.0.0.1:" + strconv.Itoa(smtpPort),
			"--listen", "127.0.0.1:" + strconv.Itoa(httpPort),
			"--database", filepath.Join(dir, fmt.Sprintf("mailpit-%d.db", try)),
			"--disable-version-check", "--smtp-disable-rdns", "--quiet",
		}, extra...)
		if lastErr = s.run(t, bin, args); lastErr == nil {
			return s
		}
	}
	t.Fatalf("mailpit did not start: %v", lastErr)
	return nil
}

// run starts the process and waits until both ports answer.
func (s *Server) run(t testing.TB, bin string, args []string) error {
	var out testnet.Output
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("exited (%v):\n%s", err, out.String())
		default:
		}
		if s.ready() {
			t.Cleanup(func() {
				stop()
				if t.Failed() {
					t.Logf("mailpit output:\n%s", out.String())
				}
			})
			return nil
		}
		if time.Now().After(deadline) {
			stop()
			return fmt.Errorf("not ready after 30 s:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *Server) ready() bool {
	resp, err := http.Get(s.APIURL + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return false
	}
	c, err := net.DialTimeout("tcp", net.JoinHostPort(s.SMTPHost, strconv.Itoa(s.SMTPPort)), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Config is a mail.Config that sends to this server, with the server's
// TLS mode and credentials.
func (s *Server) Config(from string) mail.Config {
	tlsMode := s.opts.TLS
	if tlsMode == "" {
		tlsMode = mail.NoTLS
	}
	return mail.Config{Host: s.SMTPHost, Port: s.SMTPPort, TLS: tlsMode, From: from,
		Username: s.opts.User, Password: s.opts.Password, TLSConfig: s.TLSConfig, Timeout: 10 * time.Second}
}

// Address is a mail address as the API shows it.
type Address struct {
	Name    string
	Address string
}

// Summary is a message in a list.
type Summary struct {
	ID       string
	From     Address
	To       []Address
	Subject  string
	Username string // the SMTP user that sent it, if any
	Snippet  string
	Created  time.Time
}

// Message is one message with its bodies.
type Message struct {
	ID      string
	From    Address
	To      []Address
	Subject string
	Text    string
	HTML    string
	Date    time.Time
	// ReturnPath is the SMTP MAIL FROM, which Mailpit records as the
	// Return-Path a delivering server adds.
	ReturnPath string
	// Inline parts (referenced from the HTML) and attachments; Part
	// downloads one.
	Inline      []Attachment
	Attachments []Attachment
	// Headers as Mailpit reads them from the raw message.
	Headers map[string][]string
}

// Attachment is an inline part or an attachment as the API lists it.
type Attachment struct {
	PartID      string
	FileName    string
	ContentType string
	ContentID   string
	Size        int
}

type list struct {
	Total         int
	MessagesCount int `json:"messages_count"`
	Messages      []Summary
}

func (s *Server) get(t testing.TB, path string, v any) {
	t.Helper()
	b := s.getBytes(t, path)
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("mailpit %s: %v\n%s", path, err, b)
	}
}

func (s *Server) getBytes(t testing.TB, path string) []byte {
	t.Helper()
	resp, err := http.Get(s.APIURL + path)
	if err != nil {
		t.Fatalf("mailpit %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("mailpit %s: %v", path, err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("mailpit %s: %d %s", path, resp.StatusCode, b)
	}
	return b
}

// Part downloads the decoded bytes of a message's part (an Attachment's
// PartID).
func (s *Server) Part(t testing.TB, id, partID string) []byte {
	t.Helper()
	return s.getBytes(t, "/api/v1/message/"+url.PathEscape(id)+"/part/"+url.PathEscape(partID))
}

// Raw is the message as received, headers and MIME body.
func (s *Server) Raw(t testing.TB, id string) []byte {
	t.Helper()
	return s.getBytes(t, "/api/v1/message/"+url.PathEscape(id)+"/raw")
}

// Messages lists every message, newest first.
func (s *Server) Messages(t testing.TB) []Summary {
	t.Helper()
	var l list
	s.get(t, "/api/v1/messages?limit=1000", &l)
	return l.Messages
}

// Search lists the messages that match a Mailpit search (to:ADDRESS,
// subject:"...").
func (s *Server) Search(t testing.TB, query string) []Summary {
	t.Helper()
	var l list
	s.get(t, "/api/v1/search?limit=1000&query="+url.QueryEscape(query), &l)
	return l.Messages
}

// To lists the messages to an address (exactly that address), newest
// first.
func (s *Server) To(t testing.TB, addr string) []Summary {
	t.Helper()
	var out []Summary
	for _, m := range s.Search(t, "to:"+strconv.Quote(addr)) {
		for _, a := range m.To {
			if a.Address == addr {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// Message reads one message by id, with its text, HTML and headers.
func (s *Server) Message(t testing.TB, id string) Message {
	t.Helper()
	var m Message
	s.get(t, "/api/v1/message/"+url.PathEscape(id), &m)
	s.get(t, "/api/v1/message/"+url.PathEscape(id)+"/headers", &m.Headers)
	return m
}

// WaitFor polls until a message to addr has arrived and returns the
// newest; the test fails after timeout.
func (s *Server) WaitFor(t testing.TB, addr string, timeout time.Duration) Message {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if l := s.To(t, addr); len(l) > 0 {
			return s.Message(t, l[0].ID)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no mail to %s within %v", addr, timeout)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// DeleteAll empties the mailbox.
func (s *Server) DeleteAll(t testing.TB) {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodDelete, s.APIURL+"/api/v1/messages", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("mailpit delete all: %d", resp.StatusCode)
	}
}
