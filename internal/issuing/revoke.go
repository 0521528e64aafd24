package issuing

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
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
// (8) is not one a revocation can have, and certificateHold (6) is refused
// (see ReasonNames).
var crlReasons = map[string]int{
	"unspecified":          ocsp.Unspecified,
	"keycompromise":        ocsp.KeyCompromise,
	"cacompromise":         ocsp.CACompromise,
	"affiliationchanged":   ocsp.AffiliationChanged,
	"superseded":           ocsp.Superseded,
	"cessationofoperation": ocsp.CessationOfOperation,
	"privilegewithdrawn":   ocsp.PrivilegeWithdrawn,
	"aacompromise":         ocsp.AACompromise,
}

// ReasonNames lists the reasons revoke accepts, in RFC 5280's order.
// certificateHold is not among them: a hold is released with removeFromCRL,
// which this engine does not issue, so a hold here would be for good.
var ReasonNames = []string{"unspecified", "keyCompromise", "cACompromise", "affiliationChanged", "superseded", "cessationOfOperation", "privilegeWithdrawn", "aACompromise"}

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
		return nil, Inputf("certificate is one of this mount's own CAs (%s): revoke does not revoke them; rotate the intermediate (intermediate/rotate, drop_earlier=true after a compromise) or replace the Org CA", Quote(c.Subject.CommonName))
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
	return nil, Inputf("certificate (serial %s, issuer %s) was not issued by this mount's Org CA or any of its intermediates in use", Quote(FormatSerial(c.SerialNumber)), Quote(c.Issuer.String()))
}

// OIDDeltaCRLIndicator marks a delta CRL (RFC 5280 5.2.4).
var OIDDeltaCRLIndicator = asn1.ObjectIdentifier{2, 5, 29, 27}

// OIDFreshestCRL names where a complete CRL's deltas are (RFC 5280
// 5.2.6); openssl looks for deltas only when it is there.
var OIDFreshestCRL = asn1.ObjectIdentifier{2, 5, 29, 46}

// CRLParams say which CRL to build.
type CRLParams struct {
	Number     *big.Int
	ThisUpdate time.Time
	NextUpdate time.Time
	// DeltaBase, when set, makes a delta CRL against the complete CRL of
	// that number, holding only the entries given.
	DeltaBase *big.Int
	// DeltaURLs, on a complete CRL, are its deltas' locations (Freshest
	// CRL extension).
	DeltaURLs []string
}

