package web

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"

	"fjord/internal/authz"
	"fjord/internal/mail"
	"fjord/internal/mail/bounce"
	"fjord/internal/mail/schedule"
	"fjord/internal/store"
)

// Bounces of e-mail reports (PRODUCT §6.2): mail to a VERP address,
// through the built-in SMTP receiver or from a mailbox over IMAP, names
// a delivery under an HMAC; anything else changes nothing. Auto-replies
// and unrelated mail are ignored, a soft bounce is shown on the
// schedule's page, and a hard bounce counts: when an address's last sends
// (2 by default) all hard-bounced, it is suppressed, and the account's
// Administrators are told which user and schedules, with the way to the
// leaver flow.

// AcceptBounce tells whether rcpt is a VERP address of a delivery (the
// SMTP receiver refuses any other recipient).
func (s *Server) AcceptBounce(rcpt string) bool {
	_, ok := s.bounceIds(context.Background(), rcpt)
	return ok
}

func (s *Server) bounceIds(ctx context.Context, rcpt string) (schedule.Ids, bool) {
	if s.Schedules == nil || s.BounceAddress == "" {
		return schedule.Ids{}, false
	}
	key, err := s.mailKey(ctx)
	if err != nil {
		s.Log.Error("bounce: mail key", "err", err)
		return schedule.Ids{}, false
	}
	return schedule.ParseVERP(key, s.BounceAddress, rcpt)
}

// mailKeyCache holds the key of VERP and unsubscribe tokens once read, so
// that requests from anyone (a bounce's RCPT, an unsubscribe link) cost
// no query of the store.
type mailKeyCache struct {
	mu  sync.Mutex
	key []byte
}

func (s *Server) mailKey(ctx context.Context) ([]byte, error) {
	c := &s.mailKeys
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.key == nil {
		k, err := s.Schedules.MailKey(ctx)
		if err != nil {
			return nil, err
		}
		c.key = k
	}
	return c.key, nil
}

// addressRE finds e-mail addresses in a bounce's reason, which quotes
// remote servers.
var addressRE = regexp.MustCompile(`[^\s<>()\[\]"',;:]+@[^\s<>()\[\]"',;:]+`)

// scrubReason removes addresses, and the recipient's local part, from a
// bounce's reason before it is stored or written to the audit log (which
// keeps no personal details).
func scrubReason(why, email string) string {
	why = addressRE.ReplaceAllString(why, "(address)")
	if at := strings.LastIndexByte(email, '@'); at >= 3 {
		why = mail.ReplaceFold(why, email[:at], "(recipient)")
	}
	return why
}

// HandleBounce takes one message sent to rcpt. Its error means "not
// taken" (a store failure): the sender tries again later.
func (s *Server) HandleBounce(ctx context.Context, rcpt string, raw []byte) error {
	ids, ok := s.bounceIds(ctx, rcpt)
	if !ok {
		s.Log.Info("bounce ignored: not to a VERP address of ours", "bytes", len(raw))
		return nil
	}
	d, err := s.Schedules.Delivery(ctx, ids.Delivery)
	if err != nil || d.ScheduleID != ids.Schedule || d.RecipientID != ids.Recipient {
		// signed by us but gone (deleted with its schedule) or damaged
		s.Log.Info("bounce ignored: its delivery is gone", "delivery", ids.Delivery)
		return nil
	}
	res := bounce.Classify(raw)
	target := fmt.Sprintf("schedule:%d", d.ScheduleID)
	switch res.Kind {
	case bounce.Hard, bounce.Soft:
	default:
		// an out-of-office reply or unrelated mail: nothing changes
		s.Log.Info("bounce ignored", "delivery", d.ID, "kind", string(res.Kind))
		return nil
	}
	kind := schedule.BounceSoft
	if res.Kind == bounce.Hard {
		kind = schedule.BounceHard
	}
	why := scrubReason(res.Reason, d.Email)
	if why == "" {
		why = kind + " bounce"
	}
	recorded, err := s.Schedules.RecordBounce(ctx, d.ID, kind, why, s.now())
	if err != nil {
		return err
	}
	if recorded {
		s.Log.Info("bounce recorded", "delivery", d.ID, "kind", kind)
		status := res.Status
		if status == "" {
			status = "no status code"
		}
		s.scheduleEntry(ctx, d.AccountID, "mail.bounce", target, fmt.Sprintf("delivery %d, recipient %d: %s bounce (%s)", d.ID, d.RecipientID, kind, status))
	}
	if kind == schedule.BounceHard {
		// judged again when the same bounce comes back (a store error
		// the last time made the sender retry); suppressing is once
		return s.judgeAddress(ctx, d)
	}
	return nil
}

// judgeSends is how many of an address's newest sends are judged: a
// bounce of an older send no longer matters.
const judgeSends = 50

// judgeAddress suppresses d's address when n consecutive sends to it
// (n set per account), d among them, hard-bounced. Bounces arrive in any
// order (one server refuses at once, another after its queue), so every
// run of n sends that holds d counts, not only the one that ends at d.
func (s *Server) judgeAddress(ctx context.Context, d schedule.Delivery) error {
	if d.Email == "" {
		return nil // the address was forgotten (a purged leaver)
	}
	n, err := s.Schedules.HardBounces(ctx, d.AccountID)
	if err != nil {
		return err
	}
	sends, err := s.Schedules.RecentSends(ctx, d.AccountID, d.Email, judgeSends)
	if err != nil {
		return err
	}
	run, hit := 0, false
	for _, x := range sends {
		if x.Bounce != schedule.BounceHard {
			if hit {
				break
			}
			run = 0
			continue
		}
		run++
		hit = hit || x.ID == d.ID
		if hit && run >= n {
			break
		}
	}
	if !hit || run < n {
		return nil
	}
	why := fmt.Sprintf("%d consecutive sends hard-bounced", n)
	ok, err := s.Schedules.Suppress(ctx, schedule.Suppressed{AccountID: d.AccountID, Email: store.NormalizeEmail(d.Email), Since: s.now(), Why: why})
	if err != nil || !ok {
		return err
	}
	user := s.userOfAddress(ctx, d.AccountID, d.Email)
	who := "an outside address"
	if user.ID != 0 {
		who = fmt.Sprintf("user %d", user.ID)
	}
	s.Log.Info("address suppressed after hard bounces", "account", d.AccountID, "user", user.ID)
	s.scheduleEntry(ctx, d.AccountID, "mail.suppress", fmt.Sprintf("schedule:%d", d.ScheduleID), fmt.Sprintf("%s (recipient %d) is no longer mailed: %s", who, d.RecipientID, why))
	s.bouncingNotice(ctx, d, user, why)
	return nil
}

