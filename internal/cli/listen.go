package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/acme/autocert"

	"fjord/internal/config"
	"fjord/internal/tlsconf"
	"fjord/internal/web"
)

// public is what `fjord serve` runs on its public addresses (PRODUCT
// §9.1): the listener of listen, with TLS on it unless listen is loopback
// and no certificate is set (config.Load refuses the rest), and the
// plain-HTTP server of http-listen, which only redirects to HTTPS and
// answers ACME challenges.
type public struct {
	ln     net.Listener // listen; a TLS listener when tls is set
	tls    *tls.Config
	scheme string // of ln: "https" or "http"

	redirect   *http.Server // nil without http-listen
	redirectLn net.Listener
	stopWatch  context.CancelFunc // ends the certificate files' watch
}

// listenPublic opens listen and http-listen and loads the certificates; an
// error (a file that does not load, an address in use) stops the start.
func listenPublic(ctx context.Context, cfg *config.Config, log *slog.Logger, edge func(net.Listener) net.Listener) (*public, error) {
	p := &public{scheme: "http", stopWatch: func() {}}
	var acme *autocert.Manager
	switch {
	case cfg.TLSCert != "":
		f, err := tlsconf.LoadFiles(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, err
		}
		f.Log = log
		p.tls = tlsconf.ServerConfig()
		p.tls.GetCertificate = f.GetCertificate
		wctx, cancel := context.WithCancel(ctx)
		p.stopWatch = cancel
		// a renewed certificate on disk is served within a second
		go f.Watch(wctx, time.Second)
		leaf := f.Current().Leaf
		if left := time.Until(leaf.NotAfter); left < 14*24*time.Hour {
			log.Warn("the TLS certificate expires soon: renew it (the new files are loaded without a restart)", "tls_cert", cfg.TLSCert, "expires", leaf.NotAfter)
		}
	case len(cfg.ACMEDomains) > 0:
		dir := cfg.ACMECacheDir()
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("acme-cache: %w", err)
		}
		acme = tlsconf.ACME(cfg.ACMEDomains, dir, cfg.ACMEEmail)
		p.tls = tlsconf.ACMEConfig(acme)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		p.stopWatch()
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	// the edge's connection limits and blocks come first: a refused
	// connection costs no TLS handshake
	ln = edge(ln)
	if p.tls != nil {
		p.scheme = "https"
		ln = tls.NewListener(ln, p.tls)
	}
	p.ln = ln
	if cfg.HTTPListen != "" {
		rl, err := net.Listen("tcp", cfg.HTTPListen)
		if err != nil {
			p.close()
			return nil, fmt.Errorf("http-listen on %s: %w", cfg.HTTPListen, err)
		}
		p.redirectLn = rl
		p.redirect = newHTTPServer(tlsconf.Redirect(acme, httpsPort(cfg, ln.Addr().String())))
	}
	switch {
	case cfg.TLSCert != "":
		log.Info("HTTPS with certificate files", "tls_cert", cfg.TLSCert, "http_listen", cfg.HTTPListen)
	case acme != nil:
		log.Info("HTTPS with certificates from ACME", "domains", strings.Join(cfg.ACMEDomains, ","), "cache", cfg.ACMECacheDir(), "http_listen", cfg.HTTPListen)
	default:
		log.Info("plain HTTP on a loopback address: put a TLS proxy in front for anyone else")
	}
	return p, nil
}

// server is the http.Server of listen for h: HSTS on every HTTPS answer.
func (p *public) server(h http.Handler) *http.Server {
	if p.tls != nil {
		h = tlsconf.HSTS(h)
	}
	s := newHTTPServer(h)
	s.TLSConfig = p.tls
	return s
}

// serveRedirect runs the plain-HTTP server, if any, reporting its end to
// errc.
func (p *public) serveRedirect(errc chan<- error) {
	if p.redirect != nil {
		go func() { errc <- p.redirect.Serve(p.redirectLn) }()
	}
}

// shutdown ends the plain-HTTP server and the certificate watch.
func (p *public) shutdown(ctx context.Context) {
	p.stopWatch()
	if p.redirect != nil {
		p.redirect.Shutdown(ctx)
	}
}

// close closes what is open when the start fails half-way.
func (p *public) close() {
	p.stopWatch()
	if p.ln != nil {
		p.ln.Close()
	}
	if p.redirectLn != nil {
		p.redirectLn.Close()
	}
}

// newHTTPServer is an http.Server with the limits of every public port:
// header, body and idle timeouts and a 16 KiB header.
func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    16 << 10,
		// net/http's own messages (TLS handshake errors too) name the
		// client's address; none of them may reach the log.
		ErrorLog: stdlog.New(io.Discard, "", 0),
	}
}

// httpsPort is the port the plain-HTTP port redirects to: public-url's
// when that is https (a port forward may stand between), else listen's.
func httpsPort(cfg *config.Config, listenAddr string) string {
	if u, err := url.Parse(cfg.PublicURL); err == nil && u.Scheme == "https" {
		if u.Port() != "" {
			return u.Port()
		}
		return "443"
	}
	_, port, _ := net.SplitHostPort(listenAddr)
	return port
}

// publicURL is where users reach a server listening on addr: public-url,
// or else the first ACME domain or the listen address, over https when
// TLS is on.
func publicURL(cfg *config.Config, addr string) string {
	if cfg.PublicURL != "" {
		return cfg.PublicURL
	}
	if !cfg.TLSOn() {
		return "http://" + linkHost(addr)
	}
	host := linkHost(addr)
	if len(cfg.ACMEDomains) > 0 {
		_, port, _ := net.SplitHostPort(addr)
		host = net.JoinHostPort(cfg.ACMEDomains[0], port)
	}
	return "https://" + strings.TrimSuffix(host, ":443")
}

// waitForStop serves until ctx ends or a server stops (logged unless it was
// closed), then takes the node out of readiness before the shutdown.
func waitForStop(ctx context.Context, errc <-chan error, srv *web.Server, log *slog.Logger) {
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			log.Error("server stopped", "err", err)
		}
	}
	srv.SetReady(false)
	log.Info("shutting down")
}
