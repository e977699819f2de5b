package inbound

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/smtp"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	verpA = "bounces+tokA1@bounces.example.com"
	verpB = "bounces+tokB2@bounces.example.com"
)

func acceptVERP(rcpt string) bool {
	return strings.HasPrefix(rcpt, "bounces+") && strings.HasSuffix(rcpt, "@bounces.example.com")
}

// got is one handler call.
type got struct {
	rcpt string
	raw  []byte
}

// recorder is a Handler that keeps what it is given and answers err.
type recorder struct {
	mu    sync.Mutex
	calls []got
	err   error
}

func (r *recorder) handle(_ context.Context, rcpt string, raw []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, got{rcpt, bytes.Clone(raw)})
	return r.err
}

func (r *recorder) got() []got {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// lockedBuffer is a log sink for one test's server goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func startSMTP(t *testing.T, cfg SMTPConfig, h Handler) (*SMTPServer, *lockedBuffer) {
	t.Helper()
	logs := &lockedBuffer{}
	cfg.Addr = "127.0.0.1:0"
	cfg.Domain = "mx.test"
	if cfg.Accept == nil {
		cfg.Accept = acceptVERP
	}
	cfg.Log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := ListenSMTP(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return s, logs
}

// bounceMsg is a bounce as a remote MTA sends it: CRLF line ends, and a
// line starting with a dot, which SMTP dot-stuffs on the wire.
func bounceMsg(marker string) []byte {
	return []byte("From: MAILER-DAEMON@mta.example\r\n" +
		"To: " + verpA + "\r\n" +
		"Subject: Undelivered Mail Returned to Sender\r\n" +
		"\r\n" +
		"This is the mail system at host mta.example. " + marker + "\r\n" +
		".leading dot stays\r\n" +
		"..two dots stay two\r\n" +
		"\r\n" +
		"<someone@customer.example>: host said: 550 5.1.1 User unknown\r\n")
}

// send delivers msg from the null sender to rcpts and returns the error
// of the first step that failed.
func send(addr string, rcpts []string, msg []byte) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("mta.example"); err != nil {
		return err
	}
	if err := c.Mail(""); err != nil {
		return err
	}
	for _, r := range rcpts {
		if err := c.Rcpt(r); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

func smtpCode(t *testing.T, err error) int {
	t.Helper()
	var te *textproto.Error
	if !errors.As(err, &te) {
		t.Fatalf("want an SMTP reply error, got %v", err)
	}
	return te.Code
}

func TestSMTPDeliversByteExact(t *testing.T) {
	rec := &recorder{}
	s, logs := startSMTP(t, SMTPConfig{}, rec.handle)
	msg := bounceMsg("marker-7f3a")
	if err := send(s.Addr(), []string{verpA, verpB, verpA}, msg); err != nil {
		t.Fatal(err)
	}
	calls := rec.got()
	if len(calls) != 2 {
		t.Fatalf("handler called %d times, want once per distinct recipient (2)", len(calls))
	}
	for i, want := range []string{verpA, verpB} {
		if calls[i].rcpt != want {
			t.Errorf("call %d: rcpt %q, want %q", i, calls[i].rcpt, want)
		}
		if !bytes.Equal(calls[i].raw, msg) {
			t.Errorf("call %d: message not byte-exact:\ngot  %q\nwant %q", i, calls[i].raw, msg)
		}
	}
	log := logs.String()
	if !strings.Contains(log, "message taken") {
		t.Errorf("no log line for the message:\n%s", log)
	}
	for _, secret := range []string{"bounces+", "marker-7f3a", "customer.example", "MAILER-DAEMON"} {
		if strings.Contains(log, secret) {
			t.Errorf("log holds %q:\n%s", secret, log)
		}
	}
}

func TestSMTPNullSenderAndNoAuth(t *testing.T) {
	rec := &recorder{}
	s, _ := startSMTP(t, SMTPConfig{}, rec.handle)
	c, err := smtp.Dial(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("mta.example"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("AUTH"); ok {
		t.Error("AUTH offered: the receiver takes bounces from anyone and has no accounts")
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("STARTTLS offered without a TLS config")
	}
	if ok, size := c.Extension("SIZE"); !ok || size == "" {
		t.Errorf("SIZE not advertised (%q)", size)
	}
	if err := c.Mail(""); err != nil {
		t.Fatalf("MAIL FROM:<> refused: %v", err)
	}
	if code, _, _ := textCmd(c.Text, "AUTH PLAIN AGJvdW5jZXMAc2VjcmV0"); code/100 != 5 {
		t.Errorf("AUTH answered %d, want a 5xx refusal", code)
	}
}

func TestSMTPRefusesUnknownRecipient(t *testing.T) {
	rec := &recorder{}
	s, logs := startSMTP(t, SMTPConfig{}, rec.handle)
	for _, rcpt := range []string{"postmaster@bounces.example.com", "victim@elsewhere.example", "bounces+x@elsewhere.example"} {
		err := send(s.Addr(), []string{rcpt}, bounceMsg("x"))
		if code := smtpCode(t, err); code != 550 {
			t.Errorf("RCPT TO:<%s> answered %d, want 550", rcpt, code)
		}
		if !strings.Contains(err.Error(), "5.1.1") {
			t.Errorf("RCPT TO:<%s>: %v, want enhanced code 5.1.1", rcpt, err)
		}
	}
	// an accepted and a refused recipient: only the accepted one is handled
	c, err := smtp.Dial(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Mail("")
	if err := c.Rcpt("victim@elsewhere.example"); err == nil {
		t.Fatal("relay recipient accepted")
	}
	if err := c.Rcpt(verpA); err != nil {
		t.Fatal(err)
	}
	w, _ := c.Data()
	w.Write(bounceMsg("y"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if calls := rec.got(); len(calls) != 1 || calls[0].rcpt != verpA {
		t.Errorf("handler calls %v, want one for the accepted address", calls)
	}
	if strings.Contains(logs.String(), "elsewhere.example") {
		t.Errorf("log names a refused address:\n%s", logs.String())
	}
}

func TestSMTPMaxRecipients(t *testing.T) {
	rec := &recorder{}
	s, _ := startSMTP(t, SMTPConfig{MaxRecipients: 2}, rec.handle)
	err := send(s.Addr(), []string{verpA, verpB, "bounces+third@bounces.example.com"}, bounceMsg("r"))
	if code := smtpCode(t, err); code != 452 {
		t.Errorf("third recipient: %v, want 452", err)
	}
}

func TestSMTPMaxBytes(t *testing.T) {
	rec := &recorder{}
	const max = 1024
	s, logs := startSMTP(t, SMTPConfig{MaxBytes: max}, rec.handle)
	head := []byte("Subject: big bounce\r\n\r\n")
	line := []byte(strings.Repeat("x", 62) + "\r\n")
	exact := append(bytes.Clone(head), bytes.Repeat(line, (max-len(head))/len(line))...)
	exact = append(exact, bytes.Repeat([]byte("y"), max-len(exact)-2)...)
	exact = append(exact, "\r\n"...)
	if len(exact) != max {
		t.Fatalf("test message is %d bytes, want %d", len(exact), max)
	}
	if err := send(s.Addr(), []string{verpA}, exact); err != nil {
		t.Fatalf("a message of exactly MaxBytes: %v", err)
	}
	if calls := rec.got(); len(calls) != 1 || !bytes.Equal(calls[0].raw, exact) {
		t.Fatal("the message of exactly MaxBytes was not handled whole")
	}

	over := append(bytes.Clone(exact), "one more line\r\n"...)
	err := send(s.Addr(), []string{verpA}, over)
	if code := smtpCode(t, err); code != 552 || !strings.Contains(err.Error(), "5.3.4") {
		t.Errorf("over MaxBytes: %v, want 552 5.3.4", err)
	}
	big := bytes.Repeat(line, 50_000) // 3 MB: the rest is read and dropped
	err = send(s.Addr(), []string{verpA}, append(bytes.Clone(head), big...))
	if code := smtpCode(t, err); code != 552 {
		t.Errorf("3 MB message: %v, want 552", err)
	}
	if n := len(rec.got()); n != 1 {
		t.Errorf("handler called %d times, want only for the message that fits", n)
	}
	if !strings.Contains(logs.String(), "code=552") {
		t.Errorf("no log line with the 552:\n%s", logs.String())
	}

	// a declared SIZE over the limit is refused before DATA
	c, err := smtp.Dial(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Hello("mta.example")
	if code, _, err := textCmd(c.Text, "MAIL FROM:<> SIZE=5000000"); code != 552 {
		t.Errorf("MAIL SIZE=5000000 answered %d %v, want a refusal", code, err)
	}
}

// textCmd sends one command and reads its reply.
func textCmd(c *textproto.Conn, line string) (int, string, error) {
	id, err := c.Cmd("%s", line)
	if err != nil {
		return 0, "", err
	}
	c.StartResponse(id)
	defer c.EndResponse(id)
	return c.ReadResponse(0)
}

func TestSMTPHandlerErrorIsTemporary(t *testing.T) {
	rec := &recorder{err: errors.New("store unavailable")}
	s, logs := startSMTP(t, SMTPConfig{}, rec.handle)
	err := send(s.Addr(), []string{verpA}, bounceMsg("z"))
	code := smtpCode(t, err)
	if code != 451 {
		t.Fatalf("handler error answered %v, want 451", err)
	}
	var te *textproto.Error
	errors.As(err, &te)
	if te.Code/100 != 4 {
		t.Errorf("not a temporary (4xx) reply: %v", err)
	}
	if len(rec.got()) != 1 {
		t.Errorf("handler called %d times, want 1", len(rec.got()))
	}
	if !strings.Contains(logs.String(), "code=451") {
		t.Errorf("no log line with the 451:\n%s", logs.String())
	}
}

// readReply reads one SMTP reply line from a raw connection.
func readReply(t *testing.T, c net.Conn, r *bufio.Reader) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("reading a reply: %v (read %q)", err, line)
	}
	return line
}

func TestSMTPMaxConns(t *testing.T) {
	s, logs := startSMTP(t, SMTPConfig{MaxConns: 2}, (&recorder{}).handle)
	var open []net.Conn
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if l := readReply(t, c, bufio.NewReader(c)); !strings.HasPrefix(l, "220 mx.test") {
			t.Fatalf("connection %d greeted %q", i, l)
		}
		open = append(open, c)
	}
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	if l := readReply(t, c, r); !strings.HasPrefix(l, "421 ") {
		t.Errorf("third connection got %q, want 421", l)
	}
	if _, err := r.ReadString('\n'); err != io.EOF {
		t.Errorf("third connection not closed after the 421: %v", err)
	}
	c.Close()
	if !strings.Contains(logs.String(), "code=421") {
		t.Errorf("no log line for the refused connection:\n%s", logs.String())
	}

	// a slot comes back when a connection ends
	open[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		l := readReply(t, c, bufio.NewReader(c))
		c.Close()
		if strings.HasPrefix(l, "220 ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no slot after a connection ended: %q", l)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSMTPSlowClientIsCut(t *testing.T) {
	const timeout = 300 * time.Millisecond
	s, _ := startSMTP(t, SMTPConfig{Timeout: timeout}, (&recorder{}).handle)
	// timed from before the connection: the server may start its clock
	// before this side has read the greeting (a cut 0.7 ms "early" once
	// failed CI)
	start := time.Now()
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	readReply(t, c, r)
	l := readReply(t, c, r) // sends nothing, waits for the server
	if !strings.HasPrefix(l, "421 ") {
		t.Errorf("idle client got %q, want 421", l)
	}
	if _, err := r.ReadString('\n'); err != io.EOF {
		t.Errorf("idle client not disconnected: %v", err)
	}
	if d := time.Since(start); d < timeout || d > 3*time.Second {
		t.Errorf("cut after %v, want about %v", d, timeout)
	}

	// one that stops in the middle of DATA is cut too
	c2, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	r2 := bufio.NewReader(c2)
	readReply(t, c2, r2)
	for _, cmd := range []string{"EHLO mta.example", "MAIL FROM:<>", "RCPT TO:<" + verpA + ">", "DATA"} {
		io.WriteString(c2, cmd+"\r\n")
		for {
			l := readReply(t, c2, r2)
			if len(l) < 4 || l[3] != '-' {
				break
			}
		}
	}
	io.WriteString(c2, "Subject: half a message\r\n")
	c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(r2); err != nil {
		t.Errorf("a client stuck in DATA was not disconnected: %v", err)
	}
}

func TestSMTPStartTLS(t *testing.T) {
	rec := &recorder{}
	cert, pool := testCert(t)
	s, _ := startSMTP(t, SMTPConfig{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}}, rec.handle)
	c, err := smtp.Dial(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.StartTLS(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("AUTH"); ok {
		t.Error("AUTH offered over TLS")
	}
	msg := bounceMsg("tls")
	c.Mail("")
	if err := c.Rcpt(verpA); err != nil {
		t.Fatal(err)
	}
	w, _ := c.Data()
	w.Write(msg)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if calls := rec.got(); len(calls) != 1 || !bytes.Equal(calls[0].raw, msg) {
		t.Errorf("message over STARTTLS not handled byte-exact: %v", calls)
	}
}

func TestSMTPCloseEndsHandlers(t *testing.T) {
	started := make(chan struct{})
	var sawCancel bool
	h := func(ctx context.Context, _ string, _ []byte) error {
		close(started)
		<-ctx.Done()
		sawCancel = true
		return ctx.Err()
	}
	logs := &lockedBuffer{}
	s, err := ListenSMTP(SMTPConfig{Addr: "127.0.0.1:0", Accept: acceptVERP,
		Log: slog.New(slog.NewTextHandler(logs, nil))}, h)
	if err != nil {
		t.Fatal(err)
	}
	sent := make(chan error, 1)
	go func() { sent <- send(s.Addr(), []string{verpA}, bounceMsg("c")) }()
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("handler not called")
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if !sawCancel {
		t.Error("Close returned while a handler still ran")
	}
	if err := <-sent; err == nil {
		t.Error("the message was acknowledged though the handler did not take it")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestListenSMTPNeedsAccept(t *testing.T) {
	_, err := ListenSMTP(SMTPConfig{Addr: "127.0.0.1:0"}, (&recorder{}).handle)
	if err == nil || !strings.Contains(err.Error(), "Accept") {
		t.Errorf("no Accept: %v, want an error (the server would be an open relay)", err)
	}
	_, err = ListenSMTP(SMTPConfig{Addr: "127.0.0.1:0", Accept: acceptVERP}, nil)
	if err == nil {
		t.Error("no handler: no error")
	}
}

// testCert is a self-signed certificate for 127.0.0.1 and a pool that
// trusts it.
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
