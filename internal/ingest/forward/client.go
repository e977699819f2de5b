package forward

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Paths of the main service's collector endpoints.
const (
	SnapshotPath = "/api/collector/snapshot"
	EventsPath   = "/api/collector/events"
)

// Client talks to the main service's collector endpoints with one
// collector's token.
type Client struct {
	Base  *url.URL // the main service, e.g. https://analytics.example.com
	Token string
	HTTP  *http.Client // nil: a client with a 30 s timeout
}

// ParseBase checks the main service's address: HTTPS, or plain HTTP only
// to a loopback address (a token and the salts must not cross a network
// in clear).
func ParseBase(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("main service %q: want https://HOST[:PORT]", raw)
	}
	if u.Scheme == "http" && !loopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("main service %q: plain http only to a loopback address; the token and the salts must travel over TLS", raw)
	}
	u.Path, u.RawQuery, u.Fragment = strings.TrimSuffix(u.Path, "/"), "", ""
	return u, nil
}

// loopbackHost: "localhost" or a loopback address, never a name that
// only looks like one (127.example.com).
func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.IsLoopback()
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 30 * time.Second, CheckRedirect: noRedirect}
}

// noRedirect: a redirect is not the main service's answer (a POST turned
// into a GET by a proxy's 302 would otherwise read as delivered).
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Snapshot fetches the sites, salts and allowed regions.
func (c *Client) Snapshot(ctx context.Context) (Snapshot, error) {
	var s Snapshot
	resp, err := c.do(ctx, "GET", SnapshotPath, nil)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&s); err != nil {
		return s, fmt.Errorf("snapshot from the main service: %w", err)
	}
	return s, nil
}

// Send delivers a batch; nil means the main service holds every record
// durably (its journal is fsync'd before it answers).
func (c *Client) Send(ctx context.Context, recs [][]byte) error {
	resp, err := c.do(ctx, "POST", EventsPath, EncodeBatch(recs))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// Only the main service's own answer, accounting for every record,
	// confirms the batch: a 200 from something in between (a maintenance
	// page, a captive proxy) must not free the spool.
	var got struct {
		Accepted    *int `json:"accepted"`
		UnknownSite int  `json:"unknown_site"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&got); err != nil || got.Accepted == nil {
		return fmt.Errorf("POST %s: the answer is not the main service's confirmation", EventsPath)
	}
	if *got.Accepted+got.UnknownSite != len(recs) {
		return fmt.Errorf("POST %s: the main service confirmed %d of %d records", EventsPath, *got.Accepted+got.UnknownSite, len(recs))
	}
	return nil
}

func (c *Client) do(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	u := *c.Base
	u.Path += path
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, redact(err))
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		msg := strings.TrimSpace(string(data))
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return nil, &StatusError{Code: resp.StatusCode, Msg: fmt.Sprintf("%s %s: %s: %s", method, path, resp.Status, msg)}
	}
	return resp, nil
}

// StatusError is a refusal by the main service.
type StatusError struct {
	Code int
	Msg  string
}

func (e *StatusError) Error() string { return e.Msg }

// redact drops the URL from a transport error: it holds no secret, but the
// error reads better without the repetition, and a userinfo part would.
func redact(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}
