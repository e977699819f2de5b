package bounce

import (
	"bufio"
	"bytes"
	"html"
	"io"
	"mime"
	"strings"

	message "github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
	"golang.org/x/text/encoding/htmlindex"
)

// parsed is what Classify keeps of a message: its top-level header and
// the parts that can hold evidence, already decoded and bounded.
type parsed struct {
	header     textproto.Header
	reportType string   // report-type of the outermost multipart/report, lower case
	reports    []report // delivery-status parts, in order
	texts      []string // human-readable text, LF line ends, without the returned message
	parts      int      // MIME parts visited
	textLen    int      // bytes in texts
}

// report is the body of one message/delivery-status or
// message/global-delivery-status part.
type report struct {
	body   []byte
	global bool // RFC 6533: addresses and text may be UTF-8
}

// readMessage parses raw, tolerating every defect it can: a malformed
// header line is skipped, a broken part ends its multipart, and a broken
// transfer encoding keeps what decoded before the error.
func readMessage(raw []byte) *parsed {
	br := bufio.NewReader(bytes.NewReader(raw))
	h, err := textproto.ReadHeader(br)
	// ReadHeader stops at a malformed line, which it has consumed: go on
	// with the fields after it, up to the blank line that ends the header.
	for skipped := 0; err != nil; skipped++ {
		if skipped == maxBadLines {
			return &parsed{header: h} // no telling where the body starts
		}
		var more textproto.Header
		more, err = textproto.ReadHeader(br)
		for f := more.Fields(); f.Next(); {
			if !h.Has(f.Key()) { // the first of a field wins, as in Get
				h.Add(f.Key(), f.Value())
			}
		}
	}
	m := &parsed{header: h}
	m.walk(h, br, 0, true)
	return m
}

// maxBadLines is how many malformed header lines are skipped before the
// header is given up on.
const maxBadLines = 20

// walk visits one entity and, for a multipart, its parts. Parts inside a
// message/rfc822 or text/rfc822-headers part are never visited: they are
// the returned original message, whose text is ours, not the bounce's.
func (m *parsed) walk(h textproto.Header, body io.Reader, depth int, top bool) {
	m.parts++
	if m.parts > maxParts {
		return
	}
	mediaType, params := contentType(h.Get("Content-Type"))
	switch {
	case strings.HasPrefix(mediaType, "multipart/"):
		// RFC 2046 boundaries have at most 70 characters; a longer one
		// is no multipart this package will read.
		if depth >= maxDepth || params["boundary"] == "" || len(params["boundary"]) > 200 {
			return
		}
		if mediaType == "multipart/report" && m.reportType == "" {
			m.reportType = strings.ToLower(strings.TrimSpace(params["report-type"]))
		}
		mr := textproto.NewMultipartReader(body, params["boundary"])
		for m.parts < maxParts {
			p, err := mr.NextPart()
			if err != nil {
				return
			}
			m.walk(p.Header, p, depth+1, false)
		}
	case mediaType == "message/delivery-status", mediaType == "message/global-delivery-status":
		m.reports = append(m.reports, report{
			body:   readUpTo(decoded(h, body), textPerPart),
			global: mediaType == "message/global-delivery-status",
		})
	case mediaType == "text/plain", mediaType == "text/html":
		if !top && isAttachment(h) {
			return // an attached copy of the original, not the bounce's words
		}
		room := min(textPerPart, textTotal-m.textLen)
		if room <= 0 {
			return
		}
		text := normalizeLines(readUpTo(decoded(h, body), room))
		if mediaType == "text/html" {
			text = htmlText(text)
		}
		text = cutOriginal(text)
		m.texts = append(m.texts, text)
		m.textLen += len(text)
	}
}

// decoded undoes the part's Content-Transfer-Encoding. go-message also
// converts the charset when it can; when it cannot (it has no charset
// tables unless a global hook is set, which this package leaves alone),
// it returns the bytes as they are, which is fine for the ASCII phrases
// and codes looked for here.
func decoded(h textproto.Header, body io.Reader) io.Reader {
	e, _ := message.New(message.Header{Header: h}, body)
	if e == nil {
		return body
	}
	return e.Body
}