// userOfAddress is the account's current user with that address (zero
// when it is an outside address).
func (s *Server) userOfAddress(ctx context.Context, accountID int64, email string) store.User {
	u, err := s.Accounts.UserByEmail(ctx, email)
	if err != nil || u.AccountID != accountID || !u.Removed.IsZero() {
		return store.User{}
	}
	return u
}

// bouncingNotice mails the account's Administrators which address
// bounces, whose it is, which schedules mail it, and where the leaver
// flow is; the Administration page shows the same.
func (s *Server) bouncingNotice(ctx context.Context, d schedule.Delivery, user store.User, why string) {
	if s.Mail == nil {
		return
	}
	scheds, err := s.Schedules.Schedules(ctx, d.AccountID)
	if err != nil {
		s.Log.Error("bouncing notice", "err", err)
		return
	}
	var names []string
	for _, sc := range scheds {
		for _, r := range sc.Recipients {
			if strings.EqualFold(r.Email, d.Email) {
				rep, _, err := s.reportByID(ctx, sc.ReportID)
				if err == nil {
					names = append(names, fmt.Sprintf("“%s” (%s, %s/schedules/%d)", rep.Name, sc.When(), s.PublicURL, sc.ID))
				}
			}
		}
	}
	whose := "It is not the address of a user of your account."
	leaver := ""
	if user.ID != 0 {
		name := user.Email
		if user.Name != "" {
			name = user.Name + " <" + user.Email + ">"
		}
		whose = "It is the address of the user " + name + "."
		leaver = fmt.Sprintf(`
If %s has left, remove them on the Administration page: their access ends
at once, and their saved reports, schedules and datafeeds move to the
account's generic user:
%s/admin#bouncing

`, name, s.PublicURL)
	}
	text := fmt.Sprintf(`Hello,

Fjord no longer mails %s: %s.

%s
Its e-mail reports:
  %s
%s
If the address works again, an Administrator can mail it again on the
Administration page.

Fjord
`, d.Email, why, whose, strings.Join(names, "\n  "), leaver)
	users, err := s.Accounts.Users(ctx, d.AccountID)
	if err != nil {
		s.Log.Error("bouncing notice", "err", err)
		return
	}
	for _, u := range users {
		if u.Role != store.RoleAdmin || !u.Removed.IsZero() || u.Email == "" || strings.EqualFold(u.Email, d.Email) {
			continue
		}
		m := mail.Message{To: u.Email, Subject: "Fjord: mail to " + d.Email + " bounces", Text: text}
		s.Mail.Go("bouncing notice", func(ctx context.Context, snd *mail.Sender) error { return snd.Send(ctx, m) })
	}
}

// bouncing lists the account's suppressed addresses with the schedules
// that mail them, for the Administration page.
func (s *Server) bouncing(ctx context.Context, accountID int64, reportName map[int64]string) ([]bouncingRow, error) {
	if s.Schedules == nil {
		return nil, nil
	}
	sup, err := s.Schedules.Suppressions(ctx, accountID)
	if err != nil || len(sup) == 0 {
		return nil, err
	}
	scheds, err := s.Schedules.Schedules(ctx, accountID)
	if err != nil {
		return nil, err
	}
	var out []bouncingRow
	for _, x := range sup {
		row := bouncingRow{Email: x.Email, Since: fmtTime(x.Since), Why: x.Why, UserID: x.UserID}
		for _, sc := range scheds {
			for _, r := range sc.Recipients {
				if strings.EqualFold(r.Email, x.Email) {
					row.Schedules = append(row.Schedules, link{Label: reportName[sc.ReportID] + " (" + sc.When() + ")", URL: fmt.Sprintf("/schedules/%d", sc.ID)})
				}
			}
		}
		out = append(out, row)
	}
	return out, nil
}

// adminMailAgain lifts an address's suppression (it works again).
func (s *Server) adminMailAgain(w http.ResponseWriter, r *http.Request) {
	v := viewerOf(r)
	// mailing report data to an address again is the customer's own
	// decision, never staff's
	if s.Schedules == nil || v.staff != nil || authz.Decide(v.p, authz.ManageAccount, authz.Resource{Kind: authz.Account, Account: v.user.AccountID}) != authz.Allow {
		http.NotFound(w, r)
		return
	}
	email := store.NormalizeEmail(formValue(r, "email"))
	ok, err := s.Schedules.Unsuppress(r.Context(), v.user.AccountID, email)
	if err == nil && !ok {
		s.renderAdmin(w, r, http.StatusBadRequest, "email: that address is not suppressed in this account.", "", nil)
		return
	}
	if err == nil {
		s.record(r, v.user.AccountID, "mail.unsuppress", fmt.Sprintf("account:%d", v.user.AccountID), "an address is mailed again")
	}
	s.adminResult(w, r, err, email+" is mailed again.")
}
