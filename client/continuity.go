package client

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
)

// ErrContinuity: a rotation's continuity proof does not verify.
var ErrContinuity = errors.New("mastio-ca: continuity proof does not verify")

// VerifyContinuity checks a rotation's continuity proof: the previous
// intermediate key's signature (ECDSA or RSA PKCS#1 v1.5 over SHA-256, or
// Ed25519) over next's DER, base64url without padding. A nil error means
// whoever held the previous intermediate's key introduced next.
func VerifyContinuity(previous, next *x509.Certificate, proof string) error {
	sig, err := base64.RawURLEncoding.DecodeString(proof)
	if err != nil {
		return fmt.Errorf("%w: proof is not base64url without padding", ErrContinuity)
	}
	digest := sha256.Sum256(next.Raw)
	ok := false
	switch pub := previous.PublicKey.(type) {
	case *ecdsa.PublicKey:
		ok = ecdsa.VerifyASN1(pub, digest[:], sig)
	case *rsa.PublicKey:
		ok = rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig) == nil
	case ed25519.PublicKey:
		ok = ed25519.Verify(pub, next.Raw, sig)
	default:
		return fmt.Errorf("%w: unsupported key type %T", ErrContinuity, previous.PublicKey)
	}
	if !ok {
		return ErrContinuity
	}
	return nil
}
