package cli

import (
	"testing"

	"fjord/internal/config"
)

// TestPublicURL: without public-url, links go to https:// when TLS is on
// (the first ACME domain rather than an address), and the plain port
// redirects to public-url's port, which a port forward may make differ
// from listen's.
func TestPublicURL(t *testing.T) {
	for _, c := range []struct {
		flags           map[string]string
		addr, url, port string
	}{
		{map[string]string{}, "127.0.0.1:8080", "http://127.0.0.1:8080", "8080"},
		{map[string]string{"tls-cert": "c", "tls-key": "k"}, "127.0.0.1:8443", "https://127.0.0.1:8443", "8443"},
		{map[string]string{"tls-cert": "c", "tls-key": "k", "listen": ":443"}, "[::]:443", "https://localhost", "443"},
		{map[string]string{"acme-domains": "a.example.com,b.example.com", "listen": ":443"}, "[::]:443", "https://a.example.com", "443"},
		{map[string]string{"acme-domains": "a.example.com", "listen": ":8443"}, "[::]:8443", "https://a.example.com:8443", "8443"},
		{map[string]string{"tls-cert": "c", "tls-key": "k", "listen": ":8443", "public-url": "https://a.example.com"}, "[::]:8443", "https://a.example.com", "443"},
		{map[string]string{"tls-cert": "c", "tls-key": "k", "listen": ":8443", "public-url": "https://a.example.com:9443"}, "[::]:8443", "https://a.example.com:9443", "9443"},
	} {
		c.flags["region"] = "eu-fi-helsinki" // a node others reach declares it
		cfg, err := config.Load("", c.flags, func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		if got := publicURL(cfg, c.addr); got != c.url {
			t.Errorf("%v: public URL %s, want %s", c.flags, got, c.url)
		}
		if got := httpsPort(cfg, c.addr); got != c.port {
			t.Errorf("%v: redirect to port %s, want %s", c.flags, got, c.port)
		}
	}
}
