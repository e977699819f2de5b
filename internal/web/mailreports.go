package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"fjord/internal/audit"
	"fjord/internal/auth"
	"fjord/internal/authz"
	"fjord/internal/export"
	"fjord/internal/mail"
	"fjord/internal/mail/chart"
	"fjord/internal/mail/digest"
	"fjord/internal/mail/schedule"
	"fjord/internal/report"
	"fjord/internal/store"
)

// E-mail reports (PRODUCT §6.1): a job fires the due schedules (one
// pending delivery per subscribed recipient) and sends the due deliveries:
// each recipient's right to the report is checked at sending, a
// temporary SMTP failure is tried again with backoff, and every attempt's
// outcome stays on the delivery.

const (
	// tableRows: the report's rows shown in the mail; all are in the CSV
	tableRows = 10
	// csvMaxRows and csvMaxBytes bound the attachment (mail servers
	// refuse large mail); past them the mail says so and links the report
	csvMaxRows  = 50_000
	csvMaxBytes = 5 << 20
	// deliveriesPerRun bounds one run's sending, so a backlog goes out
	// over several minutes rather than in one long run
	deliveriesPerRun = 200
)

// MailReports is the e-mail reports' job, run every minute: it fires the
// schedules that are due and sends what is due.
func (s *Server) MailReports(ctx context.Context) error {
	if s.Schedules == nil || s.Mail == nil {
		return nil
	}
	now := s.now()
	due, err := s.Schedules.DueSchedules(ctx, now)
	if err != nil {
		return err
	}
	for _, sc := range due {
		if err := s.fireSchedule(ctx, sc, now); err != nil {
			s.Log.Error("e-mail report: fire schedule", "schedule", sc.ID, "err", err)
		}
	}
	ds, err := s.Schedules.DueDeliveries(ctx, now, deliveriesPerRun)
	if err != nil {
		return err
	}
	// one schedule's mail at a time is kept (its CSV may be megabytes);
	// due deliveries come by time, so a schedule's come together
	var cache built
	for _, d := range ds {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.deliver(ctx, d, &cache, now)
	}
	_, err = s.Schedules.PurgeDeliveries(ctx, now.Add(-schedule.DeliveryRetention))
	return err
}

// fireSchedule moves a due schedule to its next time and queues a
// delivery per subscribed recipient. A server that was down over several
// firings sends the latest once, not each missed one.
func (s *Server) fireSchedule(ctx context.Context, sc schedule.Schedule, now time.Time) error {
	rep, site, err := s.reportByID(ctx, sc.ReportID)
	if err != nil {
		return err
	}
	loc, err := time.LoadLocation(site.TimeZone)
	if err != nil {
		return fmt.Errorf("site %d: time zone: %w", site.ID, err)
	}
	fire := sc.Next
	for n := sc.NextAfter(fire, loc); !n.After(now); n = sc.NextAfter(fire, loc) {
		fire = n
	}
	from, to := sc.Period(fire, loc)
	var ds []schedule.Delivery
	for _, r := range sc.Recipients {
		if !r.Unsubscribed.IsZero() {
			continue
		}
		ds = append(ds, schedule.Delivery{RecipientID: r.ID, AccountID: sc.AccountID, Email: r.Email, From: from, To: to, Status: schedule.Pending})
	}
	ok, err := s.Schedules.FireSchedule(ctx, sc.ID, sc.Next, sc.NextAfter(fire, loc), now, ds)
	if err == nil && ok {
		s.Log.Info("e-mail report fired", "schedule", sc.ID, "report", rep.ID, "deliveries", len(ds))
	}
	return err
}

// built is a schedule's mail for one period, shared by its recipients
// (only the unsubscribe link and the bounce address differ).
type built struct {
	key     string // schedule and period
	digest  digest.Digest
	subject string
	chart   []byte
	csv     []byte
	err     error
}

