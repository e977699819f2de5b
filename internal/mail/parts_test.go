package mail_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	netmail "net/mail"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fjord/internal/mail"
	"fjord/internal/mail/mailpit"
)

// tinyPNG is a small real PNG, as a chart would be.
func tinyPNG(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 3, 2))
	img.Set(1, 1, color.RGBA{200, 30, 30, 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

const csvData = "day,visitors\r\nMon 3,12\r\nTue 4,17\r\nÜber,1\r\n"

// report is a message as an e-mail report is: HTML with an inline chart,
// a CSV, unsubscribe headers and a VERP envelope-from.
func report(t *testing.T, to string) mail.Message {
	return mail.Message{
		To: to, Subject: "Weekly report – example.com",
		Text:         "Visitors: 29\n",
		HTML:         `<p>Visitors: 29</p><img src="cid:chart.1@fjord.test" alt="chart">`,
		EnvelopeFrom: "bounce+r1.a7f3@fjord.test",
		Headers: []mail.Header{
			{Name: "List-Unsubscribe", Value: "<https://fjord.test/unsubscribe/a7f3>, <mailto:unsubscribe@fjord.test?subject=a7f3>"},
			{Name: "List-Unsubscribe-Post", Value: "List-Unsubscribe=One-Click"},
			{Name: "List-Id", Value: "Fjord reports <reports.fjord.test>"},
		},
		Inline:      []mail.Part{{Name: "chart.png", ContentType: "image/png", ContentID: "chart.1@fjord.test", Data: tinyPNG(t)}},
		Attachments: []mail.Part{{Name: "visitors.csv", ContentType: "text/csv; charset=utf-8", Data: []byte(csvData)}},
	}
}

// TestRichMessage: a report arrives at Mailpit with its Return-Path, its
// headers, its inline chart and its attachment, byte for byte, in the
// MIME structure mail clients expect.
func TestRichMessage(t *testing.T) {
	mp := mailpit.Start(t)
	m := report(t, "anna@example.test")
	if err := send(t, mp.Config(from), m); err != nil {
		t.Fatal(err)
	}
	got := mp.WaitFor(t, "anna@example.test", 10*time.Second)
	if got.ReturnPath != m.EnvelopeFrom {
		t.Errorf("Return-Path %q, want %q", got.ReturnPath, m.EnvelopeFrom)
	}
	if got.From.Address != "fjord@fjord.test" {
		t.Errorf("From %+v", got.From)
	}
	for _, h := range m.Headers {
		if v := got.Headers[h.Name]; len(v) != 1 || v[0] != h.Value {
			t.Errorf("%s: %q, want %q", h.Name, v, h.Value)
		}
	}
	if got.Subject != m.Subject || !strings.Contains(got.HTML, "cid:chart.1@fjord.test") {
		t.Errorf("subject %q, HTML %q", got.Subject, got.HTML)
	}
	if len(got.Inline) != 1 || len(got.Attachments) != 1 {
		t.Fatalf("inline %+v, attachments %+v", got.Inline, got.Attachments)
	}
	in, at := got.Inline[0], got.Attachments[0]
	if in.ContentID != "chart.1@fjord.test" || in.FileName != "chart.png" || in.ContentType != "image/png" {
		t.Errorf("inline part %+v", in)
	}
	if !bytes.Equal(mp.Part(t, got.ID, in.PartID), m.Inline[0].Data) {
		t.Error("the inline PNG's bytes differ")
	}
	if at.FileName != "visitors.csv" || at.ContentType != "text/csv" {
		t.Errorf("attachment %+v", at)
	}
	if b := mp.Part(t, got.ID, at.PartID); string(b) != csvData {
		t.Errorf("attachment %q, want %q", b, csvData)
	}
	tree, _ := mimeTree(t, mp.Raw(t, got.ID))
	if tree != reportTree {
		t.Errorf("MIME structure\n%s\nwant\n%s", tree, reportTree)
	}
}

const reportTree = "multipart/mixed{multipart/alternative{text/plain text/html+related{text/html image/png<inline chart.png cid:chart.1@fjord.test>}} text/csv<attachment visitors.csv>}"

// mimeTree describes a message's MIME structure in one line and returns
// its leaves' decoded bodies by media type. A related part is written
// "text/html+related{...}" after its root; a leaf with a disposition as
// "type<disposition filename cid:ID>".
func mimeTree(t *testing.T, raw []byte) (string, map[string][]byte) {
	t.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if v := msg.Header.Get("MIME-Version"); v != "1.0" {
		t.Errorf("MIME-Version %q", v)
	}
	leaves := map[string][]byte{}
	tree := describe(t, textproto.MIMEHeader(msg.Header), msg.Body, leaves)
	return tree, leaves
}

func describe(t *testing.T, h textproto.MIMEHeader, body io.Reader, leaves map[string][]byte) string {
	t.Helper()
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		t.Fatalf("Content-Type %q: %v", h.Get("Content-Type"), err)
	}
	if !strings.HasPrefix(mt, "multipart/") {
		data, err := io.ReadAll(body)
		if err != nil {
			t.Fatal(err)
		}
		switch cte := h.Get("Content-Transfer-Encoding"); cte {
		case "base64":
			data, err = base64.StdEncoding.DecodeString(strings.NewReplacer("\r", "", "\n", "").Replace(string(data)))
			if err != nil {
				t.Fatalf("%s: %v", mt, err)
			}
		case "quoted-printable": // only at the top: multipart.Reader decodes its parts
			data, err = io.ReadAll(quotedprintable.NewReader(bytes.NewReader(data)))
			if err != nil {
				t.Fatalf("%s: %v", mt, err)
			}
		case "", "7bit", "8bit":
		default:
			t.Fatalf("%s: Content-Transfer-Encoding %q", mt, cte)
		}
		leaves[mt] = data
		d := h.Get("Content-Disposition")
		if d == "" {
			return mt
		}
		disp, dp, err := mime.ParseMediaType(d)
		if err != nil {
			t.Fatalf("Content-Disposition %q: %v", d, err)
		}
		s := mt + "<" + disp + " " + dp["filename"]
		if id := h.Get("Content-Id"); id != "" {
			s += " cid:" + strings.Trim(id, "<>")
		}
		return s + ">"
	}
	var kids []string
	r := multipart.NewReader(body, params["boundary"])
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		kids = append(kids, describe(t, p.Header, p, leaves))
	}
	if mt == "multipart/related" && len(kids) > 0 {
		return kids[0] + "+related{" + strings.Join(kids, " ") + "}"
	}
	return mt + "{" + strings.Join(kids, " ") + "}"
}

