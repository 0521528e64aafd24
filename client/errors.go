package client

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/hashicorp/vault/api"
)

// Sentinel errors. Every error this package returns for a Vault answer is
// an *Error that matches at most one of them with errors.Is.
var (
	// ErrNotFound: the CA, role or path does not exist (404), including
	// sign-csr under an unknown role or on a mount with no CA yet.
	ErrNotFound = errors.New("mastio-ca: not found")
	// ErrExists: a CA already exists, or a check-and-set version did not
	// match (409).
	ErrExists = errors.New("mastio-ca: already exists or check-and-set mismatch")
	// ErrPolicy: sign-csr refused the request (a 400 from sign-csr): the
	// CSR breaks the role, does not parse, or asks for a ttl too long.
	ErrPolicy = errors.New("mastio-ca: refused by signing policy")
	// ErrInvalidRequest: any other 400 (bad field, bad PEM, ...).
	ErrInvalidRequest = errors.New("mastio-ca: invalid request")
	// ErrCAState: nothing is wrong with the request, but the mount's CAs
	// cannot serve it now (422): a CA expired or is about to, an Org CA
	// with pathLen 0 asked for an intermediate, an intermediate left over
	// from a replaced Org CA, a role written before a rule it breaks. An
	// operator must act; retrying does not help.
	ErrCAState = errors.New("mastio-ca: the CA cannot serve this request now")
	// ErrPermissionDenied: the token may not call this path (403).
	ErrPermissionDenied = errors.New("mastio-ca: permission denied")
	// ErrSealed: Vault is sealed (503).
	ErrSealed = errors.New("mastio-ca: vault is sealed")
	// ErrKeyUnavailable: the CA key is in a PKCS#11 token (HSM) that
	// cannot sign now (503 naming PKCS#11): the token is missing, its
	// sessions were lost, its PIN was refused. Retrying may help once it
	// is back; the mount's health says why.
	ErrKeyUnavailable = errors.New("mastio-ca: the CA key's PKCS#11 token cannot sign now")
)

// Error is a failed call: the operation, Vault's HTTP status and messages.
type Error struct {
	Op         string   // e.g. "sign-csr"
	StatusCode int      // 0 when the request never got an HTTP answer
	Messages   []string // Vault's "errors" array
	kind       error    // one of the sentinels, or nil
	err        error    // the underlying error
}

func (e *Error) Error() string {
	var sb strings.Builder
	sb.WriteString("mastio-ca ")
	sb.WriteString(e.Op)
	if e.StatusCode != 0 {
		fmt.Fprintf(&sb, ": %d", e.StatusCode)
	}
	if len(e.Messages) > 0 {
		msgs := make([]string, len(e.Messages))
		for i, m := range e.Messages {
			// Vault wraps some errors as "1 error occurred:\n\t* ..."; keep the point.
			m = strings.TrimSpace(m)
			if _, rest, ok := strings.Cut(m, "error occurred:"); ok {
				m = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest), "*"))
			}
			msgs[i] = m
		}
		sb.WriteString(": ")
		sb.WriteString(strings.Join(msgs, "; "))
	} else if e.err != nil {
		sb.WriteString(": ")
		sb.WriteString(e.err.Error())
	}
	return sb.String()
}

// Unwrap lets errors.Is match the sentinel and the underlying error.
func (e *Error) Unwrap() []error {
	var errs []error
	if e.kind != nil {
		errs = append(errs, e.kind)
	}
	if e.err != nil {
		errs = append(errs, e.err)
	}
	return errs
}

// wrapErr turns an error from the api package into an *Error.
func wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	e := &Error{Op: op, err: err}
	var re *api.ResponseError
	if errors.As(err, &re) {
		e.StatusCode = re.StatusCode
		e.Messages = re.Errors
		e.kind = kindOf(op, re.StatusCode, re.Errors)
	}
	return e
}

func kindOf(op string, status int, msgs []string) error {
	switch status {
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusConflict:
		return ErrExists
	case http.StatusUnprocessableEntity:
		return ErrCAState
	case http.StatusForbidden:
		return ErrPermissionDenied
	case http.StatusServiceUnavailable:
		for _, m := range msgs {
			if strings.Contains(m, "sealed") {
				return ErrSealed
			}
			if strings.Contains(m, "PKCS#11") {
				return ErrKeyUnavailable
			}
		}
	case http.StatusBadRequest:
		if op == opSignCSR || op == opSignPublicKey {
			return ErrPolicy
		}
		return ErrInvalidRequest
	}
	return nil
}

func notFound(op string) error {
	return &Error{Op: op, StatusCode: http.StatusNotFound, kind: ErrNotFound}
}
