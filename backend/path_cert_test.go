package backend

import (
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

func TestCert_NotFoundThenRead(t *testing.T) {
	b, s := getTestBackend(t)
	for _, p := range []string{"cert", "cert/pem"} {
		if resp := request(t, b, s, logical.ReadOperation, p, nil); resp != nil {
			t.Fatalf("%s before generate = %v, want 404 (nil)", p, resp)
		}
	}
	gen := generateCA(t, b, s)
	resp := mustOK(t, request(t, b, s, logical.ReadOperation, "cert", nil))
	for _, k := range []string{"certificate", "fingerprint_sha256", "serial_number", "not_before", "not_after", "key_type", "key_bits", "source", "version"} {
		if resp.Data[k] != gen.Data[k] {
			t.Errorf("cert %s = %v, generate said %v", k, resp.Data[k], gen.Data[k])
		}
	}
	raw := mustOK(t, request(t, b, s, logical.ReadOperation, "cert/pem", nil))
	body := string(raw.Data[logical.HTTPRawBody].([]byte))
	if body != gen.Data["certificate"] || !strings.HasPrefix(body, "-----BEGIN CERTIFICATE-----") {
		t.Fatalf("cert/pem body is not the CA certificate")
	}
	if raw.Data[logical.HTTPContentType] != "application/pem-certificate-chain" {
		t.Fatalf("content type = %v", raw.Data[logical.HTTPContentType])
	}
}
