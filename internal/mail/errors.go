package mail

import (
	"context"
	"errors"
	"io"
	"net"
	"net/textproto"
)

// sendError is Send's error. Its text is scrubbed (no password, no
// recipient), so it wraps nothing that could leak them; what a caller
// decides on, the reply code and whether to retry, is kept beside it.
type sendError struct {
	text string
	code int  // the SMTP reply code; 0: none
	temp bool // worth retrying
}

func (e *sendError) Error() string { return e.text }

// IsTemporary reports whether a Send error is a temporary SMTP failure
// (a 4xx reply, or the server unreachable / connection failed) that is
// worth retrying, as opposed to a permanent refusal (5xx) or a bad
// message. A connection lost after the message's end was sent counts as
// temporary, so a retry may deliver a message twice (rarely).
func IsTemporary(err error) bool {
	var se *sendError
	return errors.As(err, &se) && se.temp
}

// ReplyCode is the SMTP reply code of a Send error (e.g. 451, 550), 0
// when there is none (not connected, or refused before sending).
func ReplyCode(err error) int {
	var se *sendError
	if errors.As(err, &se) {
		return se.code
	}
	return 0
}

// replyCode is the code of the server's reply in err, 0 when none.
func replyCode(err error) int {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}

// isTemporary classifies an error of the SMTP exchange. A reply decides
// by its code; without one, a failed or broken connection (refused,
// timed out, reset, closed early) is temporary, while anything else (no
// STARTTLS, a bad certificate, no matching authentication) is a setting
// that a retry will not change.
func isTemporary(err error) bool {
	if code := replyCode(err); code != 0 {
		return code >= 400 && code < 500
	}
	var ne net.Error
	return errors.As(err, &ne) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}
