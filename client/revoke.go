package client

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
	"golang.org/x/crypto/ocsp"
)

// Revocation (docs/revocation.md): revoke a certificate the mount issued,
// read the CRLs its CAs sign, tidy expired revocations, and ask the
// mount's OCSP responder about a certificate. The CRLs and OCSP need no
// token; revoke needs policies/mastio-revoker.hcl, tidy the admin policy.

const (
	opRevoke = "revoke"
	opTidy   = "tidy"
	opCRL    = "crl"
	opOCSP   = "ocsp"
)

// maxOCSPAnswer bounds an OCSP answer: one signed single response is well
// under 2 KiB.
const maxOCSPAnswer = 64 << 10

// RevokeRequest names the certificate to revoke: Certificate (preferred:
// the mount reads its issuer, serial and NotAfter from it), or
// SerialNumber with Issuer and NotAfter, for a caller that kept only the
// serial.
type RevokeRequest struct {
	Certificate  string    // PEM
	SerialNumber string    // hex, with or without ':' separators (as SignedCertificate.SerialNumber)
	Issuer       string    // "org-ca", "intermediate-ca" or an issuer key id (hex subject key identifier)
	NotAfter     time.Time // the certificate's NotAfter: the revocation is kept until then
	// Reason is an RFC 5280 CRL reason: unspecified (the default),
	// keyCompromise, cACompromise, affiliationChanged, superseded,
	// cessationOfOperation, privilegeWithdrawn,
	// aACompromise.
	Reason string
}

// Revocation is a revoked certificate as revoke answers it.
type Revocation struct {
	SerialNumber string // aa:bb:... as sign-csr prints it
	RevokedAt    time.Time
	Reason       string // its RFC 5280 name
	NotAfter     time.Time
	IssuerID     string // the issuing CA's key id, as issuer/<id>/crl names it
	// AlreadyRevoked is true when the serial was revoked before: the time
	// and reason are then the first revocation's.
	AlreadyRevoked bool
	// CRLNumber is the issuer's complete CRL that lists it (or, when
	// AlreadyRevoked, the current one).
	CRLNumber int64
}

// Revoke revokes a certificate issued by the mount's Org CA or one of its
// intermediates; it enters its issuer's CRL and OCSP answers revoked at
// once. Revoking a revoked certificate again changes nothing and returns
// the first revocation with AlreadyRevoked set. A certificate the mount did
// not issue, one of its own CA certificates, an expired certificate or an
// unknown reason is ErrInvalidRequest; a mount with no CA is ErrNotFound.
func (c *Client) Revoke(ctx context.Context, r RevokeRequest) (*Revocation, error) {
	data := map[string]any{}
	setIf(data, "certificate", r.Certificate)
	setIf(data, "serial_number", r.SerialNumber)
	setIf(data, "issuer", r.Issuer)
	if !r.NotAfter.IsZero() {
		data["not_after"] = r.NotAfter.UTC().Format(time.RFC3339)
	}
	setIf(data, "reason", r.Reason)
	s, err := c.vault.Logical().WriteWithContext(ctx, c.path("revoke"), data)
	if err != nil {
		return nil, wrapErr(opRevoke, err)
	}
	if s == nil {
		return nil, &Error{Op: opRevoke, err: fmt.Errorf("empty response")}
	}
	var w struct {
		SerialNumber   string    `json:"serial_number"`
		RevocationTime time.Time `json:"revocation_time"`
		Reason         string    `json:"reason"`
		NotAfter       time.Time `json:"not_after"`
		IssuerID       string    `json:"issuer_id"`
		AlreadyRevoked bool      `json:"already_revoked"`
		CRLNumber      int64     `json:"crl_number"`
	}
	if err := decode(s.Data, &w); err != nil {
		return nil, &Error{Op: opRevoke, err: err}
	}
	return &Revocation{
		SerialNumber: w.SerialNumber, RevokedAt: w.RevocationTime, Reason: w.Reason, NotAfter: w.NotAfter,
		IssuerID: w.IssuerID, AlreadyRevoked: w.AlreadyRevoked, CRLNumber: w.CRLNumber,
	}, nil
}