// claimLease is how long a claimed delivery is another run's to leave
// alone: longer than building and sending one mail. A run that dies
// while sending leaves it to be tried again after the lease.
const claimLease = 15 * time.Minute

// deliver sends one delivery, or skips it, and records the outcome.
func (s *Server) deliver(ctx context.Context, d schedule.Delivery, cache *built, now time.Time) {
	ok, err := s.Schedules.ClaimDelivery(ctx, d.ID, d.NextTry, now.Add(claimLease))
	if err != nil || !ok {
		if err != nil {
			s.Log.Error("e-mail report: claim", "delivery", d.ID, "err", err)
		}
		return
	}
	d.Attempts++
	sc, err := s.Schedules.Schedule(ctx, d.ScheduleID)
	var rep store.SavedReport
	var site store.Site
	if err == nil {
		rep, site, err = s.reportByID(ctx, sc.ReportID)
	}
	var to, why string
	if err == nil {
		to, why, err = s.mayReceive(ctx, sc, d, rep, site)
	}
	if err != nil {
		// the store failed: an attempt, tried again after the backoff
		s.Log.Error("e-mail report", "delivery", d.ID, "err", err)
		s.failed(ctx, d, "reading the schedule failed", true, now)
		return
	}
	if why != "" {
		d.Status, d.Detail, d.NextTry = schedule.Skipped, why, now
		s.attempted(ctx, d)
		return
	}
	d.Email = to
	if key := fmt.Sprintf("%d/%d", sc.ID, d.From.UnixMilli()); cache.key != key {
		*cache = *s.buildMail(ctx, sc, rep, site, d.From, d.To)
		cache.key = key
	}
	if cache.err != nil {
		// a report that cannot be answered now may be answerable later
		// (the store was busy); tried again as a temporary failure
		s.Log.Error("e-mail report: the report could not be answered", "schedule", sc.ID, "err", cache.err)
		s.failed(ctx, d, "the report could not be answered: "+cache.err.Error(), true, now)
		return
	}
	m, err := s.reportMessage(ctx, cache, d)
	if err == nil {
		err = s.Mail.Sender.Send(ctx, m)
	}
	if err != nil {
		s.failed(ctx, d, err.Error(), mail.IsTemporary(err), now)
		return
	}
	d.Status, d.Detail, d.NextTry = schedule.Sent, "sent", now
	s.attempted(ctx, d)
}

// failed records a failed attempt: tried again after a backoff while the
// failure is temporary and attempts are left, else failed for good.
func (s *Server) failed(ctx context.Context, d schedule.Delivery, detail string, temporary bool, now time.Time) {
	d.Detail = truncate(detail, 300)
	if temporary && d.Attempts < schedule.MaxAttempts {
		d.Status, d.NextTry = schedule.Retry, now.Add(schedule.Backoff(d.Attempts))
	} else {
		d.Status, d.NextTry = schedule.Failed, now
	}
	s.Log.Warn("e-mail report not sent", "delivery", d.ID, "attempt", d.Attempts, "status", d.Status, "err", d.Detail)
	s.attempted(ctx, d)
}

func (s *Server) attempted(ctx context.Context, d schedule.Delivery) {
	if err := s.Schedules.Attempted(context.WithoutCancel(ctx), d); err != nil {
		s.Log.Error("e-mail report: record attempt", "delivery", d.ID, "err", err)
	}
}

