package issuing

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// The two-tier setup: an intermediate whose key is made on an issuing
// mount and only a CSR leaves it (NewIntermediateCSR), signed on the mount
// that holds the Org CA key (SignIntermediate, under an
// IntermediateProfile), and activated back on the issuing mount once its
// certificate matches the key that waited there (ValidateSignedIntermediate).

// PendingIntermediate is a key made for an intermediate and the CSR that
// asks a root mount to sign it.
type PendingIntermediate struct {
	// KeyPKCS8 is the key when it was made in memory; nil when spec's
	// KeyGen made it elsewhere (an HSM).
	KeyPKCS8 []byte
	CSRDER   []byte
	Public   crypto.PublicKey
}

// NewIntermediateCSR makes an intermediate key of spec's type and a CSR
// for it: CN (spec.CommonName, default "<org_id> Mastio CA"), O=<org_id>,
// asking for basicConstraints CA:true pathLen 0. The root decides what the
// certificate says (root/sign-intermediate takes the subject from its
// profile); the CSR's subject is only a label.
func NewIntermediateCSR(spec IntermediateSpec, orgID string) (*PendingIntermediate, error) {
	if err := CheckName("common_name", spec.CommonName); err != nil {
		return nil, err
	}
	if orgID == "" {
		return nil, Inputf("the mount has no org_id: write config org_id=<org> (the org this intermediate serves) first")
	}
	cn := spec.CommonName
	if cn == "" {
		cn = orgID + " Mastio CA"
		if CheckName("common_name", cn) != nil {
			return nil, Inputf("the default common_name (<org_id> Mastio CA) is %d characters, over X.509's 64: pass common_name", len(cn))
		}
	}
	key, keyDER, err := newKey(spec.NewKey, spec.KeyType, spec.KeyBits)
	if err != nil {
		return nil, err
	}
	subject, err := rawSubject(cn, orgID)
	if err != nil {
		return nil, err
	}
	bc, err := marshalBasicConstraints(0)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		RawSubject:      subject,
		ExtraExtensions: []pkix.Extension{{Id: OIDExtBasicConstraints, Critical: true, Value: bc}},
	}, key)
	if err != nil {
		return nil, fmt.Errorf("making the intermediate CSR: %w", err)
	}
	return &PendingIntermediate{KeyPKCS8: keyDER, CSRDER: der, Public: key.Public()}, nil
}

