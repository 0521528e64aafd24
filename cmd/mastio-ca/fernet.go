package main

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"fmt"
	"strings"

	"github.com/fernet/fernet-go"
)

// Mastio's pki_key_store encryption (reference/mastio-facts.md): the
// ciphertext is pkiPrefix + a Fernet token over JSON {key_pem, cert_pem};
// the Fernet key is PBKDF2-HMAC-SHA256 of MCP_PROXY_DB_ENCRYPTION_KEY.
const (
	pkiPrefix     = "enc:pki:v1:"
	pkiSalt       = "cullis-mastio-pki-v1"
	pkiIterations = 600000
)

// pkiFernetKey derives the Fernet key from Mastio's passphrase.
func pkiFernetKey(passphrase string) (*fernet.Key, error) {
	raw, err := pbkdf2.Key(sha256.New, passphrase, []byte(pkiSalt), pkiIterations, 32)
	if err != nil {
		return nil, err
	}
	var k fernet.Key
	copy(k[:], raw)
	return &k, nil
}

// decryptPKIRow opens one pki_key_store ciphertext with the key from
// pkiFernetKey. Errors never carry the plaintext.
func decryptPKIRow(ciphertext string, k *fernet.Key) (keyPEM, certPEM string, err error) {
	token, ok := strings.CutPrefix(strings.TrimSpace(ciphertext), pkiPrefix)
	if !ok {
		return "", "", fmt.Errorf("ciphertext does not start with %q", pkiPrefix)
	}
	plain := fernet.VerifyAndDecrypt([]byte(token), 0, []*fernet.Key{k})
	if plain == nil {
		return "", "", fmt.Errorf("the Fernet token does not open with MCP_PROXY_DB_ENCRYPTION_KEY (wrong passphrase, or a damaged row)")
	}
	return decodePKIPayload(plain)
}
