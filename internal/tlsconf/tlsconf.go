// Package tlsconf is Fjord's HTTPS (PRODUCT §9.1): the TLS settings every
// public listener uses, certificates from files (reloaded when they change
// on disk) or from ACME, HSTS, and the plain-HTTP port that only answers
// ACME challenges and redirects.
package tlsconf

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// ServerConfig is the base of every public TLS listener: TLS 1.2 and 1.3
// only, and for TLS 1.2 only ECDHE key exchange with AEAD ciphers
// (forward secrecy, no CBC padding oracles, no RSA key exchange). TLS
// 1.3's suites are all AEAD and Go does not let them be chosen. The
// caller sets GetCertificate.
func ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		// The post-quantum hybrid first (Go picks the order itself); P-384
		// for the few clients without X25519 or P-256.
		CurvePreferences: []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256, tls.CurveP384},
		// HTTP/2 needs "h2" here because the listener, not net/http,
		// does the handshake.
		NextProtos: []string{"h2", "http/1.1"},
	}
}

// ACME is a certificate manager for domains (and nothing else: a client
// naming another host gets no certificate, so nobody can make Fjord ask
// the CA for names it does not serve). Certificates and the account key
// are kept in cacheDir. Setting acme-domains is taken as accepting the
// CA's terms of service.
func ACME(domains []string, cacheDir, email string) *autocert.Manager {
	return &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		HostPolicy: autocert.HostWhitelist(domains...),
		Cache:      autocert.DirCache(cacheDir),
		Email:      email,
	}
}

// ACMEConfig is ServerConfig with the manager's certificates; it also
// answers TLS-ALPN-01 challenges, so ACME works on port 443 alone.
func ACMEConfig(m *autocert.Manager) *tls.Config {
	c := ServerConfig()
	c.GetCertificate = m.GetCertificate
	c.NextProtos = append(c.NextProtos, acme.ALPNProto)
	return c
}

// HSTS tells browsers to use only HTTPS for this host and its subdomains
// for a year, on every response that came over TLS (over plain HTTP the
// header means nothing, RFC 6797 §8.1).
func HSTS(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil {
			w.Header().Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
		}
		h.ServeHTTP(w, r)
	})
}

// Redirect is the handler of the plain-HTTP port: ACME HTTP-01 challenges
// go to the manager (when there is one), everything else is sent to the
// same host, path and query over HTTPS, on httpsPort unless that is 443.
// GET and HEAD get 301 (browsers remember it); other methods 308, which
// keeps the method and body. Nothing else is served over plain HTTP.
func Redirect(m *autocert.Manager, httpsPort string) http.Handler {
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.Trim(host, "[]")
		if !hostName(host) {
			http.Error(w, "this port only redirects to HTTPS, and the request names no usable host", http.StatusBadRequest)
			return
		}
		if httpsPort != "443" {
			host = net.JoinHostPort(host, httpsPort)
		} else if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		code := http.StatusPermanentRedirect
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			code = http.StatusMovedPermanently
		}
		uri := r.URL.RequestURI()
		if !strings.HasPrefix(uri, "/") {
			uri = "/" // "GET *" or an absolute form: nothing to keep
		}
		w.Header().Set("Location", "https://"+host+uri)
		w.WriteHeader(code)
	})
	if m != nil {
		h = m.HTTPHandler(h)
	}
	return h
}

// hostName: a DNS name or an IP address in the characters they use.
// net/http's check of the Host header allows more (%, !, ~, ...), none of
// which belongs in the host of a redirect.
func hostName(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	if strings.Contains(s, ":") {
		a, err := netip.ParseAddr(s)
		return err == nil && a.Is6() && a.Zone() == ""
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' || r == ':') {
			return false
		}
	}
	return true
}