// fakeSMTP is a scripted SMTP server: it accepts everything, except that
// a stage ("greeting", "MAIL", "RCPT", "DATA", "END" for the end of the
// data) may be given another reply. Mailpit cannot be made to refuse;
// this can, to test how Send's errors are classified.
type fakeSMTP struct {
	addr   string
	port   int
	conns  atomic.Int32
	mu     sync.Mutex
	data   [][]byte // the messages received
	script map[string]string
}

func startFake(t *testing.T, script map[string]string) *fakeSMTP {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeSMTP{addr: l.Addr().String(), port: l.Addr().(*net.TCPAddr).Port, script: script}
	var wg sync.WaitGroup
	var open sync.Map
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			f.conns.Add(1)
			open.Store(c, true)
			wg.Go(func() { f.serve(c) })
		}
	})
	t.Cleanup(func() {
		l.Close()
		open.Range(func(c, _ any) bool { c.(net.Conn).Close(); return true })
		wg.Wait()
	})
	return f
}

func (f *fakeSMTP) reply(stage, def string) string {
	if r, ok := f.script[stage]; ok {
		return r
	}
	return def
}

func (f *fakeSMTP) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	r := textproto.NewReader(br)
	say := func(line string) { fmt.Fprintf(c, "%s\r\n", line) }
	greeting := f.reply("greeting", "220 fake ESMTP")
	say(greeting)
	if !strings.HasPrefix(greeting, "2") {
		return
	}
	for {
		line, err := r.ReadLine()
		if err != nil {
			return
		}
		verb := strings.ToUpper(strings.Fields(line + " x")[0])
		switch verb {
		case "EHLO", "HELO", "NOOP", "RSET":
			say("250 fake")
		case "MAIL":
			say(f.reply("MAIL", "250 ok"))
		case "RCPT":
			say(f.reply("RCPT", "250 ok"))
		case "DATA":
			rep := f.reply("DATA", "354 go on")
			say(rep)
			if !strings.HasPrefix(rep, "354") {
				continue
			}
			b, err := readData(br)
			if err != nil {
				return
			}
			f.mu.Lock()
			f.data = append(f.data, b)
			f.mu.Unlock()
			say(f.reply("END", "250 queued"))
		case "QUIT":
			say("221 bye")
			return
		default:
			say("502 not here")
		}
	}
}