// mayReceive finds where a delivery goes, or why it does not: the
// recipient unsubscribed, a user left or may no longer read the report,
// an outside address no longer allowed, or the address is suppressed.
func (s *Server) mayReceive(ctx context.Context, sc schedule.Schedule, d schedule.Delivery, rep store.SavedReport, site store.Site) (to, why string, err error) {
	var rcpt *schedule.Recipient
	for i := range sc.Recipients {
		if sc.Recipients[i].ID == d.RecipientID {
			rcpt = &sc.Recipients[i]
		}
	}
	switch {
	case rcpt == nil:
		return "", "the recipient was taken off the schedule", nil
	case !rcpt.Unsubscribed.IsZero():
		return "", "the recipient unsubscribed", nil
	}
	if rcpt.UserID != 0 {
		u, err := s.Accounts.UserByID(ctx, rcpt.UserID)
		if err != nil {
			return "", "", err
		}
		if !u.Removed.IsZero() || u.Email == "" {
			return "", "the user left the account", nil
		}
		p, _, err := s.principal(ctx, u)
		if err != nil {
			return "", "", err
		}
		if authz.Decide(p, authz.ReadReport, auth.ReportResource(site, rep)) != authz.Allow {
			return "", "the user may no longer read the report", nil
		}
		to = u.Email
	} else {
		allow, err := s.Schedules.OutsideRecipients(ctx, sc.AccountID)
		if err != nil {
			return "", "", err
		}
		if !allow {
			return "", "the account no longer allows outside recipients", nil
		}
		// an outside address gets the report only while someone who
		// may send it owns it
		if why, err := s.ownerMaySend(ctx, rep, site); err != nil || why != "" {
			return "", why, err
		}
		to = rcpt.Email
	}
	if sup, err := s.Schedules.IsSuppressed(ctx, sc.AccountID, store.NormalizeEmail(to)); err != nil || sup {
		return "", "the address is bouncing (suppressed after hard bounces)", err
	}
	return to, "", nil
}

// ownerMaySend: the report's owner may still schedule it ("" when so).
func (s *Server) ownerMaySend(ctx context.Context, rep store.SavedReport, site store.Site) (string, error) {
	if rep.OwnerID == nil {
		return "", nil // a report of the account's own (made by the operator)
	}
	owner, err := s.Accounts.UserByID(ctx, *rep.OwnerID)
	if err != nil {
		return "", err
	}
	if owner.Role == store.RoleGeneric {
		return "", nil // a leaver's report, now the account's
	}
	p, _, err := s.principal(ctx, owner)
	if err != nil {
		return "", err
	}
	if !owner.Removed.IsZero() || authz.Decide(p, authz.ScheduleReport, auth.ReportResource(site, rep)) != authz.Allow {
		return "the report's owner may no longer send it", nil
	}
	return "", nil
}

// dateRange is a Stats API date range of whole local days [from, to).
func dateRange(from, to time.Time) json.RawMessage {
	b, _ := json.Marshal([]string{from.Format(time.DateOnly), to.AddDate(0, 0, -1).Format(time.DateOnly)})
	return b
}

// metricLabels name the key numbers of a mail.
var metricLabels = map[string]string{report.MVisitors: "Visitors", report.MVisits: "Visits", report.MPageviews: "Pageviews",
	report.MViewsPerVisit: "Views per visit", report.MBounceRate: "Bounce rate", report.MVisitDuration: "Visit duration",
	report.MEvents: "Events", report.MConversion: "Conversion rate"}

// buildMail answers the report for the period: its own metrics in total
// against the period before and its first metric per day for the chart
// (both with its filters: a mail shows nothing the report does not), its
// top rows and the CSV of every row. A funnel has no totals or chart; its
// steps are the table.
func (s *Server) buildMail(ctx context.Context, sc schedule.Schedule, rep store.SavedReport, site store.Site, from, to time.Time) *built {
	b := &built{}
	loc, _ := time.LoadLocation(site.TimeZone)
	from, to = from.In(loc), to.In(loc)
	def, err := report.DecodeDefinition([]byte(rep.Definition))
	if err != nil {
		b.err = fmt.Errorf("the saved report's definition is damaged: %v", err)
		return b
	}
	goals, err := s.Accounts.Goals(ctx, site.ID)
	if err != nil {
		b.err = err
		return b
	}
	period := from.Format("2 Jan") + " – " + to.AddDate(0, 0, -1).Format("2 Jan 2006")
	if to.Sub(from) <= 25*time.Hour {
		period = from.Format("Mon 2 Jan 2006")
	}
	d := &b.digest
	if len(def.Funnel) == 0 {
		// the period before: what a firing at the start of this one covers
		prevFrom, prevTo := sc.Period(from, loc)
		if err := s.keyNumbers(ctx, d, def, site, goals, dateRange(from, to), dateRange(prevFrom, prevTo)); err != nil {
			b.err = err
			return b
		}
		if b.chart, err = s.dailyChart(ctx, def, site, goals, from, to); err != nil {
			b.err = err
			return b
		}
		if b.chart != nil {
			d.ChartCID, d.ChartAlt = "chart@fjord", metricLabels[def.Metrics[0]]+" per day, "+period
		}
	}
	if err := s.reportTable(ctx, b, rep, site, dateRange(from, to)); err != nil {
		b.err = err
		return b
	}
	d.Report, d.Site, d.Period = rep.Name, site.Domain, period
	d.ReportURL = fmt.Sprintf("%s/reports/%d", s.PublicURL, rep.ID)
	b.subject = fmt.Sprintf("%s: %s · %s", rep.Name, site.Domain, period)
	return b
}

