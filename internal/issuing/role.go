package issuing

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"math/big"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

// Role is a signing profile. Everything not allowed here is refused: the
// CSR supplies only a public key and names to be checked; subject, key
// usages and validity come from the role.
type Role struct {
	// Issuer picks the CA that signs: "auto" (the intermediate when one
	// exists, else the Org CA), "org-ca" or "intermediate-ca".
	Issuer string `json:"issuer"`

	AllowedKeyTypes []string `json:"allowed_key_types"` // ec, rsa, ed25519
	AllowedECCurves []string `json:"allowed_ec_curves"` // P-256, P-384, P-521
	RSAMinBits      int      `json:"rsa_min_bits"`
	RSAMaxBits      int      `json:"rsa_max_bits"`

	// URISANPattern is a SPIFFE ID template; see uriPatternHelp.
	URISANPattern string `json:"uri_san_pattern"`
	// URISANCount is the exact number of URI SANs a CSR must carry.
	URISANCount int `json:"uri_san_count"`
	// AllowOutsideOrg lets URISANPattern name IDs outside
	// spiffe://{{trust_domain}}/{{org_id}}/; without it such a pattern is
	// refused (see checkWithinOrg).
	AllowOutsideOrg bool `json:"allow_outside_org,omitempty"`

	// Allow*SANs switch each kind of name on; the names a CSR may carry
	// are then those the allow-list matches (see sanlists.go), and an
	// empty list allows none.
	AllowDNSSANs     bool     `json:"allow_dns_sans"`
	AllowIPSANs      bool     `json:"allow_ip_sans"`
	AllowEmailSANs   bool     `json:"allow_email_sans"`
	AllowedDNSSANs   []string `json:"allowed_dns_sans,omitempty"`
	AllowedIPSANs    []string `json:"allowed_ip_sans,omitempty"`
	AllowedEmailSANs []string `json:"allowed_email_sans,omitempty"`

	// Subject templates; empty means the attribute is left out.
	SubjectCommonName   string `json:"subject_common_name"`
	SubjectOrganization string `json:"subject_organization"`

	KeyUsage    []string `json:"key_usage"`
	ExtKeyUsage []string `json:"ext_key_usage"`

	TTL           time.Duration `json:"ttl"`
	MaxTTL        time.Duration `json:"max_ttl"`
	NotBeforeSkew time.Duration `json:"not_before_skew"`
}

// Names of the two profiles every mount starts with.
const (
	RoleAgent     = "agent"
	RolePrincipal = "principal"
)

// Issuer selectors.
const (
	IssuerAuto         = "auto"
	IssuerOrgCA        = "org-ca"
	IssuerIntermediate = "intermediate-ca"
)

// DefaultRoles are Mastio's two certificate profiles (reference/mastio-facts.md).
func DefaultRoles() map[string]*Role {
	base := func() *Role {
		return &Role{
			Issuer:          IssuerAuto,
			AllowedKeyTypes: []string{KeyTypeEC, KeyTypeRSA},
			AllowedECCurves: []string{"P-256", "P-384", "P-521"},
			RSAMinBits:      MinRSABits,
			RSAMaxBits:      MaxRSABits,
			URISANCount:     1,
			KeyUsage:        []string{"DigitalSignature"},
			ExtKeyUsage:     []string{"ClientAuth"},
			NotBeforeSkew:   5 * time.Minute,
		}
	}
	agent := base()
	agent.URISANPattern = "spiffe://{{trust_domain}}/{{org_id}}/*"
	agent.SubjectCommonName = "{{org_id}}::{{name}}"
	agent.SubjectOrganization = "{{org_id}}"
	agent.TTL = 365 * 24 * time.Hour
	agent.MaxTTL = 365 * 24 * time.Hour

	principal := base()
	principal.URISANPattern = "spiffe://{{trust_domain}}/{{org_id}}/{user|agent|workload}/*"
	principal.TTL = time.Hour
	principal.MaxTTL = time.Hour

	return map[string]*Role{RoleAgent: agent, RolePrincipal: principal}
}

// NewRole is the starting point of a role created through roles/<name>:
// the key rules of the defaults, nothing else allowed.
func NewRole() *Role {
	r := DefaultRoles()[RoleAgent]
	r.URISANPattern = ""
	r.SubjectCommonName = ""
	r.SubjectOrganization = ""
	r.TTL = time.Hour
	r.MaxTTL = time.Hour
	return r
}

