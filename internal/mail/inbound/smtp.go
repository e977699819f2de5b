package inbound

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// SMTPConfig configures the SMTP receiver.
type SMTPConfig struct {
	Addr   string // listen address, e.g. "127.0.0.1:2525" or ":25"
	Domain string // the name the server gives in its greeting
	// Accept says which RCPT TO addresses are taken; the others are
	// refused with 550 5.1.1 at RCPT time, so the receiver relays nothing.
	// Required.
	Accept        func(rcpt string) bool
	MaxBytes      int64 // largest message; 0 = 1 MiB. Larger: 552 5.3.4 and nothing handled
	MaxRecipients int   // per message; 0 = 10
	// MaxConns bounds concurrent connections, 0 = 50; a connection over
	// it gets 421 and is closed.
	MaxConns int
	// Timeout bounds the wait for each command and each reply, 0 = 1
	// minute. The whole DATA transfer must also arrive within it (go-smtp
	// sets the read deadline once, when it reads the DATA command), and
	// the handler's context ends after it.
	Timeout time.Duration
	TLS     *tls.Config // optional: offer STARTTLS
	Log     *slog.Logger
}

func (c SMTPConfig) withDefaults() SMTPConfig {
	if c.MaxBytes == 0 {
		c.MaxBytes = defaultMaxBytes
	}
	if c.MaxRecipients == 0 {
		c.MaxRecipients = 10
	}
	if c.MaxConns == 0 {
		c.MaxConns = 50
	}
	if c.Timeout == 0 {
		c.Timeout = time.Minute
	}
	if c.Domain == "" {
		c.Domain = "localhost"
	}
	c.Log = logger(c.Log)
	return c
}

func (c SMTPConfig) validate() error {
	var errs []error
	if c.Accept == nil {
		// without it the receiver would take mail for anyone
		errs = append(errs, errors.New("inbound: SMTPConfig.Accept is nil"))
	}
	if c.MaxBytes < 0 || c.MaxRecipients < 0 || c.MaxConns < 0 || c.Timeout < 0 {
		errs = append(errs, errors.New("inbound: SMTPConfig has a negative limit"))
	}
	return errors.Join(errs...)
}

// SMTPServer is a running SMTP receiver.
type SMTPServer struct {
	srv    *smtp.Server
	ln     net.Listener
	served chan struct{}
	log    *slog.Logger
	// ctx ends at Close, and with it every handler's context
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	busy   sync.WaitGroup // handlers running
}

// ListenSMTP listens on cfg.Addr and serves in the background until Close.
// No AUTH is offered: the receiver is an MX for bounce mail only. The null
// sender (MAIL FROM:<>), which bounces use, is accepted.
func ListenSMTP(cfg SMTPConfig, h Handler) (*SMTPServer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, errors.New("inbound: ListenSMTP without a handler")
	}
	cfg = cfg.withDefaults()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("inbound: smtp listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &SMTPServer{ln: ln, served: make(chan struct{}), log: cfg.Log, ctx: ctx, cancel: cancel}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &session{s: s, cfg: cfg, h: h}, nil
	}))
	s.srv.Domain = cfg.Domain
	// our own reader in Data enforces MaxBytes exactly; go-smtp's limit,
	// one byte higher, refuses a MAIL FROM SIZE= that is too large and
	// stops its reader just past ours (at exactly its limit it cannot
	// tell a message that ends there from a longer one)
	s.srv.MaxMessageBytes = cfg.MaxBytes + 1
	s.srv.MaxRecipients = cfg.MaxRecipients
	s.srv.ReadTimeout = cfg.Timeout
	s.srv.WriteTimeout = cfg.Timeout
	s.srv.TLSConfig = cfg.TLS
	s.srv.ErrorLog = slogPrinter{cfg.Log}
	go func() {
		defer close(s.served)
		s.srv.Serve(&limitListener{Listener: ln, slots: make(chan struct{}, cfg.MaxConns),
			domain: cfg.Domain, log: cfg.Log})
	}()
	cfg.Log.Info("smtp: receiving bounce mail", "addr", ln.Addr().String(),
		"max_bytes", cfg.MaxBytes, "max_conns", cfg.MaxConns, "starttls", cfg.TLS != nil)
	return s, nil
}

