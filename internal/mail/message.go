package mail

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"time"
)

// This file writes a Message as MIME. go-mail would nest an HTML
// message's inline images around both alternatives
// (related{alternative{text, html}, image}); Fjord writes them where they
// belong, next to the HTML that references them, so that a client showing
// the text alternative does not list the chart as an attachment:
//
//	multipart/mixed                     only with attachments
//	  multipart/alternative             only with HTML
//	    text/plain
//	    multipart/related               only with inline parts
//	      text/html
//	      image/png (Content-ID, inline)
//	  text/csv (attachment; filename)

// Header is an extra header field of a Message.
type Header struct{ Name, Value string }

// Part is an inline part or an attachment of a Message.
type Part struct {
	Name        string // file name
	ContentType string // e.g. "image/png", "text/csv; charset=utf-8"; empty: application/octet-stream
	ContentID   string // inline parts only
	Data        []byte
}

// maxLine is the longest line SMTP must carry (RFC 5322 §2.1.1).
const maxLine = 998

// isOwnHeader: the fields Send writes itself, or that the receiving
// server writes (Return-Path). A Message's Headers may not add them
// again: a second From or Content-Type confuses every reader.
func isOwnHeader(name string) bool {
	switch textproto.CanonicalMIMEHeaderKey(name) {
	case "From", "To", "Cc", "Bcc", "Sender", "Subject", "Date", "Message-Id",
		"Mime-Version", "Content-Type", "Content-Transfer-Encoding",
		"Content-Disposition", "Content-Id", "Auto-Submitted", "User-Agent", "Return-Path":
		return true
	}
	return false
}

// checkHeaders refuses a header that would break the message or forge
// another field: CR or LF (header injection), a name that is no field
// name, a value that is not printable ASCII, or a field Send writes.
// The error names the header, never its value (which may hold a token).
func checkHeaders(hs []Header) error {
	for _, h := range hs {
		if strings.ContainsAny(h.Name, "\r\n") {
			return fmt.Errorf("mail: header %q: the name holds CR or LF", h.Name)
		}
		if strings.ContainsAny(h.Value, "\r\n") {
			return fmt.Errorf("mail: header %s: the value holds CR or LF", h.Name)
		}
		if !isFieldName(h.Name) {
			return fmt.Errorf("mail: header %q is not a field name", h.Name)
		}
		if isOwnHeader(h.Name) {
			return fmt.Errorf("mail: header %s is written by Send and cannot be set", h.Name)
		}
		for _, r := range h.Value {
			// raw UTF-8 needs SMTPUTF8 and RFC 2047 encoding would break
			// structured values such as List-Unsubscribe's <URI>s
			if (r < ' ' && r != '\t') || r > '~' {
				return fmt.Errorf("mail: header %s: the value must be printable ASCII", h.Name)
			}
		}
	}
	return nil
}

// isFieldName: printable ASCII but the colon (RFC 5322 §3.6.8).
func isFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' || s[i] == ':' {
			return false
		}
	}
	return true
}

// envelope is what compose needs besides the Message.
type envelope struct {
	from, to  *mail.Address
	date      time.Time
	messageID string // without the angle brackets
}

