package issuing

import (
	"crypto/ecdh"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"

	"github.com/mastio/vault-plugin-mastio-ca/internal/testpki"
)

// The remaining 400s, provoked at the function that produces them. Each
// must be an inputError (so handlers answer 400) with the expected text.
func TestParsers_BadInput(t *testing.T) {
	ecKeyPEM := testpki.PKCS8PEM(t, testpki.NewECKey(t, elliptic.P256()))
	x25519, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	x25519DER, err := x509.MarshalPKCS8PrivateKey(x25519)
	if err != nil {
		t.Fatal(err)
	}
	huge := &rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), 9000), E: 65537}
	_, caPEM := testpki.ValidCA(t, testpki.NewECKey(t, elliptic.P256()))
	garbageExt := func(id asn1.ObjectIdentifier) string {
		return testpki.MakeCSR(t, testpki.CSR{ExtraExts: []pkix.Extension{{Id: id, Value: []byte{0xff, 0x01}}}})
	}
	badRole := func(mut func(r *Role)) error {
		r := DefaultRoles()[RoleAgent]
		mut(r)
		return r.Validate()
	}

	cases := []struct {
		name string
		err  error
		want string
	}{
		{"key only whitespace", second(ParsePrivateKeyPEM("  \n ")), "key_pem is empty"},
		{"key then garbage", second(ParsePrivateKeyPEM(ecKeyPEM + "trailing")), "trailing data"},
		{"only EC PARAMETERS", second(ParsePrivateKeyPEM("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n")), "no private key block"},
		{"X25519 key", second(ParsePrivateKeyPEM(string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: x25519DER})))), "cannot sign certificates"},
		{"RSA above 8192", CheckKeyStrength(huge), "larger than the 8192-bit limit"},
		{"RSA e=3", CheckKeyStrength(&rsa.PublicKey{N: new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), 2047), big.NewInt(1)), E: 3}), "public exponent 3 is not accepted"},
		{"RSA 2049 bits", CheckKeyStrength(&rsa.PublicKey{N: new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), 2048), big.NewInt(1)), E: 65537}), "2049 bits is not a whole number of bytes"},
		{"cert then garbage", second(ParseCertificatesPEM("cert_pem", caPEM+"junk")), "trailing data after certificate 1"},
		{"key block in cert_pem", second(ParseCertificatesPEM("cert_pem", ecKeyPEM)), `has type "PRIVATE KEY"`},
		{"corrupt certificate", second(ParseCertificatesPEM("cert_pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 0x00}})))), "could not be parsed"},
		{"empty cert_pem", second(ParseCertificatesPEM("chain_pem", " ")), "chain_pem is empty"},
		{"malformed basicConstraints", second(ParseCSR(garbageExt(OIDExtBasicConstraints))), "malformed basicConstraints"},
		{"malformed keyUsage", second(ParseCSR(garbageExt(OIDExtKeyUsage))), "malformed keyUsage"},
		{"malformed extendedKeyUsage", second(ParseCSR(garbageExt(OIDExtExtKeyUsage))), "malformed extendedKeyUsage"},
		{"malformed IP SAN", second(ParseCSR(testpki.MakeCSR(t, testpki.CSR{ExtraExts: []pkix.Extension{testpki.SANExt(t, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: SANTagIP, Bytes: []byte{1, 2, 3}})}}))), "could not be parsed"},
		{"no key types", badRole(func(r *Role) { r.AllowedKeyTypes = nil }), "must name at least one of ec, rsa, ed25519"},
		{"ec without curves", badRole(func(r *Role) { r.AllowedECCurves = nil }), "allowed_ec_curves must name at least one"},
		{"too many URI SANs", badRole(func(r *Role) { r.URISANCount = 9 }), "out of range 0-8"},
		{"O placeholder", badRole(func(r *Role) { r.SubjectOrganization = "{{org}}" }), "subject_organization: unknown placeholder {{org}}"},
		{"zero ttl", badRole(func(r *Role) { r.TTL = 0 }), "ttl must be positive"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err == nil || !IsInput(tc.err) {
				t.Fatalf("err = %v, want an inputError", tc.err)
			}
			if !strings.Contains(tc.err.Error(), tc.want) {
				t.Fatalf("err %q does not contain %q", tc.err, tc.want)
			}
		})
	}
}

func second[T any](_ T, err error) error { return err }