// readData reads a message up to the line "." as it was sent, CRLF line
// ends kept (textproto's dot reader would turn them into LF), and undoes
// the dot-stuffing.
func readData(br *bufio.Reader) ([]byte, error) {
	var b bytes.Buffer
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, err
		}
		if line == ".\r\n" {
			return b.Bytes(), nil
		}
		b.WriteString(strings.TrimPrefix(line, "."))
	}
}

func (f *fakeSMTP) received() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.data
}

func (f *fakeSMTP) config() mail.Config {
	return mail.Config{Host: "127.0.0.1", Port: f.port, TLS: mail.NoTLS, From: from, Timeout: 5 * time.Second}
}

// TestMIMEStructure: each shape of message has the structure mail
// clients expect, its parts decode to what was given, and lines stay
// within SMTP's limit.
func TestMIMEStructure(t *testing.T) {
	png := tinyPNG(t)
	inline := []mail.Part{{Name: "chart.png", ContentType: "image/png", ContentID: "c1", Data: png}}
	csv := []mail.Part{{Name: "Übersicht.csv", ContentType: "text/csv; charset=utf-8", Data: []byte(csvData)}}
	for _, c := range []struct {
		name string
		m    mail.Message
		want string
	}{
		{"text", mail.Message{Text: "hi\n"}, "text/plain"},
		{"text and HTML", mail.Message{Text: "hi\n", HTML: "<p>hi</p>"}, "multipart/alternative{text/plain text/html}"},
		{"an inline chart", mail.Message{Text: "hi\n", HTML: `<img src="cid:c1">`, Inline: inline},
			"multipart/alternative{text/plain text/html+related{text/html image/png<inline chart.png cid:c1>}}"},
		{"text and a CSV", mail.Message{Text: "hi\n", Attachments: csv}, "multipart/mixed{text/plain text/csv<attachment Übersicht.csv>}"},
		{"report", report(t, "x@example.test"), reportTree},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := startFake(t, nil)
			c.m.To = "anna@example.test"
			if err := send(t, f.config(), c.m); err != nil {
				t.Fatal(err)
			}
			got := f.received()
			if len(got) != 1 {
				t.Fatalf("%d messages", len(got))
			}
			for i, line := range strings.Split(string(got[0]), "\r\n") {
				if len(line) > 78 || strings.ContainsAny(line, "\r\n") {
					t.Errorf("line %d has %d characters or a bare CR/LF: %q", i+1, len(line), line)
				}
			}
			tree, leaves := mimeTree(t, got[0])
			if tree != c.want {
				t.Fatalf("MIME structure\n%s\nwant\n%s", tree, c.want)
			}
			if s := strings.ReplaceAll(string(leaves["text/plain"]), "\r\n", "\n"); s != c.m.Text {
				t.Errorf("text %q", s)
			}
			if c.m.HTML != "" && string(leaves["text/html"]) != c.m.HTML {
				t.Errorf("HTML %q", leaves["text/html"])
			}
			if len(c.m.Inline) > 0 && !bytes.Equal(leaves["image/png"], png) {
				t.Error("the PNG differs")
			}
			if len(c.m.Attachments) > 0 && string(leaves["text/csv"]) != csvData {
				t.Errorf("CSV %q", leaves["text/csv"])
			}
		})
	}
}