// marshalDistributionPoints is the DER of CRLDistributionPoints syntax
// (RFC 5280 4.2.1.13) with one full-name URI per point.
func marshalDistributionPoints(urls []string) ([]byte, error) {
	type pointName struct {
		FullName []asn1.RawValue `asn1:"optional,tag:0"`
	}
	type point struct {
		DistributionPoint pointName `asn1:"optional,tag:0"`
	}
	points := make([]point, len(urls))
	for i, u := range urls {
		points[i] = point{DistributionPoint: pointName{FullName: []asn1.RawValue{{Class: asn1.ClassContextSpecific, Tag: 6, Bytes: []byte(u)}}}}
	}
	return asn1.Marshal(points)
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
	} else if len(p.DeltaURLs) > 0 {
		v, err := marshalDistributionPoints(p.DeltaURLs)
		if err != nil {
			return nil, fmt.Errorf("encoding the freshest CRL extension: %w", err)
		}
		tmpl.ExtraExtensions = []pkix.Extension{{Id: OIDFreshestCRL, Value: v}}
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
// unknown for the CertID asked about, signed by issuers[fallback] (the
// mount's signing CA; none: unauthorized). issuers[i]'s answers are
// signed by issuers[i] itself. A malformed request gets OCSP's own
// malformedRequest answer, which is not signed.
func AnswerOCSP(der []byte, issuers []OCSPIssuer, fallback int, lookup OCSPLookup, window func(i int) OCSPWindow, now time.Time) ([]byte, error) {
	req, ok := ParseOCSPRequest(der)
	if !ok {
		return ocsp.MalformedRequestErrorResponse, nil
	}
	idx := OCSPIssuerIndex(req, issuers)
	if idx < 0 {
		if fallback < 0 {
			return ocsp.UnauthorizedErrorResponse, nil
		}
		// Not one of ours: unknown, for the CertID asked about, signed by
		// the mount's active CA.
		at := now.UTC().Truncate(time.Second)
		return signOCSP(req, issuers[fallback], ocspStatus{code: ocsp.Unknown}, OCSPWindow{ThisUpdate: at, NextUpdate: at.Add(time.Hour)}, now)
	}
	st := ocspStatus{code: ocsp.Good}
	if r, revoked := lookup(idx, req.SerialNumber); revoked {
		st = ocspStatus{code: ocsp.Revoked, at: r.RevokedAt, reason: r.Reason}
	}
	return signOCSP(req, issuers[idx], st, window(idx), now)
}

// ocspStatus is a certificate's status in an answer.
type ocspStatus struct {
	code   int // ocsp.Good, ocsp.Revoked, ocsp.Unknown
	at     time.Time
	reason int
}

// certStatus encodes a CertStatus (RFC 6960): good [0] and unknown [2]
// IMPLICIT NULL, revoked [1] IMPLICIT RevokedInfo.
func (st ocspStatus) certStatus() (asn1.RawValue, error) {
	if st.code != ocsp.Revoked {
		tag := 0
		if st.code == ocsp.Unknown {
			tag = 2
		}
		return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: tag, Bytes: []byte{}}, nil
	}
	info, err := asn1.MarshalWithParams(st.at.UTC().Truncate(time.Second), "generalized")
	if err != nil {
		return asn1.RawValue{}, err
	}
	if st.reason != ocsp.Unspecified {
		reason, err := asn1.MarshalWithParams(asn1.Enumerated(st.reason), "explicit,tag:0")
		if err != nil {
			return asn1.RawValue{}, err
		}
		info = append(info, reason...)
	}
	return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 1, IsCompound: true, Bytes: info}, nil
}

// ParseOCSPRequest reads an OCSP request within MaxOCSPRequestBytes, with
// a CertID hash this engine answers for; false when it is malformed.
func ParseOCSPRequest(der []byte) (*ocsp.Request, bool) {
	if len(der) == 0 || len(der) > MaxOCSPRequestBytes {
		return nil, false
	}
	req, err := ocsp.ParseRequest(der)
	if err != nil {
		return nil, false
	}
	switch req.HashAlgorithm {
	case crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512:
		return req, true
	}
	return nil, false
}

// OCSPIssuerIndex is the index of the issuer req names (by name and key
// hash), or -1.
func OCSPIssuerIndex(req *ocsp.Request, issuers []OCSPIssuer) int {
	for i, is := range issuers {
		if nameHash, keyHash := certIDHashes(req.HashAlgorithm, is.Cert); slices.Equal(nameHash, req.IssuerNameHash) && slices.Equal(keyHash, req.IssuerKeyHash) {
			return i
		}
	}
	return -1
}

// The ASN.1 of an OCSP answer (RFC 6960 4.2.1). x/crypto/ocsp parses
// requests and answers, but writes an answer only for an issuer it is
// handed (not the CertID of one we do not hold) and not for Ed25519 keys.
type (
	ocspCertID struct {
		HashAlgorithm  pkix.AlgorithmIdentifier
		IssuerNameHash []byte
		IssuerKeyHash  []byte
		SerialNumber   *big.Int
	}
	ocspSingle struct {
		CertID     ocspCertID
		CertStatus asn1.RawValue
		ThisUpdate time.Time `asn1:"generalized"`
		NextUpdate time.Time `asn1:"generalized,explicit,tag:0"`
	}
	ocspResponseData struct {
		ResponderID asn1.RawValue
		ProducedAt  time.Time `asn1:"generalized"`
		Responses   []ocspSingle
	}
	ocspBasic struct {
		TBSResponseData    asn1.RawValue
		SignatureAlgorithm pkix.AlgorithmIdentifier
		Signature          asn1.BitString
	}
	ocspResponseBytes struct {
		ResponseType asn1.ObjectIdentifier
		Response     []byte
	}
	ocspResponse struct {
		Status   asn1.Enumerated
		Response ocspResponseBytes `asn1:"explicit,tag:0"`
	}
)

