package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fjord/internal/testnet"
)

// tlsServer is a `fjord serve` over HTTPS, with its plain-HTTP port.
type tlsServer struct {
	Addr, HTTPAddr string
	Client         *http.Client // trusts the test CA
	out            *syncBuffer
}

// startTLSServer runs fjord serve with the certificate files on
// 127.0.0.1 and a plain-HTTP port, and waits for /healthz over HTTPS.
func startTLSServer(t *testing.T, certFile, keyFile string, pool *x509.CertPool) *tlsServer {
	t.Helper()
	s := &tlsServer{Addr: freePort(t), HTTPAddr: freePort(t), out: &syncBuffer{},
		Client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	cmd := exec.Command(fjordBin(t), "serve", "--listen", s.Addr, "--data-dir", filepath.Join(t.TempDir(), "d"),
		"--tls-cert", certFile, "--tls-key", keyFile, "--http-listen", s.HTTPAddr)
	cmd.Stdout, cmd.Stderr = s.out, s.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	})
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := s.Client.Get("https://" + s.Addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
		if cmd.ProcessState != nil {
			break
		}
	}
	t.Fatalf("fjord serve over TLS did not become healthy:\n%s", s.out.String())
	return nil
}

// TestServeTLS: with certificate files fjord serve answers over HTTPS
// only, with HSTS and Secure cookies; the plain port redirects to the
// same path and query over HTTPS; a renewed certificate on disk is served
// without a restart.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testnet.NewCA(t, dir)
	certFile, keyFile, first := ca.Issue(t, dir, "server", testnet.Leaf{})
	s := startTLSServer(t, certFile, keyFile, ca.Pool)

	resp, err := s.Client.Get("https://" + s.Addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=31536000; includeSubDomains" {
		t.Errorf("/healthz: Strict-Transport-Security %q", got)
	}
	if resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 || resp.TLS.PeerCertificates[0].SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Errorf("/healthz: TLS state %+v", resp.TLS)
	}
	// a page that sets a cookie: Secure, and HSTS there too
	resp, err = s.Client.Get("https://" + s.Addr + "/signin")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(resp.Cookies()) == 0 || resp.Header.Get("Strict-Transport-Security") == "" {
		t.Errorf("/signin: cookies %v, HSTS %q", resp.Cookies(), resp.Header.Get("Strict-Transport-Security"))
	}
	for _, c := range resp.Cookies() {
		if !c.Secure {
			t.Errorf("cookie %s is not Secure over HTTPS", c.Name)
		}
	}

	// the plain port only redirects
	for _, m := range []struct{ method, code string }{{"GET", "301"}, {"POST", "308"}} {
		req, _ := http.NewRequest(m.method, "http://"+s.HTTPAddr+"/signin?x=1", strings.NewReader("email=a"))
		resp, err = s.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := "https://" + s.Addr + "/signin?x=1"; !strings.HasPrefix(resp.Status, m.code) || resp.Header.Get("Location") != want {
			t.Errorf("%s on the plain port: %s %q, want %s %q", m.method, resp.Status, resp.Header.Get("Location"), m.code, want)
		}
	}
	// and the HTTPS port speaks no plain HTTP
	if resp, err := http.Get("http://" + s.Addr + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP answered 200 on the HTTPS port")
		}
	}

	// a renewal: new files on disk are served within about a second
	renewed, renewedKey, second := ca.Issue(t, dir, "renewed", testnet.Leaf{})
	for _, f := range [][2]string{{renewedKey, keyFile}, {renewed, certFile}} {
		if err := os.Rename(f[0], f[1]); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		conn, err := tls.Dial("tcp", s.Addr, &tls.Config{RootCAs: ca.Pool})
		if err != nil {
			t.Fatal(err)
		}
		serial := conn.ConnectionState().PeerCertificates[0].SerialNumber
		conn.Close()
		if serial.Cmp(second.SerialNumber) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the renewed certificate is not served after 15 s:\n%s", s.out.String())
		}
	}
	if !strings.Contains(s.out.String(), "TLS certificate loaded") {
		t.Errorf("the reload is not logged:\n%s", s.out.String())
	}
}

// TestServeRefusesPlainHTTPOnPublicAddress: plain HTTP is for loopback
// only; fjord serve on another address without TLS exits at once, naming
// listen.
func TestServeRefusesPlainHTTPOnPublicAddress(t *testing.T) {
	_, port, _ := strings.Cut(freePort(t), ":")
	out := fjordFails(t, nil, "serve", "--data-dir", t.TempDir(), "--listen", "0.0.0.0:"+port)
	if !strings.Contains(out, `listen "0.0.0.0:`+port+`" is not a loopback address: set tls-cert and tls-key, or acme-domains`) {
		t.Fatalf("output does not name listen and the way out:\n%s", out)
	}
}
