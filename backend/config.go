package backend

import (
	"context"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/mastio/vault-plugin-mastio-ca/internal/issuing"
)

// configUpdate is a config write: nil fields keep their value.
type configUpdate struct {
	orgID, trustDomain, defaultRole, leafNotAfter *string
	crlExpiry                                     *time.Duration
	crlDistributionPoints, ocspServers            *[]string
	issuingCertificates, deltaCRLDistributionPts  *[]string
}

// updateConfig checks u and applies it to the stored config, under
// configLock.
func (b *mastioBackend) updateConfig(ctx context.Context, s logical.Storage, u configUpdate) error {
	b.configLock.Lock()
	defer b.configLock.Unlock()
	cfg, err := readConfig(ctx, s)
	if err != nil {
		return err
	}
	if u.orgID != nil {
		cfg.OrgID = strings.TrimSpace(*u.orgID)
		if err := issuing.ValidateOrgID(cfg.OrgID); err != nil {
			return err
		}
		is, err := b.loadIssuer(ctx, s, orgCA)
		if err != nil {
			return err
		}
		if is != nil && is.orgID != cfg.OrgID {
			return issuing.Inputf("org_id cannot change to %s: the Org CA was made for %q; generate or import a CA for the new org (with cas) instead", issuing.Quote(cfg.OrgID), is.orgID)
		}
	}
	if u.trustDomain != nil {
		td, err := spiffeid.TrustDomainFromString(*u.trustDomain)
		if err != nil || strings.Contains(*u.trustDomain, "://") {
			return issuing.Inputf("trust_domain %s is not a valid SPIFFE trust domain: use lowercase letters, digits, '.', '-' and '_' (e.g. cullis.local)", issuing.Quote(*u.trustDomain))
		}
		cfg.TrustDomain = td.Name()
	}
	if u.defaultRole != nil {
		r, err := readRole(ctx, s, *u.defaultRole)
		if err != nil {
			return err
		}
		if r == nil {
			return issuing.Inputf("default_role %s does not exist; create it under roles/ first", issuing.Quote(*u.defaultRole))
		}
		cfg.DefaultRole = *u.defaultRole
	}
	if u.leafNotAfter != nil {
		if v := *u.leafNotAfter; v != leafNotAfterTruncate && v != leafNotAfterError {
			return issuing.Inputf("leaf_not_after %s is not valid; use truncate or error", issuing.Quote(v))
		}
		cfg.LeafNotAfter = *u.leafNotAfter
	}
	if u.crlExpiry != nil {
		if d := *u.crlExpiry; d < time.Hour || d > 30*24*time.Hour {
			return issuing.Inputf("crl_expiry %s is out of range 1h to 30 days (720h)", d)
		}
		cfg.CRLExpiry = *u.crlExpiry
	}
	for _, l := range []struct {
		field string
		in    *[]string
		dst   *[]string
	}{{"crl_distribution_points", u.crlDistributionPoints, &cfg.CRLDistributionPoints}, {"ocsp_servers", u.ocspServers, &cfg.OCSPServers}, {"issuing_certificates", u.issuingCertificates, &cfg.IssuingCertificates}, {"delta_crl_distribution_points", u.deltaCRLDistributionPts, &cfg.DeltaCRLDistributionPoints}} {
		if l.in == nil {
			continue
		}
		if err := issuing.CheckURLs(l.field, *l.in); err != nil {
			return err
		}
		*l.dst = *l.in
	}
	return b.writeConfig(ctx, s, cfg)
}
