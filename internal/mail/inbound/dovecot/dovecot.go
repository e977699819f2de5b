// Package dovecot starts a real IMAP server for tests: the Dovecot binary
// named by FJORD_TEST_DOVECOT, as a non-root process with a generated
// configuration, one passwd-file user and one maildir, on a free loopback
// port. Messages are put into the mailbox by writing maildir files. Without
// the variable, the tests that need it skip.
package dovecot

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"fjord/internal/testnet"
)

// Env names the Dovecot binary.
const Env = "FJORD_TEST_DOVECOT"

// Options choose how the server is reached.
type Options struct {
	// TLS makes a certificate for 127.0.0.1, offers STARTTLS on the plain
	// port and listens for implicit TLS on a second port (TLSAddr);
	// Server.TLSConfig trusts the certificate.
	TLS bool
}

// Server is a running Dovecot with one user and its INBOX.
type Server struct {
	Addr      string      // 127.0.0.1:PORT, plain IMAP (STARTTLS offered with Options.TLS)
	TLSAddr   string      // 127.0.0.1:PORT, implicit TLS (with Options.TLS)
	TLSConfig *tls.Config // trusts the server's certificate (with Options.TLS)
	User      string
	Password  string

	maildir string
	owner   *owner
	seq     int
}

// owner is the unprivileged account Dovecot runs as.
type owner struct {
	uid, gid    int
	name, group string
	// drop: the test runs as root and must start Dovecot as this account
	// (Dovecot run as root would switch users itself, which is not what
	// the tests should depend on)
	drop bool
}

// Start runs Dovecot without TLS.
func Start(t testing.TB) *Server { return StartWith(t, Options{}) }

// StartWith runs Dovecot as opts say, waits until it greets, and stops it
// when the test ends. It skips the test when FJORD_TEST_DOVECOT is unset.
func StartWith(t testing.TB, opts Options) *Server {
	t.Helper()
	bin := testnet.Binary(t, Env, "it names the dovecot binary (Debian's dovecot-imapd, /usr/sbin/dovecot) that the IMAP tests read bounce mail from")
	own := currentOwner(t)
	dir := ownedDir(t, own)
	// base_dir holds Dovecot's unix sockets, whose paths may be at most
	// 107 bytes: t.TempDir's long names can exceed that, so a short one
	runDir, err := os.MkdirTemp("", "dovecot")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(runDir) })
	own.chown(t, runDir)

	s := &Server{User: "bounces", Password: "imap-test-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		maildir: filepath.Join(dir, "maildir"), owner: own}
	for _, sub := range []string{"", "cur", "new", "tmp"} {
		s.mkdir(t, filepath.Join(s.maildir, sub))
	}
	s.write(t, filepath.Join(dir, "passwd"), []byte(s.User+":{PLAIN}"+s.Password+"\n"))
	var certFile, keyFile string
	if opts.TLS {
		var pool *x509.CertPool
		certFile, keyFile, pool = testnet.SelfSigned(t, dir, "imap")
		own.chown(t, certFile)
		own.chown(t, keyFile)
		s.TLSConfig = &tls.Config{RootCAs: pool}
	}
	// a free port can be taken between asking and Dovecot's listening:
	// try again with new ports
	var lastErr error
	for try := 0; try < 3; try++ {
		port, tlsPort := testnet.FreePort(t), 0
		if opts.TLS {
			tlsPort = testnet.FreePort(t)
			s.TLSAddr = "127.0.0.1:" + strconv.Itoa(tlsPort)
		}
		s.Addr = "127.0.0.1:" + strconv.Itoa(port)
		conf := filepath.Join(dir, fmt.Sprintf("dovecot-%d.conf", try))
		s.write(t, conf, []byte(config(dir, filepath.Join(runDir, strconv.Itoa(try)), own, port, tlsPort, certFile, keyFile)))
		if lastErr = s.run(t, bin, conf, filepath.Join(dir, "dovecot.log")); lastErr == nil {
			return s
		}
	}
	t.Fatalf("dovecot did not start: %v", lastErr)
	return nil
}

// config is dovecot.conf for one unprivileged instance: every path Dovecot
// would otherwise take from /etc, /run or /var is in the test's
// directories, every service runs as the one unprivileged account and none chroots
// (both need root).
func config(dir, runDir string, own *owner, port, tlsPort int, certFile, keyFile string) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("base_dir = %s", runDir)
	p("state_dir = %s", filepath.Join(dir, "state"))
	p("log_path = %s", filepath.Join(dir, "dovecot.log"))
	p("info_log_path = %s", filepath.Join(dir, "dovecot.log"))
	p("default_login_user = %s", own.name)
	p("default_internal_user = %s", own.name)
	p("default_internal_group = %s", own.group)
	p("listen = 127.0.0.1")
	p("protocols = imap")
	p("mail_location = maildir:%s", filepath.Join(dir, "maildir"))
	p("auth_mechanisms = plain login")
	// a refused login is answered at once, not after 2 s
	p("auth_failure_delay = 0")
	p("passdb {\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%%u %s\n}", filepath.Join(dir, "passwd"))
	p("userdb {\n  driver = static\n  args = uid=%d gid=%d home=%s\n}", own.uid, own.gid, filepath.Join(dir, "home"))
	// the default 500 would refuse system accounts such as nobody
	p("first_valid_uid = 1\nfirst_valid_gid = 1")
	if certFile != "" {
		p("ssl = yes\nssl_cert = <%s\nssl_key = <%s", certFile, keyFile)
	} else {
		p("ssl = no")
	}
	p("service imap-login {\n  chroot =\n  inet_listener imap {\n    address = 127.0.0.1\n    port = %d\n  }\n  inet_listener imaps {\n    address = 127.0.0.1\n    port = %d\n  }\n}", port, tlsPort)
	p("service anvil {\n  chroot =\n}")
	p("service auth-worker {\n  user = %s\n}", own.name)
	return b.String()
}

