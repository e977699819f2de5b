package tlsconf

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Files serves the certificate of a certificate file and a key file, and
// loads them again when they change on disk (a renewal by certbot or
// another ACME client), so that a renewal needs no restart.
type Files struct {
	certFile, keyFile string
	// Log receives a line for each reload and each pair that does not
	// load (nil: none). It never holds key material, only file names.
	Log *slog.Logger

	mu   sync.Mutex // guards cert, which every handshake reads
	cert *tls.Certificate

	// Reload's own lock, so that reading files never holds up a handshake.
	reload sync.Mutex
	// What the files held when last read, loaded or not. Reload compares
	// contents, not modification times: two writes of a file within the
	// file system's clock tick (a few milliseconds) can leave the same
	// time and size, and reading two small files a second costs nothing.
	seenCert, seenKey []byte
}

// LoadFiles loads the pair; an error here means serving cannot start.
func LoadFiles(certFile, keyFile string) (*Files, error) {
	f := &Files{certFile: certFile, keyFile: keyFile}
	c, k, err := f.read()
	if err != nil {
		return nil, err
	}
	cert, err := f.parse(c, k)
	if err != nil {
		return nil, err
	}
	f.cert, f.seenCert, f.seenKey = cert, c, k
	return f, nil
}

// GetCertificate is the tls.Config hook: the certificate loaded last.
func (f *Files) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return f.Current(), nil
}

// Current is the certificate being served (its Leaf parsed).
func (f *Files) Current() *tls.Certificate {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cert
}

// Reload loads the files again if they changed since it last read them.
// changed reports whether they did; err, that they did but do not load as
// a pair, in which case the previous certificate is still served. A
// renewal that writes the certificate before the key is such a moment:
// the next look, after the key is written, loads the new pair.
func (f *Files) Reload() (changed bool, err error) {
	f.reload.Lock()
	defer f.reload.Unlock()
	c, k, err := f.read()
	if err != nil {
		// a file missing for a moment (replaced by a rename) is
		// reported once, and read again when it is back
		if f.seenCert == nil {
			return false, nil
		}
		f.seenCert, f.seenKey = nil, nil
		return true, fmt.Errorf("%w; still serving the previous certificate", err)
	}
	if bytes.Equal(c, f.seenCert) && bytes.Equal(k, f.seenKey) {
		return false, nil
	}
	f.seenCert, f.seenKey = c, k
	cert, err := f.parse(c, k)
	if err != nil {
		return true, fmt.Errorf("%w; still serving the previous certificate", err)
	}
	f.mu.Lock()
	f.cert = cert
	f.mu.Unlock()
	return true, nil
}

// Watch calls Reload every interval until ctx ends, and logs what it
// finds. A second is a good interval: it reads two small files.
func (f *Files) Watch(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed, err := f.Reload()
		if f.Log == nil || !changed {
			continue
		}
		if err != nil {
			f.Log.Error("TLS certificate reload failed", "err", err)
			continue
		}
		f.Log.Info("TLS certificate loaded", "tls_cert", f.certFile, "expires", f.Current().Leaf.NotAfter)
	}
}

func (f *Files) read() (cert, key []byte, err error) {
	if cert, err = os.ReadFile(f.certFile); err != nil {
		return nil, nil, fmt.Errorf("tls-cert: %w", err)
	}
	if key, err = os.ReadFile(f.keyFile); err != nil {
		return nil, nil, fmt.Errorf("tls-key: %w", err)
	}
	return cert, key, nil
}

// parse makes the pair a certificate; tls.X509KeyPair's errors never
// quote the key.
func (f *Files) parse(cert, key []byte) (*tls.Certificate, error) {
	c, err := tls.X509KeyPair(cert, key)
	if err != nil {
		return nil, fmt.Errorf("tls-cert %s and tls-key %s are not a certificate and its key: %w", f.certFile, f.keyFile, err)
	}
	return &c, nil
}