// TestLongHeaders: a long subject with umlauts and a long header are
// folded and read back whole.
func TestLongHeaders(t *testing.T) {
	f := startFake(t, nil)
	subject := "Wöchentlicher Bericht für example.com – Besucher, Seiten und Quellen der letzten sieben Tage im Überblick"
	unsub := "<https://fjord.example.com/unsubscribe/" + strings.Repeat("a", 60) + ">, <mailto:unsubscribe@fjord.example.com?subject=" + strings.Repeat("b", 40) + ">"
	m := mail.Message{To: "anna@example.test", Subject: subject, Text: "x", Headers: []mail.Header{{Name: "List-Unsubscribe", Value: unsub}}}
	if err := send(t, f.config(), m); err != nil {
		t.Fatal(err)
	}
	msg, err := netmail.ReadMessage(bytes.NewReader(f.received()[0]))
	if err != nil {
		t.Fatal(err)
	}
	if s, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject")); err != nil || s != subject {
		t.Errorf("subject %q (%v)", s, err)
	}
	// unfolding joins the lines with the space folding kept
	if v := msg.Header.Get("List-Unsubscribe"); v != unsub {
		t.Errorf("List-Unsubscribe %q, want %q", v, unsub)
	}
}

// TestRefusedBeforeConnecting: a header with CR or LF and other bad
// messages are refused with an error that names the header or part, and
// no connection is made.
func TestRefusedBeforeConnecting(t *testing.T) {
	f := startFake(t, nil)
	ok := func() mail.Message { return report(t, "anna@example.test") }
	for _, c := range []struct {
		name string
		edit func(m *mail.Message)
		want string
	}{
		{"LF in a value", func(m *mail.Message) {
			m.Headers[0].Value = "<https://x.test/u>\nBcc: victim@example.test"
		}, "List-Unsubscribe"},
		{"CRLF in a value", func(m *mail.Message) { m.Headers[2].Value += "\r\nX-Evil: 1" }, "List-Id"},
		{"CR in a name", func(m *mail.Message) { m.Headers[1].Name = "X-Report\rBcc" }, `"X-Report\rBcc"`},
		{"a space in a name", func(m *mail.Message) { m.Headers[1].Name = "X Report" }, `"X Report"`},
		{"a field Send writes", func(m *mail.Message) {
			m.Headers = append(m.Headers, mail.Header{Name: "from", Value: "boss@example.test"})
		}, "from"},
		{"not ASCII", func(m *mail.Message) { m.Headers = append(m.Headers, mail.Header{Name: "X-Name", Value: "Über"}) }, "X-Name"},
		{"inline without HTML", func(m *mail.Message) { m.HTML = "" }, "inline parts need HTML"},
		{"no ContentID", func(m *mail.Message) { m.Inline[0].ContentID = "" }, "chart.png"},
		{"a ContentID in brackets", func(m *mail.Message) { m.Inline[0].ContentID = "<c1>" }, "chart.png"},
		{"two equal ContentIDs", func(m *mail.Message) { m.Inline = append(m.Inline, m.Inline[0]) }, "chart.1@fjord.test"},
		{"an attachment without a name", func(m *mail.Message) { m.Attachments[0].Name = "" }, "no name"},
		{"an attachment with a ContentID", func(m *mail.Message) { m.Attachments[0].ContentID = "x" }, "visitors.csv"},
		{"a bad content type", func(m *mail.Message) { m.Attachments[0].ContentType = "text csv" }, "visitors.csv"},
		{"a bad envelope-from", func(m *mail.Message) { m.EnvelopeFrom = "bounce@fjord.test\r\nRCPT TO:<x@y>" }, "envelope-from"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := ok()
			c.edit(&m)
			err := send(t, f.config(), m)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want it to name %q", err, c.want)
			}
			if strings.Contains(err.Error(), "victim") || strings.Contains(err.Error(), "anna@") {
				t.Errorf("the error repeats a value or the recipient: %v", err)
			}
			if mail.IsTemporary(err) || mail.ReplyCode(err) != 0 {
				t.Errorf("a bad message is temporary or has a reply code: %v", err)
			}
		})
	}
	if n := f.conns.Load(); n != 0 {
		t.Fatalf("%d connections for messages that were refused", n)
	}
	if err := send(t, f.config(), ok()); err != nil {
		t.Fatalf("the unedited message: %v", err)
	}
}

