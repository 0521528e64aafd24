package issuing

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
)

// Key type names used in fields, storage and responses.
const (
	KeyTypeEC      = "ec"
	KeyTypeRSA     = "rsa"
	KeyTypeEd25519 = "ed25519"
)

// Bounds on RSA modulus sizes that any key in this engine may have.
const (
	MinRSABits = 2048
	MaxRSABits = 8192
)

// KeyInfo describes a public key as (type, bits). It does not judge strength.
func KeyInfo(pub crypto.PublicKey) (string, int, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return KeyTypeEC, k.Curve.Params().BitSize, nil
	case *rsa.PublicKey:
		return KeyTypeRSA, k.N.BitLen(), nil
	case ed25519.PublicKey:
		return KeyTypeEd25519, 256, nil
	default:
		return "", 0, Inputf("unsupported public key type %T; use EC (P-256, P-384, P-521), RSA (2048-8192 bits) or Ed25519", pub)
	}
}

// CheckKeyStrength refuses keys too weak (or too odd) for this engine:
// EC on P-256/P-384/P-521, RSA 2048-8192 bits, Ed25519.
func CheckKeyStrength(pub crypto.PublicKey) error {
	typ, bits, err := KeyInfo(pub)
	if err != nil {
		return err
	}
	switch typ {
	case KeyTypeEC:
		if bits != 256 && bits != 384 && bits != 521 {
			return Inputf("EC curve with %d bits is not accepted; use P-256, P-384 or P-521", bits)
		}
	case KeyTypeRSA:
		if bits < MinRSABits {
			return Inputf("RSA key of %d bits is too weak; at least %d bits are required", bits, MinRSABits)
		}
		if bits > MaxRSABits {
			return Inputf("RSA key of %d bits is larger than the %d-bit limit", bits, MaxRSABits)
		}
		return checkRSAShape(pub.(*rsa.PublicKey))
	}
	return nil
}

// checkRSAShape refuses RSA keys no mainstream generator makes: a public
// exponent other than 65537 (e=3 invites padding attacks on weak verifiers)
// or a modulus whose size is not a whole number of bytes.
func checkRSAShape(pub *rsa.PublicKey) error {
	if pub.E != 65537 {
		return Inputf("RSA public exponent %d is not accepted; use 65537", pub.E)
	}
	if bits := pub.N.BitLen(); bits%8 != 0 {
		return Inputf("RSA modulus of %d bits is not a whole number of bytes; use 2048, 3072 or 4096 bits", bits)
	}
	return nil
}

// KeyGen makes a CA key of a type and size KeySpec has accepted, wherever
// the key is to live. nil is GenerateKey: a key in memory, which the
// caller stores. A KeyGen that keeps the key elsewhere (an HSM) returns a
// signer whose private half cannot be marshalled.
type KeyGen func(keyType string, bits int) (crypto.Signer, error)

// KeySpec checks a key type and size and fills in the default size (P-256
// for ec, 4096 for rsa, 256 for ed25519).
func KeySpec(keyType string, bits int) (int, error) {
	switch keyType {
	case KeyTypeEC:
		switch bits {
		case 0, 256:
			return 256, nil
		case 384:
			return 384, nil
		}
		return 0, Inputf("key_bits %d is not valid for key_type ec; use 256 (P-256) or 384 (P-384)", bits)
	case KeyTypeRSA:
		switch bits {
		case 0:
			return 4096, nil
		case 2048, 3072, 4096:
			return bits, nil
		}
		return 0, Inputf("key_bits %d is not valid for key_type rsa; use 2048, 3072 or 4096", bits)
	case KeyTypeEd25519:
		if bits != 0 && bits != 256 {
			return 0, Inputf("key_bits %d is not valid for key_type ed25519; omit it", bits)
		}
		return 256, nil
	}
	return 0, Inputf("unknown key_type %s; use ec, rsa or ed25519", Quote(keyType))
}