// EncodeCSRPEM renders a CSR as PEM.
func EncodeCSRPEM(der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// SignedIntermediate is a certificate for a pending key, checked, with the
// Org CA it chains to and the CAs above that (nearest first).
type SignedIntermediate struct {
	CA         *ImportedCA
	OrgCA      *x509.Certificate // nil: the request named none
	OrgCAChain []*x509.Certificate
}

// ValidateSignedIntermediate checks the certificate a root mount signed for
// the pending key, whose public half is pub: certPEM holds it, optionally followed by its
// issuers; chainPEM may hold those issuers instead (the first is the Org
// CA, which must have signed the certificate directly). The certificate
// must be for the pending key, a CA with pathLen 0 and keyCertSign, valid
// now, and fit this mount's trust domain (its URI SAN, if any, is
// spiffe://<trustDomain>; a URI name constraint admits it). When issuers
// are given, the certificate is checked as the intermediate of the first
// (ImportedCA.CheckIntermediateOf), so that every refusal comes before
// anything is stored.
func ValidateSignedIntermediate(pub crypto.PublicKey, certPEM, chainPEM, trustDomain string, now time.Time) (*SignedIntermediate, error) {
	if strings.TrimSpace(certPEM) == "" {
		return nil, Inputf("certificate is required: the PEM certificate root/sign-intermediate returned")
	}
	certs, err := ParseCertificatesPEM("certificate", certPEM)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(chainPEM) != "" {
		if len(certs) > 1 {
			return nil, Inputf("pass the issuers after the certificate or in ca_chain, not both")
		}
		chain, err := ParseCertificatesPEM("ca_chain", chainPEM)
		if err != nil {
			return nil, err
		}
		certs = append(certs, chain...)
	}
	cert, parents := certs[0], certs[1:]
	// A root answer's ca_chain starts with the new certificate itself.
	if len(parents) > 0 && parents[0].Equal(cert) {
		parents = parents[1:]
	}
	if len(parents) > MaxChain {
		return nil, Inputf("the certificate comes with %d issuers; at most %d are accepted", len(parents), MaxChain)
	}
	if !PublicKeysEqual(pub, cert.PublicKey) {
		return nil, Inputf("certificate is not for the pending key: its public key (sha256 %s) is not the one intermediate/generate-csr made (sha256 %s); sign the pending CSR (intermediate/pending)", spkiFingerprint(cert.PublicKey), spkiFingerprint(pub))
	}
	if err := checkCACert("certificate", cert, now); err != nil {
		return nil, err
	}
	if cert.MaxPathLen != 0 {
		return nil, Inputf("certificate allows CAs below it (pathLen %s): an issuing intermediate must have pathLen 0", pathLenString(cert))
	}
	if err := checkTrustDomain(cert, trustDomain); err != nil {
		return nil, err
	}
	if err := checkIssuers("issuer", cert, parents); err != nil {
		return nil, err
	}
	si := &SignedIntermediate{CA: &ImportedCA{Cert: cert, Field: "certificate"}}
	if len(parents) > 0 {
		si.OrgCA, si.OrgCAChain = parents[0], parents[1:]
		if err := checkCACert("the Org CA certificate (ca_chain)", si.OrgCA, now); err != nil {
			return nil, err
		}
		if err := CheckChainValid("the Org CA", si.OrgCA, si.OrgCAChain, now); err != nil {
			return nil, err
		}
		if err := si.CA.CheckIntermediateOf(si.OrgCA, si.OrgCAChain); err != nil {
			return nil, err
		}
	}
	return si, nil
}

// checkTrustDomain refuses an intermediate for another trust domain than
// this mount's: a URI SAN other than spiffe://<td>, or a URI name
// constraint that does not admit td (every leaf would then fail
// verification).
func checkTrustDomain(cert *x509.Certificate, td string) error {
	for _, u := range cert.URIs {
		if u.String() != "spiffe://"+td {
			return Inputf("certificate names %s, but this mount's trust domain is %s: set config trust_domain, or have the root sign for this one", Quote(u.String()), td)
		}
	}
	if len(cert.PermittedURIDomains) > 0 && !slices.ContainsFunc(cert.PermittedURIDomains, func(d string) bool {
		return d == td || strings.HasPrefix(d, ".") && strings.HasSuffix(td, d)
	}) {
		return Inputf("certificate's name constraint permits URIs in %s only, and this mount's trust domain is %s: its leaves would all fail verification", Quote(strings.Join(cert.PermittedURIDomains, ", ")), td)
	}
	if slices.ContainsFunc(cert.ExcludedURIDomains, func(d string) bool { return d == td || strings.HasPrefix(d, ".") && strings.HasSuffix(td, d) }) {
		return Inputf("certificate's name constraint excludes this mount's trust domain %s", td)
	}
	return nil
}

func pathLenString(c *x509.Certificate) string {
	if c.MaxPathLen < 0 {
		return "unlimited"
	}
	return fmt.Sprint(c.MaxPathLen)
}

// IntermediateProfile is how the mount that holds the Org CA key signs
// another CA's CSR (root/sign-intermediate): a SPIRE server's, another
// Vault's, cert-manager's isCA request. Deny by default: the CSR supplies
// only the public key; subject, pathLen, key usage, URI SAN, name
// constraint and validity come from here.
type IntermediateProfile struct {
	// CommonName is the subject CN template ({{org_id}}, {{trust_domain}}).
	CommonName string `json:"common_name"`
	// AllowedCommonNames are the CNs a request may ask for instead (its
	// common_name, else the CSR's): each exact, or a prefix ending in *;
	// {{org_id}} and {{trust_domain}} are filled in.
	AllowedCommonNames []string      `json:"allowed_common_names"`
	TTL                time.Duration `json:"ttl"`
	MaxTTL             time.Duration `json:"max_ttl"`
	// MaxPathLength is the pathLen every signed CA gets (a request may ask
	// for less); it must stay below the Org CA's.
	MaxPathLength int `json:"max_path_length"`
	// AllowDigitalSignature lets a request add digitalSignature to
	// keyCertSign+cRLSign (SPIRE accepts it since v1.7.2).
	AllowDigitalSignature bool `json:"allow_digital_signature"`
	// URINameConstraint adds a critical nameConstraints extension that
	// permits URI SANs in the trust domain only.
	URINameConstraint bool `json:"uri_name_constraint"`
}

// Bounds of an intermediate profile.
const (
	MinSignedCATTL        = time.Hour
	DefaultSignedCATTL    = 365 * 24 * time.Hour
	DefaultSignedCAMaxTTL = DefaultIntermediateTTL
	MaxSignedCAPathLen    = 3
)

// DefaultIntermediateProfile is the profile of a mount that has stored
// none: pathLen 0, keyCertSign+cRLSign, one year (at most five), no name
// constraint; CN "<org_id> Intermediate CA", or "<org_id> Mastio CA" when
// the CSR asks for it (an issuing mount's generate-csr does).
func DefaultIntermediateProfile() *IntermediateProfile {
	return &IntermediateProfile{
		CommonName:         "{{org_id}} Intermediate CA",
		AllowedCommonNames: []string{"{{org_id}} Mastio CA"},
		TTL:                DefaultSignedCATTL,
		MaxTTL:             DefaultSignedCAMaxTTL,
	}
}

// commonName picks the CN of a signed CA: the one asked for (the
// request's common_name, else the CSR's) when AllowedCommonNames admits
// it, else the CommonName template. asked is "" when nothing was asked.
func (p *IntermediateProfile) commonName(vars *strings.Replacer, asked string) (cn string, used bool) {
	if asked != "" {
		for _, a := range p.AllowedCommonNames {
			a = vars.Replace(a)
			if prefix, wild := strings.CutSuffix(a, "*"); asked == a || wild && strings.HasPrefix(asked, prefix) {
				return asked, true
			}
		}
	}
	return vars.Replace(p.CommonName), false
}

// Validate checks a profile before it is stored.
func (p *IntermediateProfile) Validate() error {
	if p.CommonName == "" {
		return Inputf("common_name is required: the CN template of signed CAs, e.g. {{org_id}} Intermediate CA")
	}
	if len(p.AllowedCommonNames) > 32 {
		return Inputf("allowed_common_names holds %d names; at most 32", len(p.AllowedCommonNames))
	}
	for _, t := range append([]string{p.CommonName}, p.AllowedCommonNames...) {
		if err := CheckName("common_name without its placeholders", templateVar.ReplaceAllString(t, "")); err != nil {
			return err
		}
		for _, v := range templateVar.FindAllString(t, -1) {
			if v != "{{org_id}}" && v != "{{trust_domain}}" {
				return Inputf("%s: unknown placeholder %s; use {{org_id}} or {{trust_domain}}", Quote(t), Quote(v))
			}
		}
	}
	if p.TTL < MinSignedCATTL || p.MaxTTL > MaxCATTL || p.TTL > p.MaxTTL {
		return Inputf("ttl (%s) and max_ttl (%s) must satisfy 1h <= ttl <= max_ttl <= 30 years (262800h)", p.TTL, p.MaxTTL)
	}
	if p.MaxPathLength < 0 || p.MaxPathLength > MaxSignedCAPathLen {
		return Inputf("max_path_length %d is out of range 0-%d", p.MaxPathLength, MaxSignedCAPathLen)
	}
	return nil
}

// IntermediateRequest is a root/sign-intermediate request in Vault PKI's
// shape, decoded.
type IntermediateRequest struct {
	CSR        *LeafRequest
	CommonName string
	URISANs    []string
	// AltNames, IPSANs and OtherSANs must be empty: a CA gets no names
	// beyond its trust domain's.
	AltNames, IPSANs, OtherSANs []string
	TTL                         time.Duration // 0: the profile's
	PathLen                     int           // -1: the profile's
	KeyUsage                    []string      // CertSign, CRLSign, DigitalSignature
	// URLs are the Org CA's CRL, OCSP and issuer URLs, filled in.
	URLs URLs
}

// SignedCA is a CA certificate root/sign-intermediate made, and what it
// changed from the request (warnings for the caller).
type SignedCA struct {
	DER      []byte
	Cert     *x509.Certificate
	Warnings []string
}

// SignIntermediate applies profile p to r and has org (the Org CA, whose
// chain upwards is orgChain) sign the CA certificate.
func SignIntermediate(p *IntermediateProfile, r IntermediateRequest, org Parent, orgChain []*x509.Certificate, orgID, trustDomain string, now time.Time) (*SignedCA, error) {
	var warnings []string
	if err := CheckKeyStrength(r.CSR.pub); err != nil {
		return nil, err
	}
	if len(r.AltNames)+len(r.IPSANs)+len(r.OtherSANs) > 0 {
		// cert-manager's isCA request lists the CSR's names here.
		warnings = append(warnings, fmt.Sprintf("alt_names, ip_sans and other_sans are not copied: a signed CA's only name is the URI SAN spiffe://%s", trustDomain))
	}
	tdURI := "spiffe://" + trustDomain
	for _, u := range r.URISANs {
		if u != tdURI {
			return nil, Inputf("uri_sans names %s; a signed CA carries exactly %s, this mount's trust domain", Quote(u), tdURI)
		}
	}
	for _, u := range r.CSR.uris {
		if u.String() != tdURI {
			return nil, Inputf("csr names %s; this mount's trust domain is %s (is the requester configured for another trust domain?)", Quote(u.String()), trustDomain)
		}
	}
	if len(r.CSR.dnsNames)+len(r.CSR.ips)+len(r.CSR.emails) > 0 {
		warnings = append(warnings, "the csr's DNS, IP and email SANs are not copied: a signed CA carries only its trust domain's URI SAN")
	}

	pathLen := p.MaxPathLength
	switch {
	case r.PathLen > p.MaxPathLength:
		return nil, Inputf("max_path_length %d is above this mount's limit %d (root/profile max_path_length)", r.PathLen, p.MaxPathLength)
	case r.PathLen >= 0:
		pathLen = r.PathLen
	}
	if err := CheckChainValid("the Org CA", org.Cert, orgChain, now); err != nil {
		return nil, err
	}
	if err := checkPathLen(append([]*x509.Certificate{org.Cert}, orgChain...), 1+pathLen); err != nil {
		return nil, Statef("the Org CA may not sign a CA with pathLen %d: %v", pathLen, err)
	}

	digitalSignature := false
	for _, ku := range r.KeyUsage {
		switch strings.ToLower(ku) {
		case "certsign", "crlsign":
		case "digitalsignature":
			if !p.AllowDigitalSignature {
				return nil, Inputf("key_usage DigitalSignature is not allowed by this mount's profile (root/profile allow_digital_signature)")
			}
			digitalSignature = true
		default:
			return nil, Inputf("key_usage %s is not a CA key usage; a signed CA gets CertSign and CRLSign, and DigitalSignature when the profile allows it", Quote(ku))
		}
	}

	ttl := r.TTL
	switch {
	case ttl < 0:
		return nil, Inputf("ttl must be positive")
	case ttl == 0:
		ttl = p.TTL
	case ttl > p.MaxTTL:
		warnings = append(warnings, fmt.Sprintf("ttl %s is above the profile's max_ttl %s: the certificate is valid for %s", ttl, p.MaxTTL, p.MaxTTL))
		ttl = p.MaxTTL
	}
	if ttl < MinSignedCATTL {
		return nil, Inputf("ttl %s is under the 1h a signed CA must be valid for", ttl)
	}
	notAfter := now.Add(ttl)
	if end := ChainNotAfter(org.Cert, orgChain); notAfter.After(end) {
		warnings = append(warnings, fmt.Sprintf("the certificate's NotAfter was truncated to the Org CA's (%s)", end.UTC().Format(time.RFC3339)))
		notAfter = end
	}
	if notAfter.Sub(now) < MinSignedCATTL {
		return nil, Statef("the Org CA (or a CA above it) expires at %s, under 1h from now: renew it before signing CAs", notAfter.UTC().Format(time.RFC3339))
	}

	asked := r.CommonName
	if asked == "" {
		asked = r.CSR.commonName
	}
	cn, used := p.commonName(strings.NewReplacer("{{org_id}}", orgID, "{{trust_domain}}", trustDomain), asked)
	if asked != "" && !used && asked != cn {
		warnings = append(warnings, "the common name asked for is not in root/profile allowed_common_names: the certificate's CN comes from root/profile common_name")
	}
	if err := CheckName("the certificate's common name", cn); err != nil {
		return nil, err
	}
	u, err := url.Parse(tdURI)
	if err != nil {
		return nil, Inputf("the trust domain %s does not make a URI", Quote(trustDomain))
	}
	params := CAParams{CommonName: cn, Organization: orgID, NotAfter: notAfter, PathLen: pathLen, Now: now, URIs: []*url.URL{u}, DigitalSignature: digitalSignature, URLs: r.URLs}
	if p.URINameConstraint {
		params.PermittedURIDomains = []string{trustDomain}
	}
	der, err := newCACertificate(params, r.CSR.pub, &org, nil)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing the signed CA: %w", err)
	}
	return &SignedCA{DER: der, Cert: cert, Warnings: warnings}, nil
}

// spkiFingerprint is the hex SHA-256 of a public key's SPKI DER ("" when
// it does not encode).
func spkiFingerprint(pub crypto.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return ""
	}
	return FingerprintSHA256(der)
}

// PublicKeySHA256 is the hex SHA-256 of a public key's SPKI: how an
// operator matches a pending CSR to the certificate signed for it.
func PublicKeySHA256(pub crypto.PublicKey) string { return spkiFingerprint(pub) }

// CSRPublicKey is the public key of a CSR in DER (a pending intermediate's:
// the key that signed it).
func CSRPublicKey(csrDER []byte) (crypto.PublicKey, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("the pending CSR does not parse: %w", err)
	}
	return csr.PublicKey, nil
}

// marshalBasicConstraints is the DER of basicConstraints CA:true with
// pathLen.
func marshalBasicConstraints(pathLen int) ([]byte, error) {
	der, err := asn1.Marshal(struct {
		IsCA       bool
		MaxPathLen int
	}{true, pathLen})
	if err != nil {
		return nil, fmt.Errorf("encoding basicConstraints: %w", err)
	}
	return der, nil
}
