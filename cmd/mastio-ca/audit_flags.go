package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
)

// The report's flags, one section each.
const (
	flagPolicyChange = "policy_change"
	flagCAChange     = "ca_change"
	flagRevocation   = "revocation"
	flagKeyBearing   = "key_bearing"
	flagDenied       = "denied"
	flagRefused      = "refused"
	flagNonSigner    = "non_signer"
	flagVolume       = "volume"
)

// auditClassifier sets each call's flags. It sees every call, also those
// --serial or --since leave out, so that volume counts are whole.
type auditClassifier struct {
	o auditOptions
	// recent holds, per identity, the times of its latest signings within
	// the window (at most maxSignings+1 of them).
	recent  map[string][]time.Time
	tripped map[string]bool
}

func newAuditClassifier(o auditOptions) *auditClassifier {
	return &auditClassifier{o: o, recent: map[string][]time.Time{}, tripped: map[string]bool{}}
}

func isWrite(op string) bool { return op == "update" || op == "create" || op == "delete" }

func (cl *auditClassifier) classify(c *auditCall) {
	add := func(f string) { c.Flags = append(c.Flags, f) }
	p := c.Path
	switch {
	case isWrite(c.Operation) && (strings.HasPrefix(p, "roles/") || p == "config" || strings.HasPrefix(p, "kv-export/") || strings.HasPrefix(p, "sys/mounts/")):
		add(flagPolicyChange)
	case isWrite(c.Operation) && (strings.HasPrefix(p, "data/") || slices.Contains([]string{"generate", "import", "intermediate/generate", "intermediate/import", "intermediate/rotate", "intermediate/set-signed"}, p)):
		add(flagCAChange)
	}
	// Not a CA change: revoke writes a revocation entry and tidy drops
	// expired ones (and the keys of intermediates past their grace, as the
	// periodic function does unaudited); neither replaces a CA.
	if c.Revocation != nil {
		add(flagRevocation)
	}
	if p == "import" || p == "intermediate/import" || strings.HasPrefix(p, "data/") {
		add(flagKeyBearing)
	}
	switch c.Outcome {
	case "denied":
		add(flagDenied)
	case "refused", "error":
		add(flagRefused)
	}
	signing := c.Outcome == "ok" && (p == "sign-csr" || p == "sign-public-key" || c.Role != "")
	if !signing {
		return
	}
	if !cl.isSigner(c.Policies) {
		add(flagNonSigner)
	}
	id := c.EntityID
	if id == "" {
		id = c.DisplayName + " " + strings.Join(c.Policies, ",")
	}
	times := cl.recent[id]
	for range max(1, len(c.Certificates)) {
		times = append(times, c.Time)
	}
	for len(times) > 0 && c.Time.Sub(times[0]) >= cl.o.window {
		times = times[1:]
	}
	if len(times) > cl.o.maxSignings {
		times = times[len(times)-cl.o.maxSignings-1:]
		if !cl.tripped[id] {
			cl.tripped[id] = true
			add(flagVolume)
		}
	}
	cl.recent[id] = times
}

// isSigner reports whether policies are a signer's: one of the expected
// names (exactly, or as the suffix "-<name>"), and not root.
func (cl *auditClassifier) isSigner(policies []string) bool {
	if slices.Contains(policies, "root") {
		return false
	}
	for _, p := range policies {
		for _, want := range cl.o.signerPolicies {
			if p == want || strings.HasSuffix(p, "-"+want) {
				return true
			}
		}
	}
	return false
}

// auditMatcher keeps the calls --serial and --spiffe-id ask for.
type auditMatcher struct {
	serial, id         string // the values asked for
	serialHash, idHash string // their HMACs, when Vault could be asked
	sawHMACs           bool   // the log holds HMAC'd certificate fields
	found              int
}

// newAuditMatcher looks the asked-for values up in sys/audit-hash when a
// token is set; without one only readable values can match.
func newAuditMatcher(o auditOptions, getenv func(string) string) (*auditMatcher, error) {
	m := &auditMatcher{serial: o.serial, id: o.id}
	if m.serial == "" && m.id == "" || getenv("VAULT_TOKEN") == "" {
		return m, nil
	}
	vc, err := api.NewClient(api.DefaultConfig())
	if err != nil {
		return nil, err
	}
	for _, h := range []struct{ in, out *string }{{&m.serial, &m.serialHash}, {&m.id, &m.idHash}} {
		if *h.in == "" {
			continue
		}
		s, err := vc.Logical().WriteWithContext(context.Background(), "sys/audit-hash/"+strings.Trim(o.device, "/"), map[string]any{"input": *h.in})
		if err != nil {
			return nil, fmt.Errorf("asking Vault for the audit HMAC (sys/audit-hash/%s; the token needs update there, e.g. policies/mastio-auditor.hcl): %v", o.device, err)
		}
		if s == nil || s.Data["hash"] == nil {
			return nil, fmt.Errorf("sys/audit-hash/%s answered no hash", o.device)
		}
		*h.out, _ = s.Data["hash"].(string)
	}
	return m, nil
}

// match reports whether c is to be shown.
func (m *auditMatcher) match(c *auditCall) bool {
	if m.serial == "" && m.id == "" {
		return true
	}
	hit := false
	if r := c.Revocation; r != nil && m.serial != "" {
		// A revoke names one certificate: --serial finds it too.
		m.sawHMACs = m.sawHMACs || r.serialHMAC != ""
		if m.serialHash != "" && r.serialHMAC == m.serialHash {
			r.Serial = m.serial
		}
		hit = r.Serial == m.serial
	}
	for i := range c.Certificates {
		cert := &c.Certificates[i]
		m.sawHMACs = m.sawHMACs || cert.serialHMAC != "" || cert.idHMAC != ""
		// An HMAC that matches stands for the value asked for: show it.
		if m.serialHash != "" && cert.serialHMAC == m.serialHash {
			cert.Serial = m.serial
		}
		if m.idHash != "" && cert.idHMAC == m.idHash {
			cert.SPIFFEID = m.id
		}
		if m.serial != "" && cert.Serial == m.serial || m.id != "" && cert.SPIFFEID == m.id {
			if !hit { // the table shows the first certificate: show this one
				c.Certificates[0], c.Certificates[i] = c.Certificates[i], c.Certificates[0]
			}
			hit = true
		}
	}
	if hit {
		m.found++
	}
	return hit
}

// check says why a lookup may have missed: the log holds only HMACs and
// Vault was not asked for them.
func (m *auditMatcher) check() error {
	if (m.serial != "" || m.id != "") && m.found == 0 && m.sawHMACs && m.serialHash == "" && m.idHash == "" {
		return fmt.Errorf("the log holds the serial numbers and SPIFFE IDs only as HMACs: set VAULT_ADDR and VAULT_TOKEN (a token with update on sys/audit-hash/<device>, e.g. policies/mastio-auditor.hcl) and --audit-device, or tune the mount as --help says")
	}
	return nil
}
