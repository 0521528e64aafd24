package issuing

import (
	"crypto"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // OCSP's CertID hashes; RFC 6960 clients send SHA-1
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"math/big"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ocsp"
)

// Revocation without a certificate store: only revoked serials are kept
// (by the backend), each until its certificate expires; CRLs and OCSP
// answers are built from them and signed by the issuing CA.

// CRL reasons (RFC 5280 5.3.1), by the names revoke accepts. removeFromCRL
// (8) is not one a revocation can have.
var crlReasons = map[string]int{
	"unspecified":          ocsp.Unspecified,
	"keycompromise":        ocsp.KeyCompromise,
	"cacompromise":         ocsp.CACompromise,
	"affiliationchanged":   ocsp.AffiliationChanged,
	"superseded":           ocsp.Superseded,
	"cessationofoperation": ocsp.CessationOfOperation,
	"certificatehold":      ocsp.CertificateHold,
	"privilegewithdrawn":   ocsp.PrivilegeWithdrawn,
	"aacompromise":         ocsp.AACompromise,
}

// ReasonNames lists the reasons revoke accepts, in RFC 5280's order.
var ReasonNames = []string{"unspecified", "keyCompromise", "cACompromise", "affiliationChanged", "superseded", "cessationOfOperation", "certificateHold", "privilegeWithdrawn", "aACompromise"}

// ParseReason reads a CRL reason: an RFC 5280 name (any case, with or
// without underscores: keyCompromise, key_compromise) or its code.
func ParseReason(s string) (int, error) {
	if s == "" {
		return ocsp.Unspecified, nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		for _, code := range crlReasons {
			if code == n {
				return n, nil
			}
		}
	} else if code, ok := crlReasons[strings.ToLower(strings.ReplaceAll(s, "_", ""))]; ok {
		return code, nil
	}
	return 0, Inputf("reason %s is not an RFC 5280 CRL reason; use one of %s", Quote(s), strings.Join(ReasonNames, ", "))
}

// ReasonName is the RFC 5280 name of a reason code.
func ReasonName(code int) string {
	for _, n := range ReasonNames {
		if crlReasons[strings.ToLower(n)] == code {
			return n
		}
	}
	return strconv.Itoa(code)
}

// KeyID is how an issuing CA is named in storage keys, URLs ({{issuer_id}})
// and CRL paths: its subject key identifier in lowercase hex.
func KeyID(ca *x509.Certificate) string {
	return hex.EncodeToString(ca.SubjectKeyId)
}

// SerialHex is a serial as it appears in a storage key: lowercase hex,
// no separators.
func SerialHex(n *big.Int) string {
	return n.Text(16)
}

// ParseSerial reads a serial number in hex, with or without ':' or '-'
// separators (FormatSerial's form, openssl's).
func ParseSerial(s string) (*big.Int, error) {
	clean := strings.NewReplacer(":", "", "-", "").Replace(strings.TrimSpace(s))
	if len(clean) == 0 || len(clean) > 40 {
		return nil, Inputf("serial_number must be 1 to 20 bytes in hex (as cert and sign-csr print it)")
	}
	n, ok := new(big.Int).SetString(clean, 16)
	if !ok || n.Sign() <= 0 {
		return nil, Inputf("serial_number %s is not a positive hex number", Quote(s))
	}
	return n, nil
}

// Revocation is one revoked certificate.
type Revocation struct {
	Serial    *big.Int
	RevokedAt time.Time
	Reason    int
	NotAfter  time.Time // the certificate's: the entry is dropped after it
}

// RevokeTarget is what revoke learned of a certificate from its PEM.
type RevokeTarget struct {
	Serial   *big.Int
	NotAfter time.Time
	Issuer   int // index into the issuers given
}