// Addr is the address the server listens on (with the port it got for
// ":0").
func (s *SMTPServer) Addr() string { return s.ln.Addr().String() }

// Close stops listening, cuts every connection, and returns once no
// handler runs any more (their contexts are canceled).
func (s *SMTPServer) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	err := s.srv.Close()
	<-s.served
	s.busy.Wait()
	return err
}

// begin registers a running handler; false once the server is closing.
func (s *SMTPServer) begin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.busy.Add(1)
	return true
}

// notTaken answers a message the handler refused: the sender keeps it
// and tries again later.
func notTaken() error {
	return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
		Message: "Message not taken now, try again later"}
}

// unknownRcpt refuses a recipient that is not ours (no relaying).
func unknownRcpt() error {
	return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1},
		Message: "No such recipient here"}
}

// session is one SMTP connection's transaction state.
type session struct {
	s     *SMTPServer
	cfg   SMTPConfig
	h     Handler
	rcpts []string
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	// any sender, the null one (bounces) included: who sent a bounce
	// does not matter, only which VERP address it is for
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if !ss.cfg.Accept(to) {
		ss.s.log.Debug("smtp: recipient refused", "code", 550)
		return unknownRcpt()
	}
	for _, r := range ss.rcpts {
		if r == to {
			return nil
		}
	}
	ss.rcpts = append(ss.rcpts, to)
	return nil
}

// Data reads the message, bounded, and gives it to the handler once per
// recipient. One reply covers all recipients, so when the handler refuses
// any of them the whole message is refused and comes again for all.
func (ss *session) Data(r io.Reader) error {
	raw, tooBig, err := readLimited(r, ss.cfg.MaxBytes)
	if tooBig || errors.Is(err, smtp.ErrDataTooLarge) {
		ss.s.log.Info("smtp: message too large", "code", 552, "max_bytes", ss.cfg.MaxBytes)
		return smtp.ErrDataTooLarge
	}
	if err != nil {
		return err
	}
	if !ss.s.begin() {
		return notTaken()
	}
	defer ss.s.busy.Done()
	ctx, cancel := context.WithTimeout(ss.s.ctx, ss.cfg.Timeout)
	defer cancel()
	for _, rcpt := range ss.rcpts {
		if err := ss.h(ctx, rcpt, raw); err != nil {
			ss.s.log.Warn("smtp: handler did not take a message", "code", 451, "bytes", len(raw), "err", err)
			return notTaken()
		}
	}
	ss.s.log.Info("smtp: message taken", "code", 250, "bytes", len(raw), "recipients", len(ss.rcpts))
	return nil
}

func (ss *session) Reset()        { ss.rcpts = nil }
func (ss *session) Logout() error { return nil }

// limitListener hands at most cap(slots) connections to the server at
// once; one over that is answered 421 and closed at once, without a
// goroutine of its own.
type limitListener struct {
	net.Listener
	slots  chan struct{}
	domain string
	log    *slog.Logger
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &slotConn{Conn: c, release: sync.OnceFunc(func() { <-l.slots })}, nil
		default:
			l.refuse(c)
		}
	}
}

// refuse answers 421 (RFC 5321 4.2.3: service not available, closing)
// with a short deadline, so a client that does not read cannot stall
// Accept.
func (l *limitListener) refuse(c net.Conn) {
	c.SetWriteDeadline(time.Now().Add(time.Second))
	io.WriteString(c, "421 4.3.2 "+l.domain+" Too many connections, try again later\r\n")
	c.Close()
	l.log.Warn("smtp: connection refused, too many", "code", 421, "max_conns", cap(l.slots))
}

// slotConn gives its slot back when closed (once, however often Close is
// called: go-smtp closes it, and a TLS connection over it closes it too).
type slotConn struct {
	net.Conn
	release func()
}

func (c *slotConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}

// slogPrinter passes go-smtp's own error log (network errors, handshake
// failures, a recovered panic) to slog. go-smtp logs no addresses or
// message content there.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Printf(format string, v ...any) {
	p.log.Warn("smtp: " + fmt.Sprintf(format, v...))
}

func (p slogPrinter) Println(v ...any) {
	p.log.Warn("smtp: " + fmt.Sprint(v...))
}
