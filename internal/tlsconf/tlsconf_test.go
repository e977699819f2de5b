package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fjord/internal/testnet"
)

// serve runs h over TLS with cfg on a loopback port, as fjord serve does
// (a TLS listener under net/http), and returns the address.
func serve(t *testing.T, cfg *tls.Config, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// the refused handshakes are expected; their log lines are noise
	srv := &http.Server{Handler: h, TLSConfig: cfg, ErrorLog: stdlog.New(io.Discard, "", 0)}
	go srv.Serve(tls.NewListener(ln, cfg))
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// handshake connects with client and returns the connection's state.
func handshake(addr string, client *tls.Config) (tls.ConnectionState, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, client)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	return c.ConnectionState(), nil
}

func suiteIDs(ss []*tls.CipherSuite) []uint16 {
	var out []uint16
	for _, s := range ss {
		out = append(out, s.ID)
	}
	return out
}

// TestServerConfigRefusesOldAndWeak: TLS 1.0 and 1.1, CBC suites and RSA
// key exchange are refused, the AEAD ECDHE suites of TLS 1.2 and TLS 1.3
// are accepted, with an ECDSA and with an RSA certificate. Each refusal is
// first shown to succeed against a server that allows everything, so it
// is the configuration that refuses and not the client or the key type.
func TestServerConfigRefusesOldAndWeak(t *testing.T) {
	dir := t.TempDir()
	ca := testnet.NewCA(t, dir)
	for _, keyType := range []string{"ecdsa", "rsa"} {
		t.Run(keyType, func(t *testing.T) {
			certFile, keyFile, _ := ca.Issue(t, dir, keyType, testnet.Leaf{RSA: keyType == "rsa"})
			f, err := LoadFiles(certFile, keyFile)
			if err != nil {
				t.Fatal(err)
			}
			cfg := ServerConfig()
			cfg.GetCertificate = f.GetCertificate
			addr := serve(t, cfg, HSTS(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })))
			anything := &tls.Config{GetCertificate: f.GetCertificate, MinVersion: tls.VersionTLS10,
				CipherSuites: append(suiteIDs(tls.CipherSuites()), suiteIDs(tls.InsecureCipherSuites())...)}
			permissive := serve(t, anything, http.NotFoundHandler())

			cbc, gcm, chacha := tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
			if keyType == "rsa" {
				cbc, gcm, chacha = tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
			}
			client := func(minV, maxV uint16, suites ...uint16) *tls.Config {
				return &tls.Config{RootCAs: ca.Pool, MinVersion: minV, MaxVersion: maxV, CipherSuites: suites}
			}
			refused := map[string]*tls.Config{
				"TLS 1.0":     client(tls.VersionTLS10, tls.VersionTLS10),
				"TLS 1.1":     client(tls.VersionTLS11, tls.VersionTLS11),
				"CBC":         client(tls.VersionTLS12, tls.VersionTLS12, cbc),
				"3DES":        client(tls.VersionTLS12, tls.VersionTLS12, tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA, tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA),
				"AES-CBC-256": client(tls.VersionTLS12, tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA),
			}
			if keyType == "rsa" {
				refused["RSA key exchange"] = client(tls.VersionTLS12, tls.VersionTLS12, tls.TLS_RSA_WITH_AES_128_GCM_SHA256)
			}
			for name, c := range refused {
				if keyType == "ecdsa" && name == "3DES" {
					continue // no ECDSA 3DES suite exists
				}
				if _, err := handshake(permissive, c); err != nil {
					t.Fatalf("%s: even a server allowing everything refuses this client, so the test shows nothing: %v", name, err)
				}
				if st, err := handshake(addr, c); err == nil {
					t.Errorf("%s: accepted (%s, %s)", name, tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
				}
			}
			for name, c := range map[string]*tls.Config{
				"TLS 1.2 AES-GCM":           client(tls.VersionTLS12, tls.VersionTLS12, gcm),
				"TLS 1.2 ChaCha20-Poly1305": client(tls.VersionTLS12, tls.VersionTLS12, chacha),
				"TLS 1.3":                   client(tls.VersionTLS13, tls.VersionTLS13),
			} {
				st, err := handshake(addr, c)
				if err != nil {
					t.Errorf("%s: refused: %v", name, err)
					continue
				}
				if name == "TLS 1.3" && st.Version != tls.VersionTLS13 {
					t.Errorf("TLS 1.3: got %s", tls.VersionName(st.Version))
				}
			}

			// HSTS on the HTTPS response, over HTTP/2 (which needs "h2"
			// in the listener's configuration)
			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool}, ForceAttemptHTTP2: true}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr}).Get("https://" + addr + "/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=31536000; includeSubDomains" {
				t.Errorf("Strict-Transport-Security = %q", got)
			}
			if resp.ProtoMajor != 2 {
				t.Errorf("protocol %s, want HTTP/2", resp.Proto)
			}
		})
	}
}