// TidyResult is what a tidy removed.
type TidyResult struct {
	// RevocationsRemoved counts the revocations of expired certificates
	// dropped (they leave the CRL).
	RevocationsRemoved int `json:"revocations_removed"`
	// RetiredKeysDropped counts the keys of rotated-out intermediates
	// whose grace had ended (kept until then only to sign their CRL).
	RetiredKeysDropped int `json:"retired_keys_dropped"`
}

// Tidy drops the revocations of expired certificates now; the mount also
// does it every hour by itself.
func (c *Client) Tidy(ctx context.Context) (*TidyResult, error) {
	s, err := c.vault.Logical().WriteWithContext(ctx, c.path("tidy"), map[string]any{})
	if err != nil {
		return nil, wrapErr(opTidy, err)
	}
	var out TidyResult
	if s != nil {
		if err := decode(s.Data, &out); err != nil {
			return nil, &Error{Op: opTidy, err: err}
		}
	}
	return &out, nil
}

// CRL reads a complete CRL (or, with delta, the delta CRL) as DER and
// parses it. issuerRef names the CA: "" for the one that signs leaves now
// (the intermediate, else the Org CA), "org-ca", "intermediate-ca", or an
// issuer key id (hex subject key identifier, Revocation.IssuerID). No token
// is needed. A CA of the mount that publishes no CRL (an Org CA held as a
// certificate only) is ErrNotFound.
//
// CRL does not check the signature: call list.CheckSignatureFrom with the
// CA certificate. When the answer does not parse, the error comes with the
// DER that was served.
func (c *Client) CRL(ctx context.Context, issuerRef string, delta bool) (*x509.RevocationList, []byte, error) {
	p := "crl"
	if issuerRef != "" {
		if !validRef(issuerRef) {
			return nil, nil, &Error{Op: opCRL, kind: ErrInvalidRequest, err: fmt.Errorf("issuer %q is not org-ca, intermediate-ca or a hex key id", issuerRef)}
		}
		p = "issuer/" + issuerRef + "/crl"
	}
	if delta {
		p += "/delta"
	}
	resp, err := c.vault.Logical().ReadRawWithContext(ctx, c.path(p))
	if resp != nil {
		defer resp.Body.Close()
	}
	if err != nil {
		return nil, nil, wrapErr(opCRL, err)
	}
	der, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, &Error{Op: opCRL, err: err}
	}
	list, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, der, &Error{Op: opCRL, err: fmt.Errorf("the answer is not a DER CRL (Content-Type %q): %w", resp.Header.Get("Content-Type"), err)}
	}
	return list, der, nil
}

// validRef reports whether ref can be a path segment naming an issuer:
// no separator, and not "." or ".." (which would name another path).
func validRef(ref string) bool {
	if ref == "." || ref == ".." {
		return false
	}
	return !strings.ContainsFunc(ref, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' || r == ':')
	})
}