// run starts the process and waits until it greets on its plain port.
func (s *Server) run(t testing.TB, bin, conf, logFile string) error {
	var out testnet.Output
	cmd := exec.Command(bin, "-F", "-c", conf)
	cmd.Stdout, cmd.Stderr = &out, &out
	if s.owner.drop {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{
			Uid: uint32(s.owner.uid), Gid: uint32(s.owner.gid), Groups: []uint32{}}}
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}
	output := func() string {
		logged, _ := os.ReadFile(logFile)
		return out.String() + string(logged)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("exited (%v):\n%s", err, output())
		default:
		}
		if s.ready() {
			t.Cleanup(func() {
				stop()
				if t.Failed() {
					t.Logf("dovecot output:\n%s", output())
				}
			})
			return nil
		}
		if time.Now().After(deadline) {
			stop()
			return fmt.Errorf("not ready after 30 s:\n%s", output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ready: the plain port sends the IMAP greeting. Dovecot may first say
// "* OK Waiting for authentication process to respond.." and then greet.
func (s *Server) ready() bool {
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return false
		}
		if strings.HasPrefix(line, "* OK [CAPABILITY") {
			return true
		}
	}
}

// Deliver puts a message into INBOX as a new maildir file (written in
// tmp/ and moved to new/, as a delivery agent does). Dovecot gives it to
// IMAP with CRLF line ends whatever raw has.
func (s *Server) Deliver(t testing.TB, raw []byte) {
	t.Helper()
	s.deliver(t, raw, "new", "")
}

// DeliverDeleted puts a message into INBOX already flagged \Deleted (the
// maildir flag T), as a client leaves one that it flagged but did not
// expunge.
func (s *Server) DeliverDeleted(t testing.TB, raw []byte) {
	t.Helper()
	s.deliver(t, raw, "cur", ":2,T")
}

func (s *Server) deliver(t testing.TB, raw []byte, sub, info string) {
	t.Helper()
	s.seq++
	name := fmt.Sprintf("%d.fjordtest%d.localhost", time.Now().UnixNano(), s.seq)
	tmp := filepath.Join(s.maildir, "tmp", name)
	s.write(t, tmp, raw)
	if err := os.Rename(tmp, filepath.Join(s.maildir, sub, name+info)); err != nil {
		t.Fatal(err)
	}
}

// Messages returns every message in INBOX as its maildir file holds it,
// in no particular order; expunged ones are gone.
func (s *Server) Messages(t testing.TB) [][]byte {
	t.Helper()
	var out [][]byte
	for _, sub := range []string{"new", "cur"} {
		entries, err := os.ReadDir(filepath.Join(s.maildir, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(s.maildir, sub, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
		}
	}
	return out
}

// Has reports whether INBOX holds a message containing marker.
func (s *Server) Has(t testing.TB, marker string) bool {
	t.Helper()
	for _, m := range s.Messages(t) {
		if bytes.Contains(m, []byte(marker)) {
			return true
		}
	}
	return false
}

func (s *Server) mkdir(t testing.TB, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	s.owner.chown(t, dir)
}

func (s *Server) write(t testing.TB, file string, b []byte) {
	t.Helper()
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s.owner.chown(t, file)
}

// currentOwner is the account Dovecot runs as: the current one, or
// "nobody" when the tests run as root (as in CI).
func currentOwner(t testing.TB) *owner {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	drop := os.Geteuid() == 0
	if drop {
		if u, err = user.Lookup("nobody"); err != nil {
			t.Fatalf("running as root, Dovecot is started as nobody: %v", err)
		}
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		t.Fatalf("group %s of %s: %v", u.Gid, u.Username, err)
	}
	return &owner{uid: uid, gid: gid, name: u.Username, group: g.Name, drop: drop}
}

// ownedDir is t.TempDir, made Dovecot's when its account is not the
// current one. t.TempDir is DIR/NNN in a DIR that the testing package made
// for this test alone (mode 0700): opening that one for traversal opens
// nothing else.
func ownedDir(t testing.TB, own *owner) string {
	t.Helper()
	dir := t.TempDir()
	if own.drop {
		if err := os.Chmod(filepath.Dir(dir), 0o711); err != nil {
			t.Fatal(err)
		}
		own.chown(t, dir)
	}
	return dir
}

func (o *owner) chown(t testing.TB, path string) {
	t.Helper()
	if !o.drop {
		return
	}
	if err := os.Chown(path, o.uid, o.gid); err != nil {
		t.Fatal(err)
	}
}