// TestTemporary: a 4xx reply and an unreachable server are temporary, a
// 5xx is not; the reply code survives the scrubbing of the error, which
// still names neither the recipient nor the envelope-from.
func TestTemporary(t *testing.T) {
	const to = "Victim@Example.test"
	for _, c := range []struct {
		stage, reply string
		temp         bool
	}{
		{"greeting", "421 4.3.2 fake is shutting down", true},
		{"MAIL", "451 4.3.0 <bounce+r1.a7f3@fjord.test> try again later", true},
		{"RCPT", "451 4.7.1 <victim@example.test>: greylisted, try again later", true},
		{"RCPT", "550 5.1.1 <victim@example.test>: no such user", false},
		{"DATA", "452 4.3.1 insufficient storage", true},
		{"END", "451 4.3.0 queue file write error", true},
		{"END", "554 5.7.1 message refused as spam", false},
	} {
		t.Run(c.reply[:3]+" at "+c.stage, func(t *testing.T) {
			f := startFake(t, map[string]string{c.stage: c.reply})
			m := report(t, to)
			err := send(t, f.config(), m)
			if err == nil {
				t.Fatal("no error")
			}
			t.Log(err)
			if mail.IsTemporary(err) != c.temp {
				t.Errorf("IsTemporary %v, want %v", mail.IsTemporary(err), c.temp)
			}
			want, _ := strconv.Atoi(c.reply[:3])
			if got := mail.ReplyCode(err); got != want {
				t.Errorf("ReplyCode %d, want %d", got, want)
			}
			wrapped := fmt.Errorf("report 7: %w", err)
			if mail.IsTemporary(wrapped) != c.temp || mail.ReplyCode(wrapped) != want {
				t.Error("wrapping loses the classification")
			}
			s := strings.ToLower(err.Error())
			if strings.Contains(s, "victim@") || strings.Contains(s, "bounce+") {
				t.Errorf("the error names the recipient or the envelope-from: %s", err)
			}
			if len(f.received()) != 0 && c.stage != "END" {
				t.Error("a refused message was received")
			}
		})
	}
	t.Run("closed port", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		cfg := mail.Config{Host: "127.0.0.1", Port: port, TLS: mail.NoTLS, From: from, Timeout: 5 * time.Second}
		err = send(t, cfg, mail.Message{To: to, Subject: "s", Text: "t"})
		if err == nil || !mail.IsTemporary(err) || mail.ReplyCode(err) != 0 {
			t.Fatalf("%v: temporary %v, code %d", err, mail.IsTemporary(err), mail.ReplyCode(err))
		}
	})
	t.Run("not a Send error", func(t *testing.T) {
		for _, err := range []error{nil, errors.New("451 looks like a reply"), context.DeadlineExceeded} {
			if mail.IsTemporary(err) || mail.ReplyCode(err) != 0 {
				t.Errorf("%v is classified", err)
			}
		}
	})
}