// OCSPStatus asks the mount's OCSP responder (GET ocsp/<base64>, no token
// needed) about cert, issued by issuer, and returns the answer once it is
// verified: signed by issuer itself (the mount signs each answer with the
// issuing CA, never a delegated responder), about cert's serial, and not
// past its NextUpdate. resp.Status is ocsp.Good or ocsp.Revoked (then
// RevokedAt and RevocationReason are set).
//
// A certificate whose issuer the mount does not hold gets "unknown",
// signed by the mount's own CA: that is ErrNotFound. An answer that does
// not verify is an *Error with no sentinel; an OCSP error answer
// (malformedRequest, unauthorized) wraps an ocsp.ResponseError.
func (c *Client) OCSPStatus(ctx context.Context, cert, issuer *x509.Certificate) (*ocsp.Response, error) {
	if cert == nil || issuer == nil {
		return nil, &Error{Op: opOCSP, kind: ErrInvalidRequest, err: errors.New("OCSPStatus needs the certificate and its issuer")}
	}
	req, err := ocsp.CreateRequest(cert, issuer, &ocsp.RequestOptions{Hash: crypto.SHA256})
	if err != nil {
		return nil, &Error{Op: opOCSP, kind: ErrInvalidRequest, err: err}
	}
	resp, err := c.ocspGet(ctx, base64.StdEncoding.EncodeToString(req))
	if resp != nil {
		defer resp.Body.Close()
	}
	if err != nil {
		return nil, wrapErr(opOCSP, err)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxOCSPAnswer))
	if err != nil {
		return nil, &Error{Op: opOCSP, err: err}
	}
	answer, err := ocsp.ParseResponseForCert(body, cert, issuer)
	if err != nil {
		var re ocsp.ResponseError
		if errors.As(err, &re) {
			return nil, &Error{Op: opOCSP, err: fmt.Errorf("the responder answered %w", re)}
		}
		// Not signed by issuer: the mount answers "unknown", signed by its
		// own CA, for an issuer it does not hold. Say so, and trust nothing
		// else of it.
		if unverified, uerr := ocsp.ParseResponseForCert(body, cert, nil); uerr == nil && unverified.Status == ocsp.Unknown {
			return nil, &Error{Op: opOCSP, kind: ErrNotFound,
				err: fmt.Errorf("the mount does not hold the issuer %q: it answered unknown, signed by its own CA", issuer.Subject.String())}
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/ocsp-response" {
			err = fmt.Errorf("%w (Content-Type %q)", err, ct)
		}
		return nil, &Error{Op: opOCSP, err: fmt.Errorf("the answer does not verify under the issuer: %w", err)}
	}
	if answer.Certificate != nil && !answer.Certificate.Equal(issuer) && !slices.Contains(answer.Certificate.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
		// x/crypto/ocsp accepts any certificate the issuer signed as the
		// responder; RFC 6960 4.2.2.2 wants id-kp-OCSPSigning.
		return nil, &Error{Op: opOCSP, err: errors.New("the answer is signed by a delegated responder that is not authorized for OCSP signing")}
	}
	if answer.Status == ocsp.Unknown {
		return nil, &Error{Op: opOCSP, kind: ErrNotFound, err: errors.New("the responder does not know the certificate (unknown)")}
	}
	if !answer.NextUpdate.IsZero() && time.Now().After(answer.NextUpdate) {
		return nil, &Error{Op: opOCSP, err: fmt.Errorf("the answer is stale: its nextUpdate %s has passed", answer.NextUpdate.UTC().Format(time.RFC3339))}
	}
	return answer, nil
}

// ocspGet reads <mount>/ocsp/<b64>. The base64 holds '/', '+' and '=':
// the request goes out with them percent-encoded (RFC 6960 appendix A.1),
// as the api client would otherwise clean "//" away and Go's server would
// redirect a path holding it. Vault decodes the path before the plugin
// sees it.
func (c *Client) ocspGet(ctx context.Context, b64 string) (*api.Response, error) {
	const placeholder = "_"
	vc := c.vault.WithRequestCallbacks(func(r *api.Request) {
		prefix := strings.TrimSuffix(r.URL.Path, placeholder)
		r.URL.Path = prefix + b64
		r.URL.RawPath = (&url.URL{Path: prefix}).EscapedPath() + escapeBase64(b64)
	})
	return vc.Logical().ReadRawWithContext(ctx, c.path("ocsp/"+placeholder))
}

// escapeBase64 percent-encodes the characters of standard base64 that are
// not unreserved in a URL path.
func escapeBase64(s string) string {
	return strings.NewReplacer("/", "%2F", "+", "%2B", "=", "%3D").Replace(s)
}