// totals runs the report's metrics (those a total has) with its filters
// over a date range, without its dimensions.
func (s *Server) totals(ctx context.Context, def *report.APIRequest, site store.Site, goals []store.Goal, dr json.RawMessage, dims []string) (*report.Query, *report.Result, error) {
	var metrics []string
	for _, m := range def.Metrics {
		if _, ok := metricLabels[m]; ok {
			metrics = append(metrics, m)
		}
	}
	if len(metrics) == 0 {
		return nil, nil, nil
	}
	h := &report.APIRequest{SiteID: site.Domain, Metrics: metrics, DateRange: dr, Filters: def.Filters, Dimensions: dims}
	q, err := h.Build(site, goals, s.now())
	if err != nil {
		return nil, nil, err
	}
	res, err := s.Reports.Run(ctx, q)
	return q, res, err
}

// keyNumbers are the report's metrics in total, with their change.
func (s *Server) keyNumbers(ctx context.Context, d *digest.Digest, def *report.APIRequest, site store.Site, goals []store.Goal, cur, prev json.RawMessage) error {
	q, now, err := s.totals(ctx, def, site, goals, cur, nil)
	if err != nil || q == nil {
		return err
	}
	_, before, err := s.totals(ctx, def, site, goals, prev, nil)
	if err != nil {
		return err
	}
	value := func(res *report.Result, i int) float64 {
		if len(res.Rows) == 0 {
			return 0
		}
		return res.Rows[0].Metrics[i]
	}
	for i, m := range q.Metrics {
		c, p := value(now, i), value(before, i)
		n := digest.Number{Label: metricLabels[m]}
		switch m {
		case report.MBounceRate, report.MConversion:
			n.Value = fmt.Sprintf("%.0f%%", c)
			n.Change, n.Better, n.Worse = digest.Change(c, p, true, m == report.MBounceRate)
		case report.MVisitDuration:
			n.Value = digest.Duration(c)
			n.Change, n.Better, n.Worse = digest.Change(c, p, false, false)
		case report.MViewsPerVisit:
			n.Value = fmt.Sprintf("%.2f", c)
			n.Change, n.Better, n.Worse = digest.Change(c, p, false, false)
		default:
			n.Value = digest.Count(c)
			n.Change, n.Better, n.Worse = digest.Change(c, p, false, false)
		}
		d.Numbers = append(d.Numbers, n)
	}
	return nil
}