// TestHSTSOnlyOverTLS: the header is not sent over plain HTTP, where it
// means nothing (and a proxy in front sets its own).
func TestHSTSOnlyOverTLS(t *testing.T) {
	h := HSTS(http.NotFoundHandler())
	r, _ := http.NewRequest("GET", "http://127.0.0.1/", nil)
	w := &headerRecorder{h: http.Header{}}
	h.ServeHTTP(w, r)
	if got := w.h.Get("Strict-Transport-Security"); got != "" {
		t.Fatalf("over plain HTTP: %q", got)
	}
	r.TLS = &tls.ConnectionState{}
	h.ServeHTTP(w, r)
	if got := w.h.Get("Strict-Transport-Security"); !strings.HasPrefix(got, "max-age=31536000") {
		t.Fatalf("over TLS: %q", got)
	}
}

type headerRecorder struct{ h http.Header }

func (r *headerRecorder) Header() http.Header         { return r.h }
func (r *headerRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *headerRecorder) WriteHeader(int)             {}

// plainServer runs h on a plain-HTTP loopback port.
func plainServer(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// noFollow is a client that shows redirects instead of following them.
var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}

func send(t *testing.T, method, addr, host, path string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+addr+path, strings.NewReader("a=b"))
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestRedirect: the plain port sends every request to the same host,
// path and query over HTTPS, keeping the method for all but GET and HEAD.
func TestRedirect(t *testing.T) {
	addr := plainServer(t, Redirect(nil, "8443"))
	_, port, _ := net.SplitHostPort(addr)
	for _, c := range []struct {
		method, host, path string
		code               int
		want               string
	}{
		{"GET", "", "/signin?x=1", 301, "https://127.0.0.1:8443/signin?x=1"},
		{"HEAD", "", "/", 301, "https://127.0.0.1:8443/"},
		{"POST", "", "/api/event", 308, "https://127.0.0.1:8443/api/event"},
		{"GET", "analytics.example.com", "/a/b%20c?q=%2F&r", 301, "https://analytics.example.com:8443/a/b%20c?q=%2F&r"},
		{"GET", "[::1]:" + port, "/x", 301, "https://[::1]:8443/x"},
		{"GET", "analytics.example.com", "//evil.example/x", 301, "https://analytics.example.com:8443//evil.example/x"},
	} {
		resp := send(t, c.method, addr, c.host, c.path)
		if resp.StatusCode != c.code || resp.Header.Get("Location") != c.want {
			t.Errorf("%s %s (Host %q): %d %q, want %d %q", c.method, c.path, c.host, resp.StatusCode, resp.Header.Get("Location"), c.code, c.want)
		}
	}
	// on 443 the port is left out
	addr443 := plainServer(t, Redirect(nil, "443"))
	for host, want := range map[string]string{"analytics.example.com": "https://analytics.example.com/x", "[::1]": "https://[::1]/x"} {
		if resp := send(t, "GET", addr443, host, "/x"); resp.Header.Get("Location") != want {
			t.Errorf("Host %s on 443: %q, want %q", host, resp.Header.Get("Location"), want)
		}
	}
}