var keyUsageNames = map[string]x509.KeyUsage{
	"digitalsignature":  x509.KeyUsageDigitalSignature,
	"contentcommitment": x509.KeyUsageContentCommitment,
	"keyencipherment":   x509.KeyUsageKeyEncipherment,
	"dataencipherment":  x509.KeyUsageDataEncipherment,
	"keyagreement":      x509.KeyUsageKeyAgreement,
}

var extKeyUsageNames = map[string]x509.ExtKeyUsage{
	"serverauth":      x509.ExtKeyUsageServerAuth,
	"clientauth":      x509.ExtKeyUsageClientAuth,
	"codesigning":     x509.ExtKeyUsageCodeSigning,
	"emailprotection": x509.ExtKeyUsageEmailProtection,
	"timestamping":    x509.ExtKeyUsageTimeStamping,
}

// ExtKeyUsageOIDs maps the usages above to their OIDs, to check requests.
var ExtKeyUsageOIDs = map[x509.ExtKeyUsage]asn1.ObjectIdentifier{
	x509.ExtKeyUsageServerAuth:      {1, 3, 6, 1, 5, 5, 7, 3, 1},
	x509.ExtKeyUsageClientAuth:      {1, 3, 6, 1, 5, 5, 7, 3, 2},
	x509.ExtKeyUsageCodeSigning:     {1, 3, 6, 1, 5, 5, 7, 3, 3},
	x509.ExtKeyUsageEmailProtection: {1, 3, 6, 1, 5, 5, 7, 3, 4},
	x509.ExtKeyUsageTimeStamping:    {1, 3, 6, 1, 5, 5, 7, 3, 8},
}

var curveBits = map[string]int{"P-256": 256, "P-384": 384, "P-521": 521}

// templateVar matches {{placeholder}} in role templates.
var templateVar = regexp.MustCompile(`\{\{[^}]*\}\}`)

// Validate checks a role as a whole before it is stored.
func (r *Role) Validate() error {
	if r.Issuer != IssuerAuto && r.Issuer != IssuerOrgCA && r.Issuer != IssuerIntermediate {
		return Inputf("issuer %s is not valid; use auto, org-ca or intermediate-ca", Quote(r.Issuer))
	}
	if len(r.AllowedKeyTypes) == 0 {
		return Inputf("allowed_key_types must name at least one of ec, rsa, ed25519")
	}
	for _, t := range r.AllowedKeyTypes {
		if t != KeyTypeEC && t != KeyTypeRSA && t != KeyTypeEd25519 {
			return Inputf("allowed_key_types: unknown key type %s; use ec, rsa or ed25519", Quote(t))
		}
	}
	if slices.Contains(r.AllowedKeyTypes, KeyTypeEC) && len(r.AllowedECCurves) == 0 {
		return Inputf("allowed_ec_curves must name at least one of P-256, P-384, P-521 when ec keys are allowed")
	}
	for _, c := range r.AllowedECCurves {
		if _, ok := curveBits[c]; !ok {
			return Inputf("allowed_ec_curves: unknown curve %s; use P-256, P-384 or P-521", Quote(c))
		}
	}
	if r.RSAMinBits < MinRSABits || r.RSAMaxBits > MaxRSABits || r.RSAMinBits > r.RSAMaxBits {
		return Inputf("rsa_min_bits (%d) and rsa_max_bits (%d) must satisfy %d <= min <= max <= %d", r.RSAMinBits, r.RSAMaxBits, MinRSABits, MaxRSABits)
	}
	if r.URISANCount < 0 || r.URISANCount > 8 {
		return Inputf("uri_san_count %d is out of range 0-8", r.URISANCount)
	}
	if r.URISANCount > 0 {
		if r.URISANPattern == "" {
			return Inputf("uri_san_pattern is required when uri_san_count is above 0, e.g. spiffe://{{trust_domain}}/{{org_id}}/*")
		}
	}
	if r.URISANPattern != "" {
		if _, err := CompileURIPattern(r.URISANPattern, "example.org", "org"); err != nil {
			return err
		}
		if !r.AllowOutsideOrg && !patternWithinOrg(r.URISANPattern) {
			return Inputf("uri_san_pattern %s may name IDs outside this org: it must start with %s (or be %s) so that every ID stays in the org's namespace; set allow_outside_org=true to issue outside it on purpose", Quote(r.URISANPattern), orgPrefix+"/", orgPrefix)
		}
	}
	if err := r.checkSANLists(); err != nil {
		return err
	}
	for field, tmpl := range map[string]string{"subject_common_name": r.SubjectCommonName, "subject_organization": r.SubjectOrganization} {
		// A template's literal text is a lower bound on every value it
		// makes; the placeholders' values are checked when signing.
		if err := CheckName(field+" without its placeholders", templateVar.ReplaceAllString(tmpl, "")); err != nil {
			return err
		}
		for _, v := range templateVar.FindAllString(tmpl, -1) {
			switch v {
			case "{{org_id}}", "{{trust_domain}}":
			case "{{first_san}}":
				if !r.AllowDNSSANs && !r.AllowIPSANs {
					return Inputf("%s uses {{first_san}}, which needs allow_dns_sans or allow_ip_sans", field)
				}
			case "{{name}}":
				if !strings.Contains(r.URISANPattern, "*") {
					return Inputf("%s uses {{name}}, which needs a * segment in uri_san_pattern", field)
				}
			default:
				if len(v) > maxQuoted {
					v = Quote(v)
				}
				return Inputf("%s: unknown placeholder %s; use {{org_id}}, {{trust_domain}}, {{name}} or {{first_san}}", field, v)
			}
		}
	}
	if r.SubjectCommonName == "" && r.SubjectOrganization == "" && r.URISANCount == 0 && !r.AllowDNSSANs && !r.AllowIPSANs && !r.AllowEmailSANs {
		return Inputf("this role would issue certificates that name nobody: set a subject template or allow at least one SAN")
	}
	if _, err := r.keyUsage(); err != nil {
		return err
	}
	if _, err := r.extKeyUsage(); err != nil {
		return err
	}
	if r.TTL <= 0 {
		return Inputf("ttl must be positive")
	}
	if r.MaxTTL < r.TTL {
		return Inputf("ttl (%s) must not exceed max_ttl (%s)", r.TTL, r.MaxTTL)
	}
	if r.NotBeforeSkew < 0 || r.NotBeforeSkew > time.Hour {
		return Inputf("not_before_skew must be between 0 and 1h")
	}
	return nil
}