// GenerateKey makes a new CA key of the given type in memory. bits 0 picks
// the default (KeySpec).
func GenerateKey(keyType string, bits int) (crypto.Signer, error) {
	bits, err := KeySpec(keyType, bits)
	if err != nil {
		return nil, err
	}
	switch keyType {
	case KeyTypeEC:
		curve := elliptic.P256()
		if bits == 384 {
			curve = elliptic.P384()
		}
		return ecdsa.GenerateKey(curve, rand.Reader)
	case KeyTypeRSA:
		return rsa.GenerateKey(rand.Reader, bits)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	return priv, err
}

// newKey makes a key with gen (nil: GenerateKey) after KeySpec has checked
// the type and size, and its PKCS#8 form when the key is in memory (nil
// when gen keeps it elsewhere).
func newKey(gen KeyGen, keyType string, bits int) (crypto.Signer, []byte, error) {
	if gen == nil {
		key, err := GenerateKey(keyType, bits)
		if err != nil {
			return nil, nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, nil, fmt.Errorf("encoding key: %w", err)
		}
		return key, der, nil
	}
	bits, err := KeySpec(keyType, bits)
	if err != nil {
		return nil, nil, err
	}
	key, err := gen(keyType, bits)
	return key, nil, err
}

// ParsePrivateKeyPEM reads one private key in PKCS#8, SEC1 or PKCS#1 PEM.
// "EC PARAMETERS" blocks (as `openssl ecparam -genkey` writes) are skipped.
// Errors name the problem, never the bytes.
func ParsePrivateKeyPEM(text string) (crypto.Signer, error) {
	rest := []byte(strings.TrimSpace(text))
	if len(rest) == 0 {
		return nil, Inputf("key_pem is empty")
	}
	var key *pem.Block
	for len(rest) > 0 {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			if key == nil {
				return nil, Inputf("key_pem is not PEM: expected a -----BEGIN PRIVATE KEY----- (PKCS#8), EC PRIVATE KEY (SEC1) or RSA PRIVATE KEY (PKCS#1) block")
			}
			return nil, Inputf("key_pem has trailing data after the private key block")
		}
		if block.Type == "EC PARAMETERS" {
			continue
		}
		if key != nil {
			return nil, Inputf("key_pem holds more than one PEM block; it must hold exactly one private key")
		}
		key = block
		rest = []byte(strings.TrimSpace(string(rest)))
	}
	if key == nil {
		return nil, Inputf("key_pem holds no private key block")
	}
	if key.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(key.Headers["Proc-Type"], "ENCRYPTED") {
		return nil, Inputf("key_pem is encrypted; decrypt it first (for example `openssl pkey -in key.pem -out plain.pem`) and import over TLS")
	}

	var (
		parsed any
		err    error
	)
	switch key.Type {
	case "PRIVATE KEY":
		parsed, err = x509.ParsePKCS8PrivateKey(key.Bytes)
	case "EC PRIVATE KEY":
		parsed, err = x509.ParseECPrivateKey(key.Bytes)
	case "RSA PRIVATE KEY":
		parsed, err = x509.ParsePKCS1PrivateKey(key.Bytes)
	default:
		return nil, Inputf("key_pem block type %q is not a private key; expected PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY", key.Type)
	}
	if err != nil {
		// The x509 parse errors describe structure, not content, but keep
		// them out anyway: a message is all the caller needs.
		return nil, Inputf("key_pem %s block could not be parsed: the DER inside is malformed or uses an unsupported algorithm or curve", key.Type)
	}
	signer, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, Inputf("key_pem holds a %T, which cannot sign certificates", parsed)
	}
	switch signer.(type) {
	case *ecdsa.PrivateKey, *rsa.PrivateKey, ed25519.PrivateKey:
	default:
		return nil, Inputf("key_pem holds an unsupported key type %T; use EC, RSA or Ed25519", signer)
	}
	return signer, nil
}

// maxPEMCertificates bounds what ParseCertificatesPEM parses, so that a
// request's cost does not grow with its size.
const maxPEMCertificates = 16

// ParseCertificatesPEM reads every CERTIFICATE block in text, at most
// maxPEMCertificates. field names the request field in error messages.
func ParseCertificatesPEM(field, text string) ([]*x509.Certificate, error) {
	rest := []byte(strings.TrimSpace(text))
	var certs []*x509.Certificate
	for len(rest) > 0 {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			if len(certs) == 0 {
				return nil, Inputf("%s is not PEM: expected -----BEGIN CERTIFICATE----- blocks", field)
			}
			return nil, Inputf("%s has trailing data after certificate %d", field, len(certs))
		}
		if len(certs) == maxPEMCertificates {
			return nil, Inputf("%s holds more than %d certificates", field, maxPEMCertificates)
		}
		if block.Type != "CERTIFICATE" {
			return nil, Inputf("%s block %d has type %q; only CERTIFICATE blocks are accepted", field, len(certs)+1, block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, Inputf("%s certificate %d could not be parsed: %v", field, len(certs)+1, err)
		}
		certs = append(certs, cert)
		rest = []byte(strings.TrimSpace(string(rest)))
	}
	if len(certs) == 0 {
		return nil, Inputf("%s is empty", field)
	}
	return certs, nil
}

// PublicKeysEqual reports whether two public keys are the same key.
func PublicKeysEqual(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

// subjectKeyID computes a key identifier as in RFC 7093 section 2 method 1:
// the leftmost 160 bits of the SHA-256 of the subjectPublicKey bit string.
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("marshalling public key: %w", err)
	}
	var spki struct {
		Algorithm asn1.RawValue
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, fmt.Errorf("parsing public key: %w", err)
	}
	sum := sha256.Sum256(spki.PublicKey.Bytes)
	return sum[:20], nil
}

// serialLimit is 2^128: serials are 128 random bits (RFC 5280 and the CA/B
// baseline ask for at least 64 bits of entropy).
var serialLimit = new(big.Int).Lsh(big.NewInt(1), 128)

// randomSerial returns a positive 128-bit random serial number.
func randomSerial() (*big.Int, error) {
	for {
		n, err := rand.Int(rand.Reader, serialLimit)
		if err != nil {
			return nil, fmt.Errorf("generating serial number: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

// FormatSerial renders a serial the way Vault's PKI engine does: colon
// separated lowercase hex octets.
func FormatSerial(n *big.Int) string {
	b := n.Bytes()
	parts := make([]string, len(b))
	for i, c := range b {
		parts[i] = fmt.Sprintf("%02x", c)
	}
	return strings.Join(parts, ":")
}

// FingerprintSHA256 is the hex SHA-256 of a DER certificate.
func FingerprintSHA256(der []byte) string {
	sum := sha256.Sum256(der)
	return fmt.Sprintf("%x", sum[:])
}

// EncodeCertPEM renders one certificate as PEM.
func EncodeCertPEM(der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// PublicKeyFingerprint is the hex SHA-256 of the certificate's SPKI DER;
// its first 16 hex digits are Mastio's key_id.
func PublicKeyFingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return fmt.Sprintf("%x", sum[:])
}

// EncodePrivateKeyPEM renders a PKCS#8 key as PEM, for the KV mirror's
// export of an imported key.
func EncodePrivateKeyPEM(pkcs8 []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}))
}
