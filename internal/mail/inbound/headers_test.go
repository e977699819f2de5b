package inbound

import (
	"slices"
	"strings"
	"testing"
)

func TestCandidatesOrder(t *testing.T) {
	raw := "Return-Path: <>\r\n" +
		"To: Fjord Bounces <" + verpB + ">, other@customer.example\r\n" +
		"Cc: =?x-unknown?q?Caf=E9?= <cc@customer.example>\r\n" +
		"Delivered-To: mailbox@bounces.example.com\r\n" +
		"Delivered-To: " + verpA + "\r\n" +
		"X-Original-To: <orig@bounces.example.com>\r\n" +
		"Envelope-To: env@bounces.example.com\r\n" +
		"X-Envelope-To: broken \"list <xenv@bounces.example.com>\r\n" +
		"Subject: Delivery Status Notification\r\n" +
		"\r\n" +
		"Delivered-To: body@not.a.header\r\n"
	got := candidates([]byte(raw))
	want := []string{"mailbox@bounces.example.com", verpA, "orig@bounces.example.com",
		"xenv@bounces.example.com", "env@bounces.example.com", verpB, "other@customer.example", "cc@customer.example"}
	if !slices.Equal(got, want) {
		t.Errorf("candidates:\ngot  %q\nwant %q", got, want)
	}
	rcpt, ok := recipient([]byte(raw), acceptVERP)
	if !ok || rcpt != verpA {
		t.Errorf("recipient = %q %v, want the first accepted in header order (%s)", rcpt, ok, verpA)
	}
	if _, ok := recipient([]byte("To: a@b.example\r\n\r\n"), acceptVERP); ok {
		t.Error("a message for no accepted address has a recipient")
	}
}

func TestCandidatesMalformed(t *testing.T) {
	// the header is read up to its first malformed line
	raw := "Delivered-To: " + verpA + "\r\nthis is not a header\r\nTo: " + verpB + "\r\n\r\n"
	if got := candidates([]byte(raw)); !slices.Equal(got, []string{verpA}) {
		t.Errorf("got %q", got)
	}
	// folded header lines, and LF line ends as some stores keep them
	raw = "To: A <a@x.example>,\n\tB <" + verpB + ">\n\nbody"
	if got := candidates([]byte(raw)); !slices.Equal(got, []string{"a@x.example", verpB}) {
		t.Errorf("got %q", got)
	}
	for _, raw := range []string{"", "\r\n", "no header at all", "To:\r\n\r\n", "To: <>\r\n\r\n", "To: undisclosed-recipients:;\r\n\r\n"} {
		if got := candidates([]byte(raw)); len(got) != 0 {
			t.Errorf("%q: got %q, want none", raw, got)
		}
	}
}

// fuzz-count: 20000x
func FuzzCandidates(f *testing.F) {
	f.Add([]byte("Delivered-To: " + verpA + "\r\nTo: \"A, B\" <a@x.example>, c@y.example\r\n\r\nbody"))
	f.Add([]byte("X-Envelope-To: <" + verpB + ">\nCc: =?utf-8?b?w6k=?= <d@z.example>\n\n"))
	f.Add([]byte("To: broken <<a@b>, ,,@ ,\"q\r\n\tfolded\" <x@y>\r\n"))
	f.Add([]byte("Envelope-To: a@b\r\nEnvelope-To: \x00@\xff\r\n\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		got := candidates(raw)
		for _, a := range got {
			if !strings.Contains(a, "@") || strings.ContainsAny(a, "\r\n") {
				t.Errorf("candidate %q is not an address on one line", a)
			}
		}
		if len(got) > len(raw) {
			t.Errorf("%d addresses from %d bytes", len(got), len(raw))
		}
		// recipient agrees with candidates: the first one accepted
		if len(got) > 0 {
			last := got[len(got)-1]
			rcpt, ok := recipient(raw, func(a string) bool { return a == last })
			if !ok || rcpt != last {
				t.Errorf("recipient = %q %v, want %q", rcpt, ok, last)
			}
		}
		if _, ok := recipient(raw, func(string) bool { return false }); ok {
			t.Error("recipient found with an Accept that takes nothing")
		}
	})
}