// IdentifyRevoked reads the certificate to revoke and finds which of
// issuers signed it. own holds the mount's own CA certificates, which
// revoke refuses (rotation replaces them).
func IdentifyRevoked(certPEM string, issuers, own []*x509.Certificate, now time.Time) (*RevokeTarget, error) {
	certs, err := ParseCertificatesPEM("certificate", certPEM)
	if err != nil {
		return nil, err
	}
	if len(certs) != 1 {
		return nil, Inputf("certificate holds %d certificates; send the one to revoke", len(certs))
	}
	c := certs[0]
	if slices.ContainsFunc(own, c.Equal) {
		return nil, Inputf("certificate is one of this mount's own CAs (%s): revoke does not revoke them; rotate the intermediate (intermediate/rotate, drop_earlier=true after a compromise) or replace the Org CA", c.Subject.CommonName)
	}
	if err := checkKeyBounds("certificate", c.PublicKey); err != nil {
		return nil, err
	}
	for i, is := range issuers {
		if c.CheckSignatureFrom(is) == nil {
			if !now.Before(c.NotAfter) {
				return nil, Inputf("certificate expired at %s: it is no longer valid, and no CRL lists it", c.NotAfter.UTC().Format(time.RFC3339))
			}
			return &RevokeTarget{Serial: c.SerialNumber, NotAfter: c.NotAfter, Issuer: i}, nil
		}
	}
	return nil, Inputf("certificate (serial %s, issuer %q) was not issued by this mount's Org CA or any of its intermediates in use", FormatSerial(c.SerialNumber), c.Issuer.String())
}

// OIDDeltaCRLIndicator marks a delta CRL (RFC 5280 5.2.4).
var OIDDeltaCRLIndicator = asn1.ObjectIdentifier{2, 5, 29, 27}

// CRLParams say which CRL to build.
type CRLParams struct {
	Number     *big.Int
	ThisUpdate time.Time
	NextUpdate time.Time
	// DeltaBase, when set, makes a delta CRL against the complete CRL of
	// that number, holding only the entries given.
	DeltaBase *big.Int
}

// BuildCRL makes the v2 CRL of issuer, signed by key: AKI (the issuer's
// SKI), CRL number, thisUpdate/nextUpdate, each entry with its reason
// code (none for unspecified, as RFC 5280 recommends), sorted by serial.
func BuildCRL(issuer *x509.Certificate, key crypto.Signer, entries []Revocation, p CRLParams) ([]byte, error) {
	list := make([]x509.RevocationListEntry, len(entries))
	for i, e := range entries {
		list[i] = x509.RevocationListEntry{SerialNumber: e.Serial, RevocationTime: e.RevokedAt.UTC(), ReasonCode: e.Reason}
	}
	slices.SortFunc(list, func(a, b x509.RevocationListEntry) int { return a.SerialNumber.Cmp(b.SerialNumber) })
	tmpl := &x509.RevocationList{
		RevokedCertificateEntries: list,
		Number:                    p.Number,
		ThisUpdate:                p.ThisUpdate.UTC(),
		NextUpdate:                p.NextUpdate.UTC(),
	}
	if p.DeltaBase != nil {
		v, err := asn1.Marshal(p.DeltaBase)
		if err != nil {
			return nil, fmt.Errorf("encoding the delta CRL indicator: %w", err)
		}
		tmpl.ExtraExtensions = []pkix.Extension{{Id: OIDDeltaCRLIndicator, Critical: true, Value: v}}
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, issuer, key)
	if err != nil {
		return nil, fmt.Errorf("signing the CRL: %w", err)
	}
	return der, nil
}

// MaxOCSPRequestBytes bounds an OCSP request: one with a single CertID is
// about 100 bytes.
const MaxOCSPRequestBytes = 4 << 10

// OCSPIssuer is an issuing CA an OCSP request may name.
type OCSPIssuer struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// OCSPLookup reports whether the serial issued by issuer i is revoked.
type OCSPLookup func(i int, serial *big.Int) (Revocation, bool)

// OCSPWindow is the validity of an answer: the CRL's.
type OCSPWindow struct {
	ThisUpdate, NextUpdate time.Time
}

