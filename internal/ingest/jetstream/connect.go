package jetstream

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// ConnectOptions are how Connect reaches NATS. Credentials may also be in
// the URL (nats://user:password@host); they never reach a log or an error.
type ConnectOptions struct {
	Name          string        // client name shown by the server, e.g. "fjord-edge"
	Token         string        // authentication token; "" for none
	CredsFile     string        // NATS credentials file (JWT and seed); "" for none
	CAFile        string        // PEM roots to verify the server's TLS certificate; "" for the system roots
	ReconnectWait time.Duration // between reconnect attempts; default 2 s
	Logger        *slog.Logger  // disconnects and reconnects; default: discard
}

// Connect connects to the comma-separated server URLs and reconnects
// forever after a loss: the edge's spool and the consumer's back-off ride
// out an outage, so giving up would only turn it into a restart. The first
// connection is retried too (a NATS cluster down while Fjord restarts
// must not keep collection down); a malformed URL is an error at once.
func Connect(urls string, o ConnectOptions) (*nats.Conn, error) {
	// nats.Connect's own parse error would quote the URL, password and all.
	for i, p := range strings.Split(urls, ",") {
		if _, err := parseURL(p); err != nil {
			return nil, fmt.Errorf("nats: server URL %d is not a valid URL", i+1)
		}
	}
	if o.ReconnectWait <= 0 {
		o.ReconnectWait = 2 * time.Second
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.MaxReconnects(-1),
		// a server that is down when Fjord starts is tried again, like one
		// lost later: collection must not depend on NATS being up first
		nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(o.ReconnectWait),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			log.Warn("nats: disconnected", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats: reconnected", "server", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
			log.Warn("nats: asynchronous error", "err", err)
		}),
	}
	if o.Token != "" {
		opts = append(opts, nats.Token(o.Token))
	}
	if o.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(o.CredsFile))
	}
	if o.CAFile != "" {
		opts = append(opts, nats.RootCAs(o.CAFile))
	}
	nc, err := nats.Connect(urls, opts...)
	if err != nil {
		return nil, fmt.Errorf("nats: connect to %s: %w", RedactURLs(urls), err)
	}
	return nc, nil
}

// RedactURLs returns the comma-separated URLs with any user information
// replaced: a lone user name in a NATS URL is a token, so it is as secret
// as a password.
func RedactURLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		u, err := parseURL(p)
		switch {
		case err != nil:
			// url.Parse's error quotes its input; say nothing of it.
			parts[i] = "(unparsable URL)"
		case u.User != nil:
			u.User = url.User("redacted")
			parts[i] = u.String()
		default:
			parts[i] = p
		}
	}
	return strings.Join(parts, ",")
}

// parseURL parses one server URL as nats.go does: "host:port" alone means
// nats://host:port.
func parseURL(s string) (*url.URL, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "://") {
		s = "nats://" + s
	}
	return url.Parse(s)
}