// compose writes m as a MIME message, CRLF line ends, 7-bit clean
// (unless an address itself is not ASCII).
func compose(m Message, env envelope) ([]byte, error) {
	if err := checkHeaders(m.Headers); err != nil {
		return nil, err
	}
	body, err := bodyOf(m)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	fields := []Header{
		{"From", env.from.String()},
		{"To", env.to.String()},
		{"Subject", mime.QEncoding.Encode("utf-8", m.Subject)},
		{"Date", env.date.Format(time.RFC1123Z)},
		{"Message-ID", "<" + env.messageID + ">"},
		{"MIME-Version", "1.0"},
		{"User-Agent", "Fjord"},
		// RFC 3834: no auto-replies to automatic mail
		{"Auto-Submitted", "auto-generated"},
	}
	for _, h := range append(fields, m.Headers...) {
		if err := writeField(&b, h.Name, h.Value); err != nil {
			return nil, err
		}
	}
	if err := writeEntity(&b, body); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// writeField writes one header field, folded before a space where a
// line would pass 76 characters; a word too long for an SMTP line is
// refused.
func writeField(w *bytes.Buffer, name, value string) error {
	line := name + ":"
	for i, word := range strings.Split(value, " ") {
		if i > 0 && word != "" && len(line)+1+len(word) > 76 {
			w.WriteString(line + "\r\n")
			line = ""
		}
		line += " " + word
		if len(line) > maxLine {
			return fmt.Errorf("mail: header %s is too long", name)
		}
	}
	w.WriteString(line + "\r\n")
	return nil
}

// entity is a MIME part: a leaf with its encoded body, or a multipart
// with its parts.
type entity struct {
	header textproto.MIMEHeader
	body   []byte // a leaf's body, already transfer-encoded
	// a multipart's parts and the boundary between them
	parts    []entity
	boundary string
}

// bodyOf builds the tree drawn at the top of this file.
func bodyOf(m Message) (entity, error) {
	body := textEntity("text/plain", m.Text)
	if m.HTML == "" && len(m.Inline) > 0 {
		return entity{}, errors.New("mail: inline parts need HTML to show them")
	}
	if m.HTML != "" {
		html := textEntity("text/html", m.HTML)
		if len(m.Inline) > 0 {
			parts := []entity{html}
			seen := map[string]bool{}
			for _, p := range m.Inline {
				e, err := fileEntity(p, true)
				if err != nil {
					return entity{}, err
				}
				if seen[p.ContentID] {
					return entity{}, fmt.Errorf("mail: two inline parts have the ContentID %q", p.ContentID)
				}
				seen[p.ContentID] = true
				parts = append(parts, e)
			}
			html = multipartEntity("related", parts)
		}
		body = multipartEntity("alternative", []entity{body, html})
	}
	if len(m.Attachments) > 0 {
		parts := []entity{body}
		for _, p := range m.Attachments {
			e, err := fileEntity(p, false)
			if err != nil {
				return entity{}, err
			}
			parts = append(parts, e)
		}
		body = multipartEntity("mixed", parts)
	}
	return body, nil
}

// textEntity is a UTF-8 text in quoted-printable, which keeps mostly
// ASCII text readable and every line short; LF becomes CRLF.
func textEntity(mediaType, text string) entity {
	var b bytes.Buffer
	w := quotedprintable.NewWriter(&b)
	io.WriteString(w, text)
	w.Close()
	h := textproto.MIMEHeader{}
	h.Set("Content-Type", mediaType+"; charset=utf-8")
	h.Set("Content-Transfer-Encoding", "quoted-printable")
	return entity{header: h, body: b.Bytes()}
}

// fileEntity is an inline part or an attachment, in base64.
func fileEntity(p Part, inline bool) (entity, error) {
	what := "attachment"
	if inline {
		what = "inline part"
	}
	ct := p.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || strings.HasPrefix(mt, "multipart/") {
		return entity{}, fmt.Errorf("mail: %s %q: content type %q is not a media type of a file", what, p.Name, ct)
	}
	disposition := "attachment"
	if inline {
		disposition = "inline"
	}
	dparams := map[string]string{}
	if p.Name != "" {
		// clients take the name from either header; old ones only from
		// Content-Type's
		params["name"], dparams["filename"] = p.Name, p.Name
	} else if !inline {
		return entity{}, errors.New("mail: an attachment has no name")
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Type", mime.FormatMediaType(mt, params))
	h.Set("Content-Disposition", mime.FormatMediaType(disposition, dparams))
	if h.Get("Content-Type") == "" || h.Get("Content-Disposition") == "" {
		return entity{}, fmt.Errorf("mail: %s %q: the name cannot be written in a header", what, p.Name)
	}
	h.Set("Content-Transfer-Encoding", "base64")
	switch {
	case inline && !isContentID(p.ContentID):
		return entity{}, fmt.Errorf("mail: inline part %q: ContentID %q is not an id (letters, digits and .-_@ and the like, no spaces or angle brackets)", p.Name, p.ContentID)
	case inline:
		h.Set("Content-Id", "<"+p.ContentID+">")
	case p.ContentID != "":
		return entity{}, fmt.Errorf("mail: attachment %q has a ContentID: only inline parts are referenced", p.Name)
	}
	return entity{header: h, body: base64Lines(p.Data)}, nil
}

// isContentID: the characters of an RFC 5322 msg-id without its angle
// brackets, so that "cid:"+id in HTML and <id> in the header match.
func isContentID(s string) bool {
	if s == "" || len(s) > 250 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("!#$%&'*+-/=?^_`{|}~.@", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

// base64Lines is data in base64 in lines of 76 characters (RFC 2045).
func base64Lines(data []byte) []byte {
	enc := base64.StdEncoding.EncodeToString(data)
	var b bytes.Buffer
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc)
	return b.Bytes()
}

// multipartEntity is a multipart of the subtype. Its boundary starts
// with "=_", which neither base64 nor quoted-printable can produce, so no
// part's body can hold it.
func multipartEntity(subtype string, parts []entity) entity {
	boundary := "=_" + rand.Text()
	h := textproto.MIMEHeader{}
	h.Set("Content-Type", mime.FormatMediaType("multipart/"+subtype, map[string]string{"boundary": boundary}))
	return entity{header: h, parts: parts, boundary: boundary}
}

// writeEntity writes e's header fields, an empty line, and its body: a
// leaf's encoded body, or a multipart's parts between its boundaries.
func writeEntity(w *bytes.Buffer, e entity) error {
	for _, k := range []string{"Content-Type", "Content-Transfer-Encoding", "Content-Disposition", "Content-Id"} {
		if v := e.header.Get(k); v != "" {
			if err := writeField(w, k, v); err != nil {
				return err
			}
		}
	}
	w.WriteString("\r\n")
	if e.boundary == "" {
		w.Write(e.body)
		return nil
	}
	for _, p := range e.parts {
		w.WriteString("\r\n--" + e.boundary + "\r\n")
		if err := writeEntity(w, p); err != nil {
			return err
		}
	}
	w.WriteString("\r\n--" + e.boundary + "--\r\n")
	return nil
}
