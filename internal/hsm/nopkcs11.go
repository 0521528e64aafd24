//go:build !pkcs11

package hsm

import (
	"crypto"
	"io"
)

// Built reports whether this build can use PKCS#11 tokens: not this one
// (built without the pkcs11 tag, cgo-free).
const Built = false

// Token stands in for the PKCS#11 token in a build without it: every
// operation refuses with ErrNotBuilt.
type Token struct{}

// Open returns a token that refuses everything.
func Open(Config) *Token { return &Token{} }

// Close does nothing.
func (*Token) Close() {}

// InUse is false: nothing is open.
func (*Token) InUse(*Token) bool { return false }

// Probe refuses.
func (*Token) Probe(KeyRef, crypto.PublicKey) error { return ErrNotBuilt }

// Check refuses.
func (*Token) Check() error { return ErrNotBuilt }

// Generate refuses.
func (*Token) Generate(string, int, string) (KeyRef, crypto.Signer, error) {
	return KeyRef{}, nil, ErrNotBuilt
}

// Signer returns a signer that refuses.
func (t *Token) Signer(_ KeyRef, pub crypto.PublicKey) crypto.Signer { return noSigner{pub} }

type noSigner struct{ pub crypto.PublicKey }

func (s noSigner) Public() crypto.PublicKey { return s.pub }

func (noSigner) Sign(_ io.Reader, _ []byte, _ crypto.SignerOpts) ([]byte, error) {
	return nil, ErrNotBuilt
}

// Delete refuses.
func (*Token) Delete(KeyRef) error { return ErrNotBuilt }

// KeyAttributes refuses.
func (*Token) KeyAttributes(KeyRef) (Attributes, error) { return Attributes{}, ErrNotBuilt }

// String names the token for logs.
func (*Token) String() string { return "PKCS#11 token (not built)" }
