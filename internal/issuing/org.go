package issuing

import (
	"crypto/x509"
	"regexp"
)

// DefaultTrustDomain is the SPIFFE trust domain of a new mount.
const DefaultTrustDomain = "cullis.local"

var orgIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// ValidateOrgID refuses an org_id that cannot be a SPIFFE path segment.
func ValidateOrgID(id string) error {
	if !orgIDPattern.MatchString(id) || id == "." || id == ".." {
		return Inputf("org_id %s is not valid: use 1-64 characters from A-Z a-z 0-9 . _ - (it becomes a SPIFFE ID path segment)", Quote(id))
	}
	return nil
}

// ResolveOrgID picks the org of a generated CA: the request's, else the
// configured one; both given must agree.
func ResolveOrgID(requested, configured string) (string, error) {
	switch {
	case requested == "" && configured == "":
		return "", Inputf("org_id is required (or set config org_id first)")
	case requested == "":
		requested = configured
	case configured != "" && requested != configured:
		return "", Inputf("org_id %s differs from config org_id %s; change config first or omit org_id", Quote(requested), Quote(configured))
	}
	return requested, ValidateOrgID(requested)
}

// ImportOrgID picks the org of an imported Org CA: the request's, else the
// configured one, else the certificate's single O.
func ImportOrgID(requested, configured string, cert *x509.Certificate) (string, error) {
	orgID := requested
	switch {
	case requested != "" && configured != "" && requested != configured:
		return "", Inputf("org_id %s differs from config org_id %s; change config first or omit org_id", Quote(requested), Quote(configured))
	case requested == "" && configured != "":
		orgID = configured
	case requested == "" && len(cert.Subject.Organization) == 1:
		orgID = cert.Subject.Organization[0]
	}
	if orgID == "" {
		return "", Inputf("org_id is required: cert_pem has no single O to take it from and config has none")
	}
	if err := ValidateOrgID(orgID); err != nil {
		return "", Inputf("%s; pass org_id explicitly", err)
	}
	return orgID, nil
}