var (
	oidOCSPBasic  = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 1}
	oidHashByAlgo = map[crypto.Hash]asn1.ObjectIdentifier{
		crypto.SHA1:   {1, 3, 14, 3, 2, 26},
		crypto.SHA256: {2, 16, 840, 1, 101, 3, 4, 2, 1},
		crypto.SHA384: {2, 16, 840, 1, 101, 3, 4, 2, 2},
		crypto.SHA512: {2, 16, 840, 1, 101, 3, 4, 2, 3},
	}
)

// signOCSP is a signed answer about req's CertID, as it was asked: its
// status, valid for w, signed by by (responder ID: by key).
func signOCSP(req *ocsp.Request, by OCSPIssuer, st ocspStatus, w OCSPWindow, now time.Time) ([]byte, error) {
	sigAlg, hash, err := signingAlgorithm(by.Key.Public())
	if err != nil {
		return nil, err
	}
	certStatus, err := st.certStatus()
	if err != nil {
		return nil, err
	}
	_, keyHash := certIDHashes(crypto.SHA1, by.Cert)
	responderID, err := asn1.Marshal(keyHash)
	if err != nil {
		return nil, err
	}
	tbs, err := asn1.Marshal(ocspResponseData{
		ResponderID: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 2, IsCompound: true, Bytes: responderID},
		ProducedAt:  now.UTC().Truncate(time.Second),
		Responses: []ocspSingle{{
			CertID: ocspCertID{
				HashAlgorithm:  pkix.AlgorithmIdentifier{Algorithm: oidHashByAlgo[req.HashAlgorithm], Parameters: asn1.NullRawValue},
				IssuerNameHash: req.IssuerNameHash, IssuerKeyHash: req.IssuerKeyHash, SerialNumber: req.SerialNumber,
			},
			CertStatus: certStatus,
			ThisUpdate: w.ThisUpdate.UTC().Truncate(time.Second),
			NextUpdate: w.NextUpdate.UTC().Truncate(time.Second),
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("encoding the OCSP answer: %w", err)
	}
	signed := tbs
	if hash != 0 {
		h := hash.New()
		h.Write(tbs)
		signed = h.Sum(nil)
	}
	sig, err := by.Key.Sign(rand.Reader, signed, hash)
	if err != nil {
		return nil, fmt.Errorf("signing the OCSP answer: %w", err)
	}
	basic, err := asn1.Marshal(ocspBasic{TBSResponseData: asn1.RawValue{FullBytes: tbs}, SignatureAlgorithm: sigAlg, Signature: asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)}})
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(ocspResponse{Status: asn1.Enumerated(ocsp.Success), Response: ocspResponseBytes{ResponseType: oidOCSPBasic, Response: basic}})
}

// signingAlgorithm is the signature algorithm a CA key signs with (as Go's
// x509 picks it) and its hash (0 for Ed25519).
func signingAlgorithm(pub crypto.PublicKey) (pkix.AlgorithmIdentifier, crypto.Hash, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve.Params().BitSize {
		case 384:
			return pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}}, crypto.SHA384, nil
		case 521:
			return pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}}, crypto.SHA512, nil
		default:
			return pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}}, crypto.SHA256, nil
		}
	case *rsa.PublicKey:
		return pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}, Parameters: asn1.NullRawValue}, crypto.SHA256, nil
	case ed25519.PublicKey:
		return pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 3, 101, 112}}, 0, nil
	}
	return pkix.AlgorithmIdentifier{}, 0, fmt.Errorf("a CA key of type %T cannot sign OCSP answers", pub)
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
	// DeltaCRL goes into complete CRLs (Freshest CRL), not certificates.
	DeltaCRL []string
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
	return URLs{CRL: fill(u.CRL), OCSP: fill(u.OCSP), Issuing: fill(u.Issuing), DeltaCRL: fill(u.DeltaCRL)}
}

// apply puts u into a certificate template.
func (u URLs) apply(tmpl *x509.Certificate) {
	tmpl.CRLDistributionPoints, tmpl.OCSPServer, tmpl.IssuingCertificateURL = u.CRL, u.OCSP, u.Issuing
}