// AnswerOCSP parses an OCSP request (RFC 6960) and answers it: good,
// revoked (time and reason), or, for an issuer this mount does not hold,
// unknown, signed by fallback (the mount's signing CA). issuers[i]'s
// answers are signed by issuers[i] itself. A malformed request gets
// OCSP's own malformedRequest answer, which is not signed.
func AnswerOCSP(der []byte, issuers []OCSPIssuer, fallback int, lookup OCSPLookup, window func(i int) OCSPWindow, now time.Time) ([]byte, error) {
	if len(der) == 0 || len(der) > MaxOCSPRequestBytes {
		return ocsp.MalformedRequestErrorResponse, nil
	}
	req, err := ocsp.ParseRequest(der)
	if err != nil {
		return ocsp.MalformedRequestErrorResponse, nil
	}
	h := req.HashAlgorithm
	if h != crypto.SHA1 && h != crypto.SHA256 && h != crypto.SHA384 && h != crypto.SHA512 {
		return ocsp.MalformedRequestErrorResponse, nil
	}
	idx := -1
	for i, is := range issuers {
		if nameHash, keyHash := certIDHashes(h, is.Cert); slices.Equal(nameHash, req.IssuerNameHash) && slices.Equal(keyHash, req.IssuerKeyHash) {
			idx = i
			break
		}
	}
	tmpl := ocsp.Response{SerialNumber: req.SerialNumber, IssuerHash: h, ThisUpdate: now, NextUpdate: now.Add(time.Hour), Status: ocsp.Unknown}
	signer := fallback
	if idx >= 0 {
		signer = idx
		w := window(idx)
		tmpl.ThisUpdate, tmpl.NextUpdate, tmpl.Status = w.ThisUpdate, w.NextUpdate, ocsp.Good
		if r, revoked := lookup(idx, req.SerialNumber); revoked {
			tmpl.Status, tmpl.RevokedAt, tmpl.RevocationReason = ocsp.Revoked, r.RevokedAt.UTC(), r.Reason
		}
	}
	if signer < 0 {
		return ocsp.UnauthorizedErrorResponse, nil
	}
	is := issuers[signer]
	resp, err := ocsp.CreateResponse(is.Cert, is.Cert, tmpl, is.Key)
	if err != nil {
		return nil, fmt.Errorf("signing the OCSP answer: %w", err)
	}
	return resp, nil
}

// certIDHashes are an issuer's name and key hashes in an OCSP CertID:
// the hash of its DER subject and of its public key's bits.
func certIDHashes(h crypto.Hash, ca *x509.Certificate) ([]byte, []byte) {
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(ca.RawSubjectPublicKeyInfo, &spki); err != nil {
		return nil, nil
	}
	sum := func(b []byte) []byte {
		switch h {
		case crypto.SHA1:
			s := sha1.Sum(b) //nolint:gosec // the CertID hash the client chose
			return s[:]
		case crypto.SHA256:
			s := sha256.Sum256(b)
			return s[:]
		case crypto.SHA384:
			s := sha512.Sum384(b)
			return s[:]
		default:
			s := sha512.Sum512(b)
			return s[:]
		}
	}
	return sum(ca.RawSubject), sum(spki.PublicKey.RightAlign())
}

// URLs are the revocation and issuer URLs put into every certificate a CA
// issues (config crl_distribution_points, ocsp_servers,
// issuing_certificates), with {{issuer_id}} standing for the issuing CA's
// KeyID.
type URLs struct {
	CRL, OCSP, Issuing []string
}

// MaxURLs bounds each list of URLs.
const MaxURLs = 8

// CheckURLs refuses a URL list entry that is not an absolute http(s) or
// ldap URL, or that uses another placeholder than {{issuer_id}}. field
// names the list in messages.
func CheckURLs(field string, urls []string) error {
	if len(urls) > MaxURLs {
		return Inputf("%s holds %d URLs; at most %d", field, len(urls), MaxURLs)
	}
	for _, raw := range urls {
		for _, v := range templateVar.FindAllString(raw, -1) {
			if v != "{{issuer_id}}" {
				return Inputf("%s: unknown placeholder %s; use {{issuer_id}}", field, Quote(v))
			}
		}
		u, err := url.Parse(strings.ReplaceAll(raw, "{{issuer_id}}", "x"))
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "ldap") || len(raw) > 1024 {
			return Inputf("%s: %s is not an absolute http, https or ldap URL", field, Quote(raw))
		}
	}
	return nil
}

// For fills in {{issuer_id}} with the issuing CA's KeyID.
func (u URLs) For(issuer *x509.Certificate) URLs {
	id := KeyID(issuer)
	fill := func(in []string) []string {
		if len(in) == 0 {
			return nil
		}
		out := make([]string, len(in))
		for i, s := range in {
			out[i] = strings.ReplaceAll(s, "{{issuer_id}}", id)
		}
		return out
	}
	return URLs{CRL: fill(u.CRL), OCSP: fill(u.OCSP), Issuing: fill(u.Issuing)}
}

// apply puts u into a certificate template.
func (u URLs) apply(tmpl *x509.Certificate) {
	tmpl.CRLDistributionPoints, tmpl.OCSPServer, tmpl.IssuingCertificateURL = u.CRL, u.OCSP, u.Issuing
}