// TestRedirectPassesACMEChallenges: with a manager, a challenge path
// reaches autocert (which knows no such token: 404, with its own message;
// for a host not in acme-domains: 403) instead of being redirected; other
// paths are still redirected. No network is used.
func TestRedirectPassesACMEChallenges(t *testing.T) {
	m := ACME([]string{"fjord.example.com"}, t.TempDir(), "")
	addr := plainServer(t, Redirect(m, "443"))
	resp := send(t, "GET", addr, "fjord.example.com", "/.well-known/acme-challenge/x")
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Location") != "" {
		t.Fatalf("challenge: %d, Location %q; want autocert's 404", resp.StatusCode, resp.Header.Get("Location"))
	}
	req, _ := http.NewRequest("GET", "http://"+addr+"/.well-known/acme-challenge/x", nil)
	req.Host = "fjord.example.com"
	r2, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r2.Body)
	r2.Body.Close()
	if !strings.Contains(string(body), "acme/autocert") {
		t.Errorf("challenge answered by something other than autocert: %q", body)
	}
	if resp := send(t, "GET", addr, "other.example.com", "/.well-known/acme-challenge/x"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("challenge for a host not in acme-domains: %d, want 403", resp.StatusCode)
	}
	if resp := send(t, "GET", addr, "fjord.example.com", "/signin"); resp.StatusCode != 301 || resp.Header.Get("Location") != "https://fjord.example.com/signin" {
		t.Errorf("other path: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// FuzzRedirect: whatever the Host header and path, the redirect goes to
// https:// on the host named (never to another host), with the path and
// query as sent.
func FuzzRedirect(f *testing.F) {
	f.Add("example.com", "/a?b=c")
	f.Add("[::1]:80", "//evil.example/")
	f.Add("a@b", "/")
	f.Add("x/y", "/\\evil")
	h := Redirect(nil, "8443")
	f.Fuzz(func(t *testing.T, host, path string) {
		r, err := http.NewRequest("GET", "http://x/", nil)
		if err != nil {
			t.Skip()
		}
		u, err := url.ParseRequestURI(path)
		if err != nil {
			return
		}
		r.URL, r.Host = u, host
		w := &codeRecorder{headerRecorder: headerRecorder{h: http.Header{}}}
		h.ServeHTTP(w, r)
		if w.code == http.StatusBadRequest {
			return
		}
		loc, err := url.Parse(w.h.Get("Location"))
		if err != nil {
			t.Fatalf("Host %q path %q: Location %q does not parse: %v", host, path, w.h.Get("Location"), err)
		}
		want := host
		if h, _, err := net.SplitHostPort(host); err == nil {
			want = h
		}
		want = strings.Trim(want, "[]")
		wantURI := u.RequestURI()
		if !strings.HasPrefix(wantURI, "/") {
			wantURI = "/"
		}
		if loc.Scheme != "https" || loc.Hostname() != want || loc.Port() != "8443" || w.h.Get("Location") != "https://"+net.JoinHostPort(want, "8443")+wantURI {
			t.Fatalf("Host %q path %q: Location %q", host, path, w.h.Get("Location"))
		}
	})
}

type codeRecorder struct {
	headerRecorder
	code int
}

func (r *codeRecorder) WriteHeader(code int) { r.code = code }

// TestFilesReload: new files are served once they are on disk (no
// restart); a certificate written before its key, or a broken pair, is
// reported with the file names and the previous certificate stays.
func TestFilesReload(t *testing.T) {
	dir := t.TempDir()
	ca := testnet.NewCA(t, dir)
	issue := func(name string) (cert, key []byte, c *x509.Certificate) {
		cf, kf, c := ca.Issue(t, dir, name, testnet.Leaf{})
		cert, _ = os.ReadFile(cf)
		key, _ = os.ReadFile(kf)
		return cert, key, c
	}
	certFile, keyFile := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	put := func(file string, data []byte) {
		t.Helper()
		// a rename, as certbot and most tools do it
		tmp := file + ".tmp"
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
	}
	aCert, aKey, a := issue("a")
	put(certFile, aCert)
	put(keyFile, aKey)
	f, err := LoadFiles(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testnet.Output{}
	f.Log = slog.New(slog.NewTextHandler(logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watching := make(chan struct{})
	go func() { f.Watch(ctx, 5*time.Millisecond); close(watching) }()
	cfg := ServerConfig()
	cfg.GetCertificate = f.GetCertificate
	addr := serve(t, cfg, http.NotFoundHandler())

	served := func() string {
		t.Helper()
		st, err := handshake(addr, &tls.Config{RootCAs: ca.Pool})
		if err != nil {
			t.Fatal(err)
		}
		return st.PeerCertificates[0].SerialNumber.String()
	}
	eventually := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 10 s; log:\n%s", what, logs.String())
			}
		}
	}
	if got := served(); got != a.SerialNumber.String() {
		t.Fatalf("serving %s, want A %s", got, a.SerialNumber)
	}

	bCert, bKey, b := issue("b")
	put(certFile, bCert)
	put(keyFile, bKey)
	eventually("B served after the files changed", func() bool { return served() == b.SerialNumber.String() })

	// C's certificate before its key: B's key does not fit it
	cCert, cKey, c := issue("c")
	put(certFile, cCert)
	eventually("the half-written pair reported", func() bool { return strings.Contains(logs.String(), "reload failed") })
	if got := served(); got != b.SerialNumber.String() {
		t.Fatalf("with C's certificate and B's key on disk: serving %s, want B %s", got, b.SerialNumber)
	}
	if l := logs.String(); !strings.Contains(l, certFile) || !strings.Contains(l, keyFile) || !strings.Contains(l, "still serving the previous certificate") {
		t.Errorf("the failure does not name the files and what happens: %s", l)
	}
	put(keyFile, cKey)
	eventually("C served once its key is written", func() bool { return served() == c.SerialNumber.String() })

	// garbage, and a missing key: C stays (Reload called here, so the
	// watcher must not see the change first)
	cancel()
	<-watching
	put(certFile, []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"))
	if changed, err := f.Reload(); !changed || err == nil {
		t.Fatalf("garbage certificate: changed %v, err %v", changed, err)
	}
	os.Remove(keyFile)
	if _, err := f.Reload(); err == nil || !strings.Contains(err.Error(), "tls-key") {
		t.Fatalf("missing key: %v", err)
	}
	if got := served(); got != c.SerialNumber.String() {
		t.Fatalf("after garbage: serving %s, want C %s", got, c.SerialNumber)
	}
	for _, secret := range [][]byte{aKey, bKey, cKey} {
		body := strings.Split(string(secret), "\n")[1]
		if strings.Contains(logs.String(), body[:20]) {
			t.Fatal("key material in the log")
		}
	}
}

// TestLoadFilesErrors: a server does not start on files that are not a
// pair, and the error names both files.
func TestLoadFilesErrors(t *testing.T) {
	dir := t.TempDir()
	ca := testnet.NewCA(t, dir)
	aCert, _, _ := ca.Issue(t, dir, "a", testnet.Leaf{})
	_, bKey, _ := ca.Issue(t, dir, "b", testnet.Leaf{})
	if _, err := LoadFiles(aCert, bKey); err == nil || !strings.Contains(err.Error(), aCert) || !strings.Contains(err.Error(), bKey) {
		t.Fatalf("mismatched pair: %v", err)
	}
	if _, err := LoadFiles(filepath.Join(dir, "none.crt"), bKey); err == nil || !strings.Contains(err.Error(), "tls-cert") {
		t.Fatalf("missing certificate: %v", err)
	}
}
