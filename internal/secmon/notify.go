package secmon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"fjord/internal/mail"
	"fjord/internal/store"
)

// WebhookTimeout bounds one POST of an alert to the operator's webhook.
const WebhookTimeout = 10 * time.Second

// maxPosts is how many webhook posts may be under way at once; more are
// dropped (and logged), so that a hanging receiver cannot pile up
// goroutines during a burst.
const maxPosts = 8

// NewWebhookClient is the client of alert webhooks: it follows no
// redirect (a redirect could send the alert somewhere the operator did
// not configure) and gives up after WebhookTimeout. Unlike customers'
// integrations it may reach private addresses: the operator's own
// alerting usually sits on their internal network, and the URL comes
// from the operator's configuration, not from a customer.
func NewWebhookClient() *http.Client {
	return &http.Client{
		Timeout:       WebhookTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// AlertJSON is what the webhook receives.
type AlertJSON struct {
	ID          string    `json:"id"` // ALR-42
	Alert       int64     `json:"alert"`
	Rule        string    `json:"rule"`
	Kind        string    `json:"kind"`
	Description string    `json:"description"`
	Threshold   string    `json:"threshold"`
	Account     int64     `json:"account"` // 0: none
	Subject     string    `json:"subject"`
	Count       int       `json:"count"`
	First       time.Time `json:"first"`
	Last        time.Time `json:"last"`
}

// notify sends a new alert: mail and webhook to the operator, and mail to
// the Administrators and main contact of the account it concerns. The
// sending happens in the background; nothing here waits for a server.
func (m *Monitor) notify(ctx context.Context, r Rule, a Alert) {
	accName := ""
	if a.Account != 0 && m.Accounts != nil {
		if acc, err := m.Accounts.Account(ctx, a.Account); err == nil {
			accName = acc.Name
		}
	}
	if m.Mail != nil && m.AlertEmail != "" {
		m.send("alert to the operator", operatorAlertMessage(m.AlertEmail, r, a, accName))
	}
	if m.Webhook != "" {
		m.post(AlertJSON{ID: a.Name(), Alert: a.ID, Rule: a.Rule, Kind: a.Kind, Description: r.What, Threshold: r.Threshold(),
			Account: a.Account, Subject: a.Subject, Count: a.Count, First: a.First, Last: a.Last})
	}
	if a.Account != 0 && m.Mail != nil {
		to, err := m.accountPeople(ctx, a.Account)
		if err != nil {
			m.log().Error("alert: the account's Administrators", "alert", a.Name(), "account", a.Account, "err", err)
			return
		}
		for _, addr := range to {
			m.send("alert to an account's Administrator", customerAlertMessage(addr, r, a, m.PublicURL))
		}
	}
}

// accountPeople are the addresses of an account's Administrators and its
// main contact, each once.
func (m *Monitor) accountPeople(ctx context.Context, account int64) ([]string, error) {
	if m.Accounts == nil {
		return nil, errors.New("no account store")
	}
	acc, err := m.Accounts.Account(ctx, account)
	if err != nil {
		return nil, err
	}
	users, err := m.Accounts.Users(ctx, account)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, u := range users {
		if u.Email == "" || seen[u.Email] || (u.Role != store.RoleAdmin && u.ID != acc.MainContact) {
			continue
		}
		seen[u.Email] = true
		out = append(out, u.Email)
	}
	return out, nil
}

// send queues one message; the log names what it was, never the address.
func (m *Monitor) send(what string, msg mail.Message) {
	m.Mail.Go(what, func(ctx context.Context, s *mail.Sender) error {
		return s.Send(ctx, msg)
	})
}

// post sends an alert to the webhook in the background.
func (m *Monitor) post(body AlertJSON) {
	m.slotsMu.Lock()
	if m.slots == nil {
		m.slots = make(chan struct{}, maxPosts)
	}
	slots := m.slots
	m.slotsMu.Unlock()
	select {
	case slots <- struct{}{}:
	default:
		m.log().Warn("alert webhook not sent: too many posts under way", "alert", body.ID)
		return
	}
	m.posts.Add(1)
	go func() {
		defer m.posts.Done()
		defer func() { <-slots }()
		if err := m.postNow(body); err != nil {
			m.log().Warn("alert webhook not sent", "alert", body.ID, "err", err)
		}
	}()
}

func (m *Monitor) postNow(body AlertJSON) error {
	b, _ := json.Marshal(body)
	ctx, cancel := context.WithTimeout(context.Background(), WebhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.Webhook, bytes.NewReader(b))
	if err != nil {
		return errors.New("the alert-webhook URL cannot be used")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Fjord alerts")
	hc := m.WebhookClient
	if hc == nil {
		hc = NewWebhookClient()
	}
	resp, err := hc.Do(req)
	if err != nil {
		// the URL may carry a token in its path or query: say only where
		return fmt.Errorf("posting to the alert webhook at %s failed", hostOf(req))
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("the alert webhook at %s answered %s", hostOf(req), resp.Status)
	}
	return nil
}

func hostOf(r *http.Request) string { return r.URL.Scheme + "://" + r.URL.Host }

func accountLabel(id int64, name string) string {
	if name == "" {
		return fmt.Sprintf("account %d", id)
	}
	return fmt.Sprintf("account %d (%s)", id, name)
}

func operatorAlertMessage(to string, r Rule, a Alert, accName string) mail.Message {
	concerns := "no customer account"
	if a.Account != 0 {
		concerns = accountLabel(a.Account, accName)
	}
	title := "Security alert"
	if IsOps(a.Kind) {
		title = "Operations alert"
	}
	return mail.Message{
		To:      to,
		Subject: fmt.Sprintf("Fjord alert %s: %s", a.Name(), r.Name),
		Text: fmt.Sprintf(`%s %s

What:      %s
Rule:      %s (%s)
Concerns:  %s
Subject:   %s
Events:    %d so far, the first at %s UTC

Further events of this rule and subject add to this alert, without
another mail, until it has seen none for an hour.
List and resolve alerts with: fjord alerts list / fjord alerts resolve %s

Fjord
`, title, a.Name(), r.What, r.Name, r.Threshold(), concerns, a.Subject, a.Count, a.First.UTC().Format("2006-01-02 15:04:05"), a.Name()),
	}
}

func customerAlertMessage(to string, r Rule, a Alert, publicURL string) mail.Message {
	return mail.Message{
		To:      to,
		Subject: fmt.Sprintf("Fjord: security alert %s in your account", a.Name()),
		Text: fmt.Sprintf(`Hello,

Fjord noticed this in your organisation's Fjord account:

  %s
  (%d so far, the first at %s UTC)

You receive this as an Administrator or the main contact of the account.
The alert is listed, until someone marks it resolved, on the
Administration page:
%s/admin

If you do not know why this happened, check who has access to your
account there, and ask the people concerned to set new passwords.

Fjord
`, strings.ToUpper(r.What[:1])+r.What[1:], a.Count, a.First.UTC().Format("2006-01-02 15:04"), publicURL),
	}
}
