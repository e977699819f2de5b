// Package inbound takes in the bounces of Fjord's e-mail reports. They come
// back to a VERP address (bounces+TOKEN@bounces.example.com) by one of two
// ways: Fjord's own SMTP receiver, an MX for that domain (ListenSMTP), or a
// mailbox that another mail server delivers to and Fjord reads over IMAP
// (PollIMAP). Both hand each message, with the VERP address it was for, to
// one Handler.
//
// Nothing here logs a message body, an e-mail address or a password: only
// counts, sizes and reply codes.
package inbound

import (
	"context"
	"io"
	"log/slog"
)

// Handler receives one message for one accepted recipient address (the
// VERP address), as raw RFC 5322 bytes.
//
// An error means "not taken": the SMTP receiver answers a 451 temporary
// failure, the IMAP poller leaves the message in the mailbox. Either way
// the message comes again, so a Handler must take the same message twice
// without harm; and its error is logged, so it must not name an address.
type Handler func(ctx context.Context, rcpt string, raw []byte) error

// defaultMaxBytes bounds a message when no other bound is set: bounces
// are small (a report's bounce quotes at most its headers, mostly).
const defaultMaxBytes = 1 << 20

// logger is log, or one that drops everything.
func logger(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return log
}

// readLimited reads r to its end, but at most max bytes: tooBig is true
// (and the bytes read are dropped) when r holds more.
func readLimited(r io.Reader, max int64) (b []byte, tooBig bool, err error) {
	b, err = io.ReadAll(io.LimitReader(r, max+1))
	if int64(len(b)) > max {
		return nil, true, err
	}
	return b, false, err
}
