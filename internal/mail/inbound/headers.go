package inbound

import (
	"bufio"
	"bytes"
	"io"
	"mime"
	"net/mail"
	"net/textproto"
	"strings"
)

// recipient is the first candidate address of raw that accept takes.
func recipient(raw []byte, accept func(string) bool) (string, bool) {
	for _, a := range candidates(raw) {
		if accept(a) {
			return a, true
		}
	}
	return "", false
}

// candidates lists every address in raw's rcptHeaders, in that order of
// headers and, within one, in the order of the message. A header that
// does not parse as an address list is read leniently (see looseAddrs):
// a mailbox's envelope headers are often written by software that is not
// strict about RFC 5322. The header is read up to its first malformed
// line.
func candidates(raw []byte) []string {
	h, _ := textproto.NewReader(bufio.NewReader(bytes.NewReader(raw))).ReadMIMEHeader()
	// where a message in a mailbox names the address it was delivered
	// to, most telling first: the delivery agent's envelope headers, then
	// the addresses the sender wrote
	names := [...]string{"Delivered-To", "X-Original-To", "X-Envelope-To", "Envelope-To", "To", "Cc"}
	var out []string
	for _, name := range names {
		for _, v := range h.Values(name) {
			out = append(out, addrs(v)...)
		}
	}
	return out
}

// addrs are the addresses in one header value.
func addrs(v string) []string {
	// RFC 2047 display names in any charset are taken as they are (they
	// are not looked at): an unknown charset must not make the address
	// list unreadable
	p := mail.AddressParser{WordDecoder: &mime.WordDecoder{
		CharsetReader: func(_ string, input io.Reader) (io.Reader, error) { return input, nil },
	}}
	if list, err := p.ParseList(v); err == nil {
		out := make([]string, 0, len(list))
		for _, a := range list {
			out = append(out, a.Address)
		}
		return out
	}
	return looseAddrs(v)
}

// looseAddrs reads a value that is not an RFC 5322 address list: each
// comma-separated part is an address in angle brackets, or a bare word
// with an "@" in it.
func looseAddrs(v string) []string {
	var out []string
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if i := strings.LastIndexByte(part, '<'); i >= 0 {
			if j := strings.IndexByte(part[i:], '>'); j > 0 {
				part = part[i+1 : i+j]
			}
		}
		part = strings.TrimSpace(part)
		if strings.Contains(part, "@") && !strings.ContainsAny(part, " \t\r\n<>,") {
			out = append(out, part)
		}
	}
	return out
}