// dailyChart draws the report's first metric per local day of [from,
// to); nil when the report has no metric a day can have.
func (s *Server) dailyChart(ctx context.Context, def *report.APIRequest, site store.Site, goals []store.Goal, from, to time.Time) ([]byte, error) {
	if len(def.Metrics) == 0 {
		return nil, nil
	}
	first := *def
	first.Metrics = def.Metrics[:1]
	q, res, err := s.totals(ctx, &first, site, goals, dateRange(from, to), []string{"time:day"})
	if err != nil || q == nil {
		return nil, err
	}
	byDay := map[string]float64{}
	for _, r := range res.Rows {
		byDay[r.Dimensions[0]] = r.Metrics[0]
	}
	var pts []chart.Point
	for day := from; day.Before(to); day = day.AddDate(0, 0, 1) {
		pts = append(pts, chart.Point{Label: day.Format("Mon 2"), Value: byDay[day.Format(time.DateOnly)]})
	}
	return chart.PNG(pts, 600, 200)
}

// reportTable takes the report's top rows for the mail and every row
// (within the attachment's bounds) for the CSV.
func (s *Server) reportTable(ctx context.Context, b *built, rep store.SavedReport, site store.Site, dr json.RawMessage) error {
	a, err := s.reportSource(ctx, rep, site, dr)
	if err != nil {
		return err
	}
	a = a.whole()
	d := &b.digest
	d.Head = append(append(d.Head, a.dims...), a.metrics...)
	var csv bytes.Buffer
	w, err := export.NewWriter(&csv, export.CSV, a.dims, a.metrics)
	if err != nil {
		return err
	}
	rows, cut := 0, false
	err = a.rows(ctx, func(row report.Row) error {
		rows++
		if rows <= tableRows {
			cells := append([]string{}, row.Dimensions...)
			for _, m := range row.Metrics {
				cells = append(cells, strconv.FormatFloat(m, 'f', -1, 64))
			}
			d.Rows = append(d.Rows, cells)
		}
		if cut || rows > csvMaxRows || csv.Len() > csvMaxBytes {
			cut = true
			return nil
		}
		return w.Write(row)
	})
	if err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	d.More = max(rows-tableRows, 0)
	d.CSVName = fmt.Sprintf("%s-report-%d.csv", site.Domain, rep.ID)
	if cut {
		d.CSVNote = fmt.Sprintf("The attachment holds the first %d rows; the whole report is in Fjord.", w.Rows())
	}
	b.csv = csv.Bytes()
	return nil
}

// reportMessage is one recipient's mail: their unsubscribe link (RFC
// 8058 one-click) and, with a bounce address, their VERP envelope sender.
func (s *Server) reportMessage(ctx context.Context, b *built, d schedule.Delivery) (mail.Message, error) {
	key, err := s.mailKey(ctx)
	if err != nil {
		return mail.Message{}, err
	}
	dg := b.digest
	unsub := s.PublicURL + "/unsubscribe/" + schedule.Token(key, "unsubscribe", d)
	dg.UnsubscribeURL = unsub
	html, err := digest.HTML(dg)
	if err != nil {
		return mail.Message{}, err
	}
	m := mail.Message{To: d.Email, Subject: b.subject, Text: digest.Text(dg), HTML: html,
		Headers: []mail.Header{
			{Name: "List-Unsubscribe", Value: "<" + unsub + ">"},
			{Name: "List-Unsubscribe-Post", Value: "List-Unsubscribe=One-Click"},
			{Name: "List-Id", Value: fmt.Sprintf("Fjord e-mail report %d <schedule-%d.fjord>", d.ScheduleID, d.ScheduleID)},
		},
		Attachments: []mail.Part{{Name: dg.CSVName, ContentType: "text/csv; charset=utf-8", Data: b.csv}},
	}
	if b.chart != nil {
		m.Inline = []mail.Part{{Name: "chart.png", ContentType: "image/png", ContentID: dg.ChartCID, Data: b.chart}}
	}
	if s.BounceAddress != "" {
		m.EnvelopeFrom = schedule.VERP(key, s.BounceAddress, d)
	}
	return m, nil
}

// scheduleEntry writes a schedule's audit entry from a job.
func (s *Server) scheduleEntry(ctx context.Context, account int64, action, target, detail string) {
	s.writeEntryCtx(ctx, audit.Entry{Actor: "system", Account: account, Action: action, Target: target, Detail: detail})
}
