package issuing

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Kind is what went wrong, in the one vocabulary the engine answers with.
// backend/respond.go maps each kind to one HTTP status.
type Kind int

const (
	// KindInternal is everything that is not the caller's doing: storage
	// failures, bugs. It is the zero Kind, for errors that are no *Error.
	KindInternal Kind = iota
	// KindInput: the request is malformed or breaks a rule (400).
	KindInput
	// KindConflict: a create-only or check-and-set write met another
	// version (409).
	KindConflict
	// KindNotFound: the role or CA the request needs does not exist (404).
	KindNotFound
	// KindState: nothing is wrong with the request, but the CAs cannot
	// serve it now (a CA expired, an intermediate left over from a replaced
	// Org CA): an operator must act; retrying does not help (422).
	KindState
	// KindUnavailable: the request is fine but what signs it cannot be
	// reached now (the HSM holding the CA key: token missing, session
	// lost, PIN refused). Retrying may help once an operator has looked
	// (503).
	KindUnavailable
)

// Error is a refusal of one Kind. Its message never quotes key material
// or a request value that could be a secret.
type Error struct {
	Kind Kind
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

func newError(k Kind, format string, args []any) error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...)}
}

// Inputf is a KindInput error.
func Inputf(format string, args ...any) error { return newError(KindInput, format, args) }

// Conflictf is a KindConflict error.
func Conflictf(format string, args ...any) error { return newError(KindConflict, format, args) }

// NotFoundf is a KindNotFound error.
func NotFoundf(format string, args ...any) error { return newError(KindNotFound, format, args) }

// Statef is a KindState error.
func Statef(format string, args ...any) error { return newError(KindState, format, args) }

// Unavailablef is a KindUnavailable error.
func Unavailablef(format string, args ...any) error { return newError(KindUnavailable, format, args) }

// KindOf is the Kind of err: that of the first *Error in its chain, else
// KindInternal.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// IsInput reports whether err is a KindInput refusal.
func IsInput(err error) bool { return KindOf(err) == KindInput }

// maxQuoted is the longest request value a message repeats.
const maxQuoted = 96

// Quote is a request value as a message may show it: quoted when it is
// short, one line and not PEM; otherwise only its length. A value sent in
// the wrong field (generate org_id=@key.pem) must not come back in the
// answer or the audit log.
func Quote(v string) string {
	if len(v) > maxQuoted || strings.Contains(v, "-----") || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Sprintf("(a value of %d bytes, not repeated here)", len(v))
	}
	return strconv.Quote(v)
}
