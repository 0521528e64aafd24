package backend

import (
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// role is a signing profile. Everything not allowed here is refused: the
// CSR supplies only a public key and names to be checked; subject, key
// usages and validity come from the role.
type role struct {
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

	AllowDNSSANs   bool `json:"allow_dns_sans"`
	AllowIPSANs    bool `json:"allow_ip_sans"`
	AllowEmailSANs bool `json:"allow_email_sans"`

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
	roleAgent     = "agent"
	rolePrincipal = "principal"
)

// Issuer selectors.
const (
	issuerAuto         = "auto"
	issuerOrgCA        = string(orgCA)
	issuerIntermediate = string(intermediateCA)
)

// defaultRoles are Mastio's two certificate profiles (reference/mastio-facts.md).
func defaultRoles() map[string]*role {
	base := func() *role {
		return &role{
			Issuer:          issuerAuto,
			AllowedKeyTypes: []string{keyTypeEC, keyTypeRSA},
			AllowedECCurves: []string{"P-256", "P-384", "P-521"},
			RSAMinBits:      minRSABits,
			RSAMaxBits:      maxRSABits,
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

	return map[string]*role{roleAgent: agent, rolePrincipal: principal}
}

// newRole is the starting point of a role created through roles/<name>:
// the key rules of the defaults, nothing else allowed.
func newRole() *role {
	r := defaultRoles()[roleAgent]
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

// extKeyUsageOIDs maps the usages above to their OIDs, to check requests.
var extKeyUsageOIDs = map[x509.ExtKeyUsage]asn1.ObjectIdentifier{
	x509.ExtKeyUsageServerAuth:      {1, 3, 6, 1, 5, 5, 7, 3, 1},
	x509.ExtKeyUsageClientAuth:      {1, 3, 6, 1, 5, 5, 7, 3, 2},
	x509.ExtKeyUsageCodeSigning:     {1, 3, 6, 1, 5, 5, 7, 3, 3},
	x509.ExtKeyUsageEmailProtection: {1, 3, 6, 1, 5, 5, 7, 3, 4},
	x509.ExtKeyUsageTimeStamping:    {1, 3, 6, 1, 5, 5, 7, 3, 8},
}

var curveBits = map[string]int{"P-256": 256, "P-384": 384, "P-521": 521}

// templateVar matches {{placeholder}} in role templates.
var templateVar = regexp.MustCompile(`\{\{[^}]*\}\}`)

// validate checks a role as a whole before it is stored.
func (r *role) validate() error {
	if r.Issuer != issuerAuto && r.Issuer != issuerOrgCA && r.Issuer != issuerIntermediate {
		return inputErrorf("issuer %q is not valid; use auto, org-ca or intermediate-ca", r.Issuer)
	}
	if len(r.AllowedKeyTypes) == 0 {
		return inputErrorf("allowed_key_types must name at least one of ec, rsa, ed25519")
	}
	for _, t := range r.AllowedKeyTypes {
		if t != keyTypeEC && t != keyTypeRSA && t != keyTypeEd25519 {
			return inputErrorf("allowed_key_types: unknown key type %q; use ec, rsa or ed25519", t)
		}
	}
	if slices.Contains(r.AllowedKeyTypes, keyTypeEC) && len(r.AllowedECCurves) == 0 {
		return inputErrorf("allowed_ec_curves must name at least one of P-256, P-384, P-521 when ec keys are allowed")
	}
	for _, c := range r.AllowedECCurves {
		if _, ok := curveBits[c]; !ok {
			return inputErrorf("allowed_ec_curves: unknown curve %q; use P-256, P-384 or P-521", c)
		}
	}
	if r.RSAMinBits < minRSABits || r.RSAMaxBits > maxRSABits || r.RSAMinBits > r.RSAMaxBits {
		return inputErrorf("rsa_min_bits (%d) and rsa_max_bits (%d) must satisfy %d <= min <= max <= %d", r.RSAMinBits, r.RSAMaxBits, minRSABits, maxRSABits)
	}
	if r.URISANCount < 0 || r.URISANCount > 8 {
		return inputErrorf("uri_san_count %d is out of range 0-8", r.URISANCount)
	}
	if r.URISANCount > 0 {
		if r.URISANPattern == "" {
			return inputErrorf("uri_san_pattern is required when uri_san_count is above 0, e.g. spiffe://{{trust_domain}}/{{org_id}}/*")
		}
	}
	if r.URISANPattern != "" {
		if _, err := compileURIPattern(r.URISANPattern, "example.org", "org"); err != nil {
			return err
		}
	}
	for field, tmpl := range map[string]string{"subject_common_name": r.SubjectCommonName, "subject_organization": r.SubjectOrganization} {
		for _, v := range templateVar.FindAllString(tmpl, -1) {
			switch v {
			case "{{org_id}}", "{{trust_domain}}":
			case "{{name}}":
				if !strings.Contains(r.URISANPattern, "*") {
					return inputErrorf("%s uses {{name}}, which needs a * segment in uri_san_pattern", field)
				}
			default:
				return inputErrorf("%s: unknown placeholder %s; use {{org_id}}, {{trust_domain}} or {{name}}", field, v)
			}
		}
	}
	if r.SubjectCommonName == "" && r.SubjectOrganization == "" && r.URISANCount == 0 && !r.AllowDNSSANs && !r.AllowIPSANs && !r.AllowEmailSANs {
		return inputErrorf("this role would issue certificates that name nobody: set a subject template or allow at least one SAN")
	}
	if _, err := r.keyUsage(); err != nil {
		return err
	}
	if _, err := r.extKeyUsage(); err != nil {
		return err
	}
	if r.TTL <= 0 {
		return inputErrorf("ttl must be positive")
	}
	if r.MaxTTL < r.TTL {
		return inputErrorf("ttl (%s) must not exceed max_ttl (%s)", r.TTL, r.MaxTTL)
	}
	if r.NotBeforeSkew < 0 || r.NotBeforeSkew > time.Hour {
		return inputErrorf("not_before_skew must be between 0 and 1h")
	}
	return nil
}

func (r *role) keyUsage() (x509.KeyUsage, error) {
	var ku x509.KeyUsage
	for _, n := range r.KeyUsage {
		v, ok := keyUsageNames[strings.ToLower(n)]
		if !ok {
			return 0, inputErrorf("key_usage: %q is not allowed for leaf certificates; use %s", n, strings.Join(sortedKeys(keyUsageNames), ", "))
		}
		ku |= v
	}
	return ku, nil
}

func (r *role) extKeyUsage() ([]x509.ExtKeyUsage, error) {
	var out []x509.ExtKeyUsage
	for _, n := range r.ExtKeyUsage {
		v, ok := extKeyUsageNames[strings.ToLower(n)]
		if !ok {
			return nil, inputErrorf("ext_key_usage: unknown usage %q; use %s", n, strings.Join(sortedKeys(extKeyUsageNames), ", "))
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

// uriPattern is a compiled uri_san_pattern.
type uriPattern struct {
	trustDomain spiffeid.TrustDomain
	segments    []patternSegment
}

type patternSegment struct {
	any     bool     // "*": one segment of SPIFFE path characters
	options []string // literal, or the alternatives of {a|b|c}
}

// compileURIPattern substitutes {{trust_domain}} and {{org_id}} and parses
// the pattern: spiffe://<trust domain>/<segment>/..., where a segment is a
// literal, "*" (any one segment) or "{a|b|c}" (one of the literals).
func compileURIPattern(pattern, trustDomain, orgID string) (*uriPattern, error) {
	s := strings.NewReplacer("{{trust_domain}}", trustDomain, "{{org_id}}", orgID).Replace(pattern)
	if v := templateVar.FindString(s); v != "" {
		return nil, inputErrorf("uri_san_pattern: unknown placeholder %s; use {{trust_domain}} or {{org_id}}", v)
	}
	rest, ok := strings.CutPrefix(s, "spiffe://")
	if !ok {
		return nil, inputErrorf("uri_san_pattern %q must start with spiffe://", pattern)
	}
	parts := strings.Split(rest, "/")
	td, err := spiffeid.TrustDomainFromString(parts[0])
	if err != nil {
		return nil, inputErrorf("uri_san_pattern %q: trust domain is not valid: %v", pattern, err)
	}
	if len(parts) < 2 {
		return nil, inputErrorf("uri_san_pattern %q must have at least one path segment", pattern)
	}
	p := &uriPattern{trustDomain: td}
	for _, seg := range parts[1:] {
		switch {
		case seg == "*":
			p.segments = append(p.segments, patternSegment{any: true})
		case strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}"):
			opts := strings.Split(seg[1:len(seg)-1], "|")
			for _, o := range opts {
				if err := spiffeid.ValidatePathSegment(o); err != nil {
					return nil, inputErrorf("uri_san_pattern %q: alternative %q is not a valid path segment: %v", pattern, o, err)
				}
			}
			p.segments = append(p.segments, patternSegment{options: opts})
		default:
			if err := spiffeid.ValidatePathSegment(seg); err != nil {
				return nil, inputErrorf("uri_san_pattern %q: segment %q is not valid (a literal, * or {a|b}): %v", pattern, seg, err)
			}
			p.segments = append(p.segments, patternSegment{options: []string{seg}})
		}
	}
	return p, nil
}

// match checks u against the pattern and returns the value of the last "*"
// segment ("" when the pattern has none).
func (p *uriPattern) match(u *url.URL) (string, error) {
	id, err := spiffeid.FromURI(u)
	if err != nil {
		return "", inputErrorf("URI SAN %q is not a valid SPIFFE ID: %v", u.String(), err)
	}
	if id.Path() == "" {
		return "", inputErrorf("URI SAN %q names a trust domain, not a workload: a path is required", u.String())
	}
	if id.TrustDomain() != p.trustDomain {
		return "", inputErrorf("URI SAN %q is in trust domain %q; this role allows only %q", u.String(), id.TrustDomain().Name(), p.trustDomain.Name())
	}
	segs := strings.Split(strings.TrimPrefix(id.Path(), "/"), "/")
	if len(segs) != len(p.segments) {
		return "", inputErrorf("URI SAN %q does not match the role's pattern %s", u.String(), p)
	}
	name := ""
	for i, ps := range p.segments {
		switch {
		case ps.any:
			name = segs[i]
		case !slices.Contains(ps.options, segs[i]):
			return "", inputErrorf("URI SAN %q does not match the role's pattern %s", u.String(), p)
		}
	}
	return name, nil
}

// expand builds the SPIFFE ID whose single "*" segment is name. Patterns
// with alternatives or several "*" segments cannot be expanded from a name.
func (p *uriPattern) expand(name string) (*url.URL, error) {
	if err := spiffeid.ValidatePathSegment(name); err != nil {
		return nil, inputErrorf("name %q is not a valid SPIFFE path segment: %v", name, err)
	}
	segs := make([]string, 0, len(p.segments))
	stars := 0
	for _, s := range p.segments {
		switch {
		case s.any:
			stars++
			segs = append(segs, name)
		case len(s.options) == 1:
			segs = append(segs, s.options[0])
		default:
			return nil, inputErrorf("the role's pattern %s has alternatives: pass spiffe_id instead of name", p)
		}
	}
	if stars != 1 {
		return nil, inputErrorf("the role's pattern %s does not have exactly one * segment: pass spiffe_id instead of name", p)
	}
	id, err := spiffeid.FromSegments(p.trustDomain, segs...)
	if err != nil {
		return nil, inputErrorf("name %q makes no valid SPIFFE ID: %v", name, err)
	}
	return id.URL(), nil
}

func (p *uriPattern) String() string {
	var sb strings.Builder
	sb.WriteString(p.trustDomain.IDString())
	for _, s := range p.segments {
		sb.WriteByte('/')
		switch {
		case s.any:
			sb.WriteByte('*')
		case len(s.options) == 1:
			sb.WriteString(s.options[0])
		default:
			sb.WriteString("{" + strings.Join(s.options, "|") + "}")
		}
	}
	return sb.String()
}

// minLeafLifetime is the shortest validity a leaf may get after being
// capped at its issuer's NotAfter: anything less is useless to its holder.
const minLeafLifetime = time.Minute

// issueParams is the context a role is applied in.
type issueParams struct {
	TrustDomain  string
	OrgID        string
	TTL          time.Duration // requested; 0 means the role's ttl
	Now          time.Time
	Issuer       *x509.Certificate
	TruncateLeaf bool // cap notAfter at the issuer's instead of refusing
	// Pattern is the role's uri_san_pattern compiled for this mount; nil
	// compiles it here.
	Pattern *uriPattern
}

// leafTemplate applies the role to a CSR. It returns the certificate
// template to sign and the SPIFFE ID it carries, or an inputError that says
// which rule the CSR broke.
func (r *role) leafTemplate(req *csrRequest, p issueParams) (*x509.Certificate, string, error) {
	if err := r.checkKey(req.csr); err != nil {
		return nil, "", err
	}
	if req.wantsCA {
		return nil, "", inputErrorf("csr requests basicConstraints CA:true; this engine signs only leaf certificates (CA:false)")
	}
	if req.keyUsage&(x509.KeyUsageCertSign|x509.KeyUsageCRLSign) != 0 {
		return nil, "", inputErrorf("csr requests keyUsage keyCertSign or cRLSign; this engine signs only leaf certificates")
	}
	ku, err := r.keyUsage()
	if err != nil {
		return nil, "", err
	}
	if extra := req.keyUsage &^ ku; extra != 0 {
		return nil, "", inputErrorf("csr requests key usages outside the role's key_usage %v", r.KeyUsage)
	}
	eku, err := r.extKeyUsage()
	if err != nil {
		return nil, "", err
	}
	for _, oid := range req.extKeyUsage {
		if !slices.ContainsFunc(eku, func(e x509.ExtKeyUsage) bool { return extKeyUsageOIDs[e].Equal(oid) }) {
			return nil, "", inputErrorf("csr requests extended key usage %s outside the role's ext_key_usage %v", oid, r.ExtKeyUsage)
		}
	}

	if len(req.dnsNames) > 0 && !r.AllowDNSSANs {
		return nil, "", inputErrorf("csr requests DNS SANs %q; this role allows none", req.dnsNames)
	}
	if len(req.ips) > 0 && !r.AllowIPSANs {
		return nil, "", inputErrorf("csr requests IP address SANs %v; this role allows none", req.ips)
	}
	if len(req.emails) > 0 && !r.AllowEmailSANs {
		return nil, "", inputErrorf("csr requests email SANs %q; this role allows none", req.emails)
	}
	if len(req.uris) != r.URISANCount {
		return nil, "", inputErrorf("csr carries %d URI SANs; this role requires exactly %d", len(req.uris), r.URISANCount)
	}
	var name, spiffeID string
	if len(req.uris) > 0 {
		pat := p.Pattern
		if pat == nil {
			if pat, err = compileURIPattern(r.URISANPattern, p.TrustDomain, p.OrgID); err != nil {
				return nil, "", err
			}
		}
		for _, u := range req.uris {
			if name, err = pat.match(u); err != nil {
				return nil, "", err
			}
		}
		spiffeID = req.uris[0].String()
	}

	ttl := p.TTL
	switch {
	case ttl < 0:
		return nil, "", inputErrorf("ttl must be positive")
	case ttl == 0:
		ttl = r.TTL
	case ttl > r.MaxTTL:
		return nil, "", inputErrorf("ttl %s exceeds the role's max_ttl %s", ttl, r.MaxTTL)
	}
	if !p.Now.Before(p.Issuer.NotAfter) {
		return nil, "", inputErrorf("the issuing CA expired at %s; it signs nothing more: generate or import a new one (with cas)", p.Issuer.NotAfter.UTC().Format(time.RFC3339))
	}
	notBefore := p.Now.Add(-r.NotBeforeSkew)
	if notBefore.Before(p.Issuer.NotBefore) {
		notBefore = p.Issuer.NotBefore
	}
	notAfter := p.Now.Add(ttl)
	if notAfter.After(p.Issuer.NotAfter) {
		if !p.TruncateLeaf {
			return nil, "", inputErrorf("the certificate would outlive its issuer (issuer expires %s); ask for a shorter ttl or set config leaf_not_after=truncate", p.Issuer.NotAfter.UTC().Format(time.RFC3339))
		}
		notAfter = p.Issuer.NotAfter
	}
	if notAfter.Sub(p.Now) < minLeafLifetime {
		return nil, "", inputErrorf("the issuing CA expires at %s, less than %s from now: renew the CA before signing", p.Issuer.NotAfter.UTC().Format(time.RFC3339), minLeafLifetime)
	}

	vars := strings.NewReplacer("{{org_id}}", p.OrgID, "{{trust_domain}}", p.TrustDomain, "{{name}}", name)
	var subject pkix.Name
	if r.SubjectCommonName != "" {
		subject.CommonName = vars.Replace(r.SubjectCommonName)
	}
	if r.SubjectOrganization != "" {
		subject.Organization = []string{vars.Replace(r.SubjectOrganization)}
	}

	serial, err := randomSerial()
	if err != nil {
		return nil, "", err
	}
	ski, err := subjectKeyID(req.csr.PublicKey)
	if err != nil {
		return nil, "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subject,
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

// checkKey applies the role's key rules to the CSR's public key.
func (r *role) checkKey(csr *x509.CertificateRequest) error {
	typ, bits, err := keyInfo(csr.PublicKey)
	if err != nil {
		return err
	}
	if !slices.Contains(r.AllowedKeyTypes, typ) {
		return inputErrorf("csr key type %s is not allowed by this role; allowed: %s", typ, strings.Join(r.AllowedKeyTypes, ", "))
	}
	switch typ {
	case keyTypeEC:
		if !slices.ContainsFunc(r.AllowedECCurves, func(c string) bool { return curveBits[c] == bits }) {
			return inputErrorf("csr EC key on a %d-bit curve is not allowed by this role; allowed curves: %s", bits, strings.Join(r.AllowedECCurves, ", "))
		}
	case keyTypeRSA:
		if bits < r.RSAMinBits || bits > r.RSAMaxBits {
			return inputErrorf("csr RSA key of %d bits is not allowed by this role; allowed: %d-%d bits", bits, r.RSAMinBits, r.RSAMaxBits)
		}
		return checkRSAShape(csr.PublicKey.(*rsa.PublicKey))
	}
	return nil
}