func (r *Role) keyUsage() (x509.KeyUsage, error) {
	var ku x509.KeyUsage
	for _, n := range r.KeyUsage {
		v, ok := keyUsageNames[strings.ToLower(n)]
		if !ok {
			return 0, Inputf("key_usage: %s is not allowed for leaf certificates; use %s", Quote(n), strings.Join(sortedKeys(keyUsageNames), ", "))
		}
		ku |= v
	}
	return ku, nil
}

func (r *Role) extKeyUsage() ([]x509.ExtKeyUsage, error) {
	var out []x509.ExtKeyUsage
	for _, n := range r.ExtKeyUsage {
		v, ok := extKeyUsageNames[strings.ToLower(n)]
		if !ok {
			return nil, Inputf("ext_key_usage: unknown usage %s; use %s", Quote(n), strings.Join(sortedKeys(extKeyUsageNames), ", "))
		}
		out = append(out, v)
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// MinLeafLifetime is the shortest validity a leaf may get after being
// capped at its issuer's NotAfter: anything less is useless to its holder.
const MinLeafLifetime = time.Minute

// IssueParams is the context a role is applied in.
type IssueParams struct {
	TrustDomain string
	OrgID       string
	TTL         time.Duration // requested; 0 means the role's ttl
	Now         time.Time
	Issuer      *x509.Certificate
	// Chain is the CAs above Issuer, nearest first; each bounds the leaf.
	Chain        []*x509.Certificate
	TruncateLeaf bool // cap notAfter at the chain's instead of refusing
	// Pattern is the role's uri_san_pattern compiled for this mount; nil
	// compiles it here.
	Pattern *URIPattern
	// URLs are the CRL, OCSP and issuer URLs the leaf carries, filled in
	// for Issuer.
	URLs URLs
}

// LeafTemplate applies the role to a CSR. It returns the certificate
// template to sign and the SPIFFE ID it carries, or a refusal that says
// which rule the CSR broke.
func (r *Role) LeafTemplate(req *LeafRequest, p IssueParams) (*x509.Certificate, string, error) {
	if err := r.checkKey(req.pub); err != nil {
		return nil, "", err
	}
	if req.wantsCA {
		return nil, "", Inputf("csr requests basicConstraints CA:true; this engine signs only leaf certificates (CA:false)")
	}
	if req.keyUsage&(x509.KeyUsageCertSign|x509.KeyUsageCRLSign) != 0 {
		return nil, "", Inputf("csr requests keyUsage keyCertSign or cRLSign; this engine signs only leaf certificates")
	}
	ku, err := r.keyUsage()
	if err != nil {
		return nil, "", err
	}
	if extra := req.keyUsage &^ ku; extra != 0 {
		return nil, "", Inputf("csr requests key usages outside the role's key_usage %v", r.KeyUsage)
	}
	eku, err := r.extKeyUsage()
	if err != nil {
		return nil, "", err
	}
	for _, oid := range req.extKeyUsage {
		if !slices.ContainsFunc(eku, func(e x509.ExtKeyUsage) bool { return ExtKeyUsageOIDs[e].Equal(oid) }) {
			return nil, "", Inputf("csr requests extended key usage %s outside the role's ext_key_usage %v", oid, r.ExtKeyUsage)
		}
	}

	if len(req.dnsNames) > 0 && !r.AllowDNSSANs {
		return nil, "", Inputf("csr requests DNS SANs %q; this role allows none", req.dnsNames)
	}
	if len(req.ips) > 0 && !r.AllowIPSANs {
		return nil, "", Inputf("csr requests IP address SANs %v; this role allows none", req.ips)
	}
	if len(req.emails) > 0 && !r.AllowEmailSANs {
		return nil, "", Inputf("csr requests email SANs %q; this role allows none", req.emails)
	}
	if err := r.checkSANs(req, p); err != nil {
		return nil, "", err
	}
	if len(req.uris) != r.URISANCount {
		return nil, "", Inputf("csr carries %d URI SANs; this role requires exactly %d", len(req.uris), r.URISANCount)
	}
	var name, spiffeID string
	if len(req.uris) > 0 {
		pat := p.Pattern
		if pat == nil {
			if pat, err = CompileURIPattern(r.URISANPattern, p.TrustDomain, p.OrgID); err != nil {
				return nil, "", err
			}
		}
		if !r.AllowOutsideOrg && !patternWithinOrg(r.URISANPattern) {
			return nil, "", Statef("the role's uri_san_pattern %s may name IDs outside this org; rewrite the role to start with %s/, or set allow_outside_org=true", r.URISANPattern, orgPrefix)
		}
		for _, u := range req.uris {
			if name, err = pat.Match(u); err != nil {
				return nil, "", err
			}
		}
		spiffeID = req.uris[0].String()
	}

	ttl := p.TTL
	switch {
	case ttl < 0:
		return nil, "", Inputf("ttl must be positive")
	case ttl == 0:
		ttl = r.TTL
	case ttl > r.MaxTTL:
		return nil, "", Inputf("ttl %s exceeds the role's max_ttl %s", ttl, r.MaxTTL)
	case ttl < MinLeafLifetime:
		return nil, "", Inputf("ttl %s is under the %s a certificate must be valid for", ttl, MinLeafLifetime)
	}
	// Every CA in the chain bounds the leaf, not only its issuer: an
	// intermediate may outlive the Org CA above it.
	if err := CheckChainValid("the issuing CA", p.Issuer, p.Chain, p.Now); err != nil {
		return nil, "", err
	}
	caEnd := ChainNotAfter(p.Issuer, p.Chain)
	notBefore := p.Now.Add(-r.NotBeforeSkew)
	if notBefore.Before(p.Issuer.NotBefore) {
		notBefore = p.Issuer.NotBefore
	}
	notAfter := p.Now.Add(ttl)
	if notAfter.After(caEnd) {
		if !p.TruncateLeaf {
			return nil, "", Inputf("the certificate would outlive its issuer (it, or a CA above it, expires %s); ask for a shorter ttl or set config leaf_not_after=truncate", caEnd.UTC().Format(time.RFC3339))
		}
		notAfter = caEnd
	}
	if notAfter.Sub(p.Now) < MinLeafLifetime {
		return nil, "", Statef("the CA chain expires at %s, less than %s from now: renew the CA before signing", caEnd.UTC().Format(time.RFC3339), MinLeafLifetime)
	}

	vars, err := r.templateVars(req, p, name)
	if err != nil {
		return nil, "", err
	}
	cn, o := vars.Replace(r.SubjectCommonName), vars.Replace(r.SubjectOrganization)
	if err := CheckName("the certificate's common name (from subject_common_name)", cn); err != nil {
		return nil, "", err
	}
	if err := CheckName("the certificate's organization (from subject_organization)", o); err != nil {
		return nil, "", err
	}
	if req.requiredCN != "" && cn != req.requiredCN {
		made := "none"
		if cn != "" {
			made = Quote(cn)
		}
		return nil, "", Inputf("common_name %s is not what this role puts in the subject (its subject_common_name makes %s): drop common_name from the request, or sign under a role whose subject names it", Quote(req.requiredCN), made)
	}
	subject, err := rawSubject(cn, o)
	if err != nil {
		return nil, "", err
	}

	serial, err := randomSerial()
	if err != nil {
		return nil, "", err
	}
	ski, err := subjectKeyID(req.pub)
	if err != nil {
		return nil, "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		RawSubject:            subject,
		NotBefore:             notBefore.UTC(),
		NotAfter:              notAfter.UTC(),
		BasicConstraintsValid: true,
		IsCA:                  false,
		KeyUsage:              ku,
		ExtKeyUsage:           eku,
		SubjectKeyId:          ski,
		AuthorityKeyId:        p.Issuer.SubjectKeyId,
		URIs:                  req.uris,
	}
	p.URLs.apply(tmpl)
	if r.AllowDNSSANs {
		tmpl.DNSNames = req.dnsNames
	}
	if r.AllowIPSANs {
		tmpl.IPAddresses = req.ips
	}
	if r.AllowEmailSANs {
		tmpl.EmailAddresses = req.emails
	}
	return tmpl, spiffeID, nil
}

// templateVars are the values of the subject templates' placeholders for
// one request: name is the value of the pattern's last "*"; {{first_san}}
// is the request's first DNS name, else its first IP address.
func (r *Role) templateVars(req *LeafRequest, p IssueParams, name string) (*strings.Replacer, error) {
	firstSAN := ""
	switch {
	case len(req.dnsNames) > 0:
		firstSAN = req.dnsNames[0]
	case len(req.ips) > 0:
		firstSAN = req.ips[0].String()
	}
	if firstSAN == "" && (strings.Contains(r.SubjectCommonName, "{{first_san}}") || strings.Contains(r.SubjectOrganization, "{{first_san}}")) {
		return nil, Inputf("the role's subject uses {{first_san}}, and the csr carries no DNS or IP SAN")
	}
	return strings.NewReplacer("{{org_id}}", p.OrgID, "{{trust_domain}}", p.TrustDomain, "{{name}}", name, "{{first_san}}", firstSAN), nil
}

// checkKey applies the role's key rules to the CSR's public key.
func (r *Role) checkKey(pub crypto.PublicKey) error {
	typ, bits, err := KeyInfo(pub)
	if err != nil {
		return err
	}
	if !slices.Contains(r.AllowedKeyTypes, typ) {
		return Inputf("csr key type %s is not allowed by this role; allowed: %s", typ, strings.Join(r.AllowedKeyTypes, ", "))
	}
	switch typ {
	case KeyTypeEC:
		if !slices.ContainsFunc(r.AllowedECCurves, func(c string) bool { return curveBits[c] == bits }) {
			return Inputf("csr EC key on a %d-bit curve is not allowed by this role; allowed curves: %s", bits, strings.Join(r.AllowedECCurves, ", "))
		}
	case KeyTypeRSA:
		if bits < r.RSAMinBits || bits > r.RSAMaxBits {
			return Inputf("csr RSA key of %d bits is not allowed by this role; allowed: %d-%d bits", bits, r.RSAMinBits, r.RSAMaxBits)
		}
		return checkRSAShape(pub.(*rsa.PublicKey))
	}
	return nil
}

// Leaf is a signed leaf certificate.
type Leaf struct {
	DER      []byte
	Serial   *big.Int
	NotAfter time.Time
	SPIFFEID string
}

// Sign applies the role to req and has signer, the key of p.Issuer, sign
// the certificate.
func (r *Role) Sign(req *LeafRequest, p IssueParams, signer crypto.Signer) (*Leaf, error) {
	tmpl, spiffeID, err := r.LeafTemplate(req, p)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.Issuer, req.pub, signer)
	if err != nil {
		return nil, fmt.Errorf("signing certificate: %w", err)
	}
	return &Leaf{DER: der, Serial: tmpl.SerialNumber, NotAfter: tmpl.NotAfter, SPIFFEID: spiffeID}, nil
}

// orgPrefix is how a uri_san_pattern that stays inside the org begins.
const orgPrefix = "spiffe://{{trust_domain}}/{{org_id}}"

// patternWithinOrg reports whether every ID the pattern can match is in
// this mount's trust domain and under its org_id segment.
func patternWithinOrg(pattern string) bool {
	return pattern == orgPrefix || strings.HasPrefix(pattern, orgPrefix+"/")
}
