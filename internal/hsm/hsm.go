// Package hsm keeps CA keys in a PKCS#11 token (an HSM, or SoftHSM2 in
// tests): a key is generated inside the token as sensitive and
// non-extractable, and only its reference (CKA_ID and CKA_LABEL) leaves
// it. Signing goes through crypto.Signer, so the issuing package signs
// with a token key as with one in memory.
//
// PKCS#11 needs cgo. The implementation is built only with the pkcs11
// build tag (pkcs11.go); without it (the default, static plugin) every
// operation refuses with ErrNotBuilt's message. Nothing here imports
// Vault: the backend stores the Config and the KeyRefs.
package hsm

import (
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mastio/vault-plugin-mastio-ca/internal/issuing"
)

// ModulesEnv names the plugin's environment variable that lists, separated
// by ':', the PKCS#11 modules a mount may load. It is set where the plugin
// is registered (vault plugin register -env, which takes sudo on
// sys/plugins/catalog), or in the Vault server's own environment, which
// Vault passes on to the plugins it starts (the host's operators); either
// way not by a mount admin, who so cannot make the plugin load a library
// of their choosing.
const ModulesEnv = "MASTIO_CA_PKCS11_MODULES"

// Config selects a token and logs in to it.
type Config struct {
	ModulePath string
	// TokenLabel or Slot selects the token; exactly one is set.
	TokenLabel string
	Slot       *int
	PIN        string
}

// TokenName is how messages name the configured token.
func (c Config) TokenName() string {
	if c.TokenLabel != "" {
		return fmt.Sprintf("%q", c.TokenLabel)
	}
	if c.Slot != nil {
		return fmt.Sprintf("in slot %d", *c.Slot)
	}
	return "(none selected)"
}

// AllowedModules is the allow-list of ModulesEnv: the absolute, clean
// paths it names.
func AllowedModules() []string {
	var out []string
	for _, p := range strings.Split(os.Getenv(ModulesEnv), ":") {
		if p = strings.TrimSpace(p); p != "" && filepath.IsAbs(p) {
			out = append(out, filepath.Clean(p))
		}
	}
	return out
}

// Check refuses a config the plugin may not or cannot use: a module not
// on the allow-list, no token or two ways to select one, no PIN.
func (c Config) Check(allowed []string) error {
	if c.ModulePath == "" {
		return issuing.Inputf("module_path is required: the PKCS#11 module (.so) of the HSM")
	}
	if !filepath.IsAbs(c.ModulePath) || filepath.Clean(c.ModulePath) != c.ModulePath {
		return issuing.Inputf("module_path must be an absolute, clean path")
	}
	ok := false
	for _, a := range allowed {
		ok = ok || a == c.ModulePath
	}
	if !ok {
		if len(allowed) == 0 {
			return issuing.Inputf("no PKCS#11 module is allowed: the plugin must be registered with -env %s=<module path>[:<module path>...] (Vault's sys/plugins, root or sudo), so that a mount admin cannot make it load any library", ModulesEnv)
		}
		return issuing.Inputf("module_path %s is not on the plugin's allow-list (%s, set at plugin registration): %s", issuing.Quote(c.ModulePath), ModulesEnv, strings.Join(allowed, ", "))
	}
	switch {
	case c.TokenLabel == "" && c.Slot == nil:
		return issuing.Inputf("token_label or slot is required: the token the CA keys live in (token_label is better: slot numbers can change)")
	case c.TokenLabel != "" && c.Slot != nil:
		return issuing.Inputf("give token_label or slot, not both")
	case c.Slot != nil && *c.Slot < 0:
		return issuing.Inputf("slot %d is not a slot number", *c.Slot)
	case len(c.TokenLabel) > 32:
		return issuing.Inputf("token_label is %d bytes; a PKCS#11 token label has at most 32", len(c.TokenLabel))
	case c.PIN == "":
		return issuing.Inputf("pin is required: the token's user PIN")
	}
	return nil
}

// KeyRef names a key in the token: what Vault stores instead of the key.
type KeyRef struct {
	ID    []byte // CKA_ID, random
	Label string // CKA_LABEL, for the operator's eyes
}

// String is the reference as messages and logs show it.
func (r KeyRef) String() string {
	return fmt.Sprintf("CKA_ID %s (label %q)", hex.EncodeToString(r.ID), r.Label)
}

// ErrNotBuilt is the refusal of every PKCS#11 operation by a plugin built
// without the pkcs11 tag.
var ErrNotBuilt = issuing.Statef("this build of the plugin has no PKCS#11 support (it is the static, cgo-free build): register the vault-plugin-mastio-ca-pkcs11 build (make plugin-pkcs11, or the release's _pkcs11 artifact) to keep CA keys in an HSM")

// Attributes are the protection attributes of a private key in the token.
type Attributes struct {
	Sensitive, Extractable, AlwaysSensitive, NeverExtractable, Token bool
}

// Protected reports whether a's key can never leave the token in the
// clear: sensitive and not extractable, since it was made.
func (a Attributes) Protected() bool {
	return a.Sensitive && !a.Extractable && a.AlwaysSensitive && a.NeverExtractable && a.Token
}