// readUpTo reads at most n bytes of r, keeping what was read before an
// error (a broken base64 body still yields its good beginning).
func readUpTo(r io.Reader, n int) []byte {
	b, _ := io.ReadAll(io.LimitReader(r, int64(n)))
	return b
}

func isAttachment(h textproto.Header) bool {
	d, _, _ := mime.ParseMediaType(h.Get("Content-Disposition"))
	return d == "attachment"
}

// contentType parses a Content-Type value, lower-casing the type. When
// the value is malformed it still finds the type and the two parameters
// this package needs, as mail clients do.
func contentType(v string) (string, map[string]string) {
	if strings.TrimSpace(v) == "" {
		return "text/plain", nil // RFC 2045 §5.2
	}
	t, params, err := mime.ParseMediaType(v)
	if err == nil {
		return t, params
	}
	t, _, _ = strings.Cut(v, ";")
	return strings.ToLower(strings.TrimSpace(t)), map[string]string{
		"boundary":    looseParam(v, "boundary"),
		"report-type": looseParam(v, "report-type"),
	}
}

// looseParam finds name=value or name="value" anywhere in v.
func looseParam(v, name string) string {
	i := strings.Index(asciiLower(v), name+"=")
	if i < 0 {
		return ""
	}
	rest := v[i+len(name)+1:]
	if strings.HasPrefix(rest, `"`) {
		val, _, _ := strings.Cut(rest[1:], `"`)
		return val
	}
	if j := strings.IndexAny(rest, "; \t\r\n"); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// normalizeLines turns CRLF and lone CR line ends into LF.
func normalizeLines(b []byte) string {
	if bytes.IndexByte(b, '\r') < 0 {
		return string(b)
	}
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	return string(bytes.ReplaceAll(b, []byte("\r"), []byte("\n")))
}

// htmlText reduces HTML to its text: tags that break a line become line
// breaks (the phrase and address patterns look at line starts), other tags
// spaces, and entities are decoded. Contents of style and script elements
// are kept; they hold no phrases a bounce is judged by.
func htmlText(s string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		j := strings.IndexByte(s[i:], '>')
		if j < 0 {
			break // an unterminated tag: the rest is markup
		}
		if breaksLine(s[i+1 : i+j]) {
			b.WriteByte('\n')
		} else {
			b.WriteByte(' ')
		}
		s = s[i+j+1:]
	}
	return html.UnescapeString(b.String())
}

func breaksLine(tag string) bool {
	tag = strings.TrimPrefix(tag, "/")
	name, _, _ := strings.Cut(tag, " ")
	switch strings.ToLower(strings.TrimRight(name, "/")) {
	case "br", "p", "div", "tr", "li", "table", "h1", "h2", "h3", "h4", "pre", "blockquote":
		return true
	}
	return false
}

// originalMarkers start the copy of the returned message that
// non-standard bounces append to their own text (Exim, qmail, Sendmail,
// Exchange, Yahoo...). Only the text before the first of them is the
// bounce's; the rest is our own message and may say anything.
var originalMarkers = []string{
	"------ this is a copy of the message",
	"--- below this line is a copy of the message",
	"----- original message -----",
	"-----original message-----",
	"----- original message follows",
	"----- unsent message follows",
	"----- message header follows",
	"original message headers:",
	"------- returned message --------",
}

func cutOriginal(text string) string {
	lower := asciiLower(text)
	end := len(text)
	for _, mk := range originalMarkers {
		if i := strings.Index(lower[:end], mk); i >= 0 {
			end = i
		}
	}
	return text[:end]
}

// asciiLower lower-cases only A-Z, so that offsets into the result are
// offsets into s (strings.ToLower can change a string's length).
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// headerText is a header field's value with RFC 2047 encoded words
// decoded (any charset golang.org/x/text knows), or the raw value if that
// fails.
func headerText(h textproto.Header, key string) string {
	v := h.Get(key)
	dec := mime.WordDecoder{CharsetReader: charsetReader}
	if s, err := dec.DecodeHeader(v); err == nil {
		return s
	}
	return v
}

func charsetReader(label string, r io.Reader) (io.Reader, error) {
	enc, err := htmlindex.Get(label)
	if err != nil {
		return nil, err
	}
	return enc.NewDecoder().Reader(r), nil
}
