package acceptance

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/mastio/vault-plugin-mastio-ca/client"
	"github.com/mastio/vault-plugin-mastio-ca/internal/testvault"
)

// startVaults starts n dev Vault servers with the plugin registered, at
// the same time, each stopped when the test ends (Stop may also be called
// earlier: a second Stop does nothing).
func startVaults(t *testing.T, n int) []*testvault.Server {
	t.Helper()
	servers := make([]*testvault.Server, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			servers[i], errs[i] = testvault.Start(testvault.Options{PluginVersion: pluginVersion, Race: raceEnabled})
		}()
	}
	wg.Wait()
	for _, s := range servers {
		if s != nil {
			t.Cleanup(s.Stop)
		}
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("starting %d Vault servers: %v", n, err)
	}
	return servers
}

// vaultAt runs the vault CLI against server s in dir.
func vaultAt(t *testing.T, s *testvault.Server, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), s.VaultBin, args...)
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), "VAULT_ADDR="+s.Addr, "VAULT_TOKEN="+s.Token, "HOME="+dir)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// mustVaultAt is vaultAt that fails the test on a non-zero exit.
func mustVaultAt(t *testing.T, s *testvault.Server, dir string, args ...string) string {
	t.Helper()
	out, err := vaultAt(t, s, dir, args...)
	if err != nil {
		t.Fatalf("vault %s (at %s): %v\n%s", strings.Join(args, " "), s.Addr, err, out)
	}
	return out
}

// cliSecret is what `vault ... -format=json` prints.
type cliSecret struct {
	Data     map[string]any `json:"data"`
	Warnings []string       `json:"warnings"`
}

// vaultJSON runs `vault <verb> -format=json <rest...>` against s and
// decodes the secret it prints.
func vaultJSON(t *testing.T, s *testvault.Server, dir, verb string, rest ...string) *cliSecret {
	t.Helper()
	out := mustVaultAt(t, s, dir, append([]string{verb, "-format=json"}, rest...)...)
	var sec cliSecret
	dec := json.NewDecoder(strings.NewReader(out))
	dec.UseNumber()
	if err := dec.Decode(&sec); err != nil {
		t.Fatalf("vault %s %s: output is not a JSON secret: %v\n%s", verb, strings.Join(rest, " "), err, out)
	}
	return &sec
}

// str is a string field of a response.
func str(t *testing.T, data map[string]any, key string) string {
	t.Helper()
	s, ok := data[key].(string)
	if !ok {
		t.Fatalf("response field %s is %T (%v), want a string", key, data[key], data[key])
	}
	return s
}

// strList is a list-of-strings field of a response.
func strList(t *testing.T, data map[string]any, key string) []string {
	t.Helper()
	l, ok := data[key].([]any)
	if !ok {
		t.Fatalf("response field %s is %T, want a list", key, data[key])
	}
	out := make([]string, len(l))
	for i, v := range l {
		if out[i], ok = v.(string); !ok {
			t.Fatalf("response field %s[%d] is %T, want a string", key, i, v)
		}
	}
	return out
}

// writeFiles writes name → content into dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// certOf parses the one PEM certificate in s.
func certOf(t *testing.T, s string) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode([]byte(s))
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("not a PEM certificate: %.80q", s)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// statusOf is the HTTP status of a Vault API error (0 if it has none).
func statusOf(err error) int {
	var re *api.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// shortErr is the first line of a Vault error, for the transcript.
func shortErr(err error) string {
	var re *api.ResponseError
	if errors.As(err, &re) && len(re.Errors) > 0 {
		return fmt.Sprintf("%d: %s", re.StatusCode, re.Errors[0])
	}
	return err.Error()
}

// TestTwoVault_ColdRootAndIssuingVaults is the two-tier setup across
// Vault servers: a root Vault holds the Org CA key and only signs
// intermediates; two issuing Vaults each make their intermediate key,
// send only a CSR to the root, install the signed certificate with the
// Org CA certificate as anchor, and sign agents. Then the root Vault is
// stopped (it stays cold) and the issuing Vaults go on signing.
func TestTwoVault_ColdRootAndIssuingVaults(t *testing.T) {
	ctx := t.Context()
	servers := startVaults(t, 3)
	root, a, b := servers[0], servers[1], servers[2]
	dir := t.TempDir()
	t.Logf("started three dev Vaults: root %s, issuing A %s, issuing B %s", root.Addr, a.Addr, b.Addr)

	// The root Vault: the Org CA, key inside.
	mustVaultAt(t, root, dir, "secrets", "enable", "-path=root-ca", pluginName)
	gen := vaultJSON(t, root, dir, "write", "root-ca/generate", "org_id=acme")
	orgPEM := str(t, gen.Data, "certificate")
	org := certOf(t, orgPEM)
	orgFP := str(t, gen.Data, "fingerprint_sha256")
	if !org.IsCA || org.MaxPathLen != 1 || org.CheckSignatureFrom(org) != nil {
		t.Fatalf("Org CA: CA %v, pathLen %d", org.IsCA, org.MaxPathLen)
	}
	t.Logf("root$ vault secrets enable -path=root-ca mastio-ca; vault write root-ca/generate org_id=acme → CN=%q serial=%s fingerprint_sha256=%s pathLen=%d not_after=%s",
		org.Subject.CommonName, str(t, gen.Data, "serial_number"), orgFP, org.MaxPathLen, org.NotAfter.UTC().Format(time.RFC3339))
	rootPEM := getPEM(t, root, "root-ca/cert/pem")
	writeFiles(t, dir, map[string]string{"org.pem": rootPEM})
	t.Logf("root$ curl $ROOT/v1/root-ca/cert/pem > org.pem (%d bytes, no token)", len(rootPEM))

	// One CSR round: the issuing Vault makes a key and a CSR, the root
	// signs it, the issuing Vault activates the certificate.
	type round struct {
		csr, pubSHA, certPEM string
		cert                 *x509.Certificate
		setSigned            *cliSecret
	}
	csrRound := func(name string, s *testvault.Server, viaAPI bool, grace string) round {
		t.Helper()
		var r round
		pending := vaultJSON(t, s, dir, "write", "-force", "mastio-ca/intermediate/generate-csr")
		r.csr, r.pubSHA = str(t, pending.Data, "csr"), str(t, pending.Data, "public_key_sha256")
		if strings.Contains(r.csr, "PRIVATE KEY") {
			t.Fatalf("%s: generate-csr returned a private key", name)
		}
		writeFiles(t, dir, map[string]string{name + ".csr": r.csr})
		t.Logf("%s$ vault write -force mastio-ca/intermediate/generate-csr → csr (%d bytes) public_key_sha256=%s version=%v",
			name, len(r.csr), r.pubSHA, pending.Data["version"])
		again := vaultJSON(t, s, dir, "read", "mastio-ca/intermediate/pending")
		if str(t, again.Data, "csr") != r.csr || str(t, again.Data, "public_key_sha256") != r.pubSHA {
			t.Fatalf("%s: intermediate/pending is not the CSR generate-csr returned", name)
		}

		signed := vaultJSON(t, root, dir, "write", "root-ca/root/sign-intermediate", "csr=@"+name+".csr", "ttl=8760h")
		r.certPEM = str(t, signed.Data, "certificate")
		r.cert = certOf(t, r.certPEM)
		assertLints(t, r.certPEM)
		chain := strList(t, signed.Data, "ca_chain")
		if len(chain) != 2 || chain[0] != r.certPEM || !certOf(t, chain[1]).Equal(org) || str(t, signed.Data, "issuing_ca") != chain[1] {
			t.Fatalf("%s: root/sign-intermediate ca_chain is not [certificate, Org CA] (%d entries)", name, len(chain))
		}
		if r.cert.CheckSignatureFrom(org) != nil || !r.cert.IsCA || r.cert.MaxPathLen != 0 || !r.cert.MaxPathLenZero {
			t.Fatalf("%s: signed intermediate: CA %v pathLen %d, signed by the Org CA: %v", name, r.cert.IsCA, r.cert.MaxPathLen, r.cert.CheckSignatureFrom(org))
		}
		if d := time.Until(r.cert.NotAfter) - 8760*time.Hour; d > time.Minute || d < -2*time.Minute {
			t.Fatalf("%s: NotAfter %s is not 8760h from now", name, r.cert.NotAfter)
		}
		if got := spkiSHA256(t, r.cert); got != r.pubSHA {
			t.Fatalf("%s: the root signed public key %s, generate-csr made %s", name, got, r.pubSHA)
		}
		t.Logf("root$ vault write root-ca/root/sign-intermediate csr=@%s.csr ttl=8760h → serial=%s CN=%q pathLen=0 not_after=%s expiration=%v ca_chain=[certificate, Org CA] warnings=%q",
			name, str(t, signed.Data, "serial_number"), r.cert.Subject.CommonName, str(t, signed.Data, "not_after"), signed.Data["expiration"], signed.Warnings)
		writeFiles(t, dir, map[string]string{name + "-int.pem": r.certPEM, name + "-chain.pem": strings.Join(chain[1:], "")})

		if viaAPI {
			// The answer's ca_chain[1:] as a JSON list, as a program sends it.
			data := map[string]any{"certificate": r.certPEM, "ca_chain": chain[1:]}
			if grace != "" {
				// A rotation: create-only, so it names the active version.
				data["grace_period"] = grace
				data["cas"] = vaultJSON(t, s, dir, "read", "mastio-ca/intermediate/cert").Data["version"]
			}
			sec, err := s.Root.Logical().WriteWithContext(ctx, "mastio-ca/intermediate/set-signed", data)
			if err != nil {
				t.Fatalf("%s: set-signed: %v", name, err)
			}
			r.setSigned = &cliSecret{Data: sec.Data, Warnings: sec.Warnings}
			t.Logf("%s$ PUT mastio-ca/intermediate/set-signed {certificate, ca_chain: [Org CA], grace_period: %q} → serial=%v org_ca_installed=%v unchanged=%v old_intermediate_cn=%v new_intermediate_cn=%v continuity_proof=%.24v…",
				name, grace, sec.Data["serial_number"], sec.Data["org_ca_installed"], sec.Data["unchanged"], sec.Data["old_intermediate_cn"], sec.Data["new_intermediate_cn"], sec.Data["continuity_proof"])
		} else {
			args := []string{"mastio-ca/intermediate/set-signed", "certificate=@" + name + "-int.pem", "ca_chain=@" + name + "-chain.pem"}
			if grace != "" {
				args = append(args, "grace_period="+grace)
			}
			r.setSigned = vaultJSON(t, s, dir, "write", args...)
			t.Logf("%s$ vault write mastio-ca/intermediate/set-signed certificate=@%s-int.pem ca_chain=@%s-chain.pem → serial=%v fingerprint_sha256=%v org_ca_installed=%v unchanged=%v",
				name, name, name, r.setSigned.Data["serial_number"], r.setSigned.Data["fingerprint_sha256"], r.setSigned.Data["org_ca_installed"], r.setSigned.Data["unchanged"])
		}
		if got := str(t, r.setSigned.Data, "certificate"); got != r.certPEM {
			t.Fatalf("%s: set-signed activated another certificate", name)
		}
		if sec, err := s.Root.Logical().ReadWithContext(ctx, "mastio-ca/intermediate/pending"); err != nil || sec != nil {
			t.Fatalf("%s: intermediate/pending after set-signed: %v %v (want nothing pending)", name, sec, err)
		}
		return r
	}

	// signAndVerify signs an openssl agent CSR on s and has openssl verify
	// the leaf against the Org CA PEM of the root with inter untrusted.
	leaves := 0
	signAndVerify := func(name string, s *testvault.Server, interFile string, inter *x509.Certificate) *x509.Certificate {
		t.Helper()
		leaves++
		agent := fmt.Sprintf("%s-agent-%d", strings.ToLower(name), leaves)
		agentCSR(t, dir, agent)
		sec := vaultJSON(t, s, dir, "write", "mastio-ca/sign-csr", "csr=@"+agent+".csr")
		leafPEM := str(t, sec.Data, "certificate")
		leaf := certOf(t, leafPEM)
		assertLints(t, leafPEM)
		if !certOf(t, str(t, sec.Data, "issuing_ca")).Equal(inter) || leaf.CheckSignatureFrom(inter) != nil {
			t.Fatalf("%s: %s was not signed by the intermediate %s", name, agent, serialHex(inter))
		}
		chain := strList(t, sec.Data, "ca_chain")
		if len(chain) != 2 || !certOf(t, chain[0]).Equal(inter) || !certOf(t, chain[1]).Equal(org) {
			t.Fatalf("%s: ca_chain of %s is not [intermediate, Org CA]", name, agent)
		}
		writeFiles(t, dir, map[string]string{agent + ".pem": leafPEM})
		out := mustOpenSSL(t, dir, "verify", "-CAfile", "org.pem", "-untrusted", interFile, agent+".pem")
		if !strings.Contains(out, agent+".pem: OK") {
			t.Fatalf("openssl verify: %s", out)
		}
		t.Logf("%s$ vault write mastio-ca/sign-csr csr=@%s.csr → serial=%s spiffe_id=%v; $ openssl verify -CAfile org.pem -untrusted %s %s.pem → %s",
			name, agent, str(t, sec.Data, "serial_number"), sec.Data["spiffe_id"], interFile, agent, strings.TrimSpace(out))
		return leaf
	}

	// Issuing Vault A: no Org CA, only its org.
	mustVaultAt(t, a, dir, "secrets", "enable", pluginName)
	mustVaultAt(t, a, dir, "write", "mastio-ca/config", "org_id=acme")
	t.Logf("A$ vault secrets enable mastio-ca; vault write mastio-ca/config org_id=acme")
	a1 := csrRound("A", a, false, "")
	if a1.setSigned.Data["org_ca_installed"] != true || a1.setSigned.Data["unchanged"] != false {
		t.Fatalf("A: set-signed org_ca_installed=%v unchanged=%v, want true false", a1.setSigned.Data["org_ca_installed"], a1.setSigned.Data["unchanged"])
	}
	aCert := vaultJSON(t, a, dir, "read", "mastio-ca/cert")
	if src, fp := str(t, aCert.Data, "source"), str(t, aCert.Data, "fingerprint_sha256"); src != "anchor" || fp != orgFP {
		t.Fatalf("A's cert: source=%s fingerprint=%s, want anchor %s", src, fp, orgFP)
	}
	aPEM := getPEM(t, a, "mastio-ca/cert/pem")
	if aPEM != rootPEM {
		t.Fatalf("A's cert/pem differs from the root's:\n%s\nvs\n%s", aPEM, rootPEM)
	}
	t.Logf("A$ vault read mastio-ca/cert → source=anchor fingerprint_sha256=%s (the root's); A's cert/pem == root's cert/pem (%d bytes)", orgFP, len(aPEM))

	_, _, rootBundle := httpDo(t, "GET", root.Addr+"/v1/root-ca/bundle", "", nil, nil)
	code, _, aBundle := httpDo(t, "GET", a.Addr+"/v1/mastio-ca/bundle", "", nil, nil)
	if code != 200 || !bytes.Equal(aBundle, rootBundle) {
		t.Fatalf("A's SPIFFE bundle (%d) differs from the root's:\n%s\nvs\n%s", code, aBundle, rootBundle)
	}
	t.Logf("A$ curl $A/v1/mastio-ca/bundle → 200, byte-identical to the root's bundle (%d bytes)", len(aBundle))

	signAndVerify("A", a, "A-int.pem", a1.cert)
	signAndVerify("A", a, "A-int.pem", a1.cert)

	// The key is not on A: what needs it is refused.
	for _, c := range []struct {
		path, args string
		data       map[string]any
		want       int
	}{
		{"mastio-ca/generate", "org_id=acme", map[string]any{"org_id": "acme"}, 409},
		{"mastio-ca/intermediate/rotate", "", map[string]any{}, 422},
		{"mastio-ca/intermediate/generate", "", map[string]any{}, 422},
		{"mastio-ca/intermediate/generate", "cas=1", map[string]any{"cas": 1}, 422},
		{"mastio-ca/root/sign-intermediate", "csr=@A.csr", map[string]any{"csr": a1.csr}, 422},
	} {
		_, err := a.Root.Logical().WriteWithContext(ctx, c.path, c.data)
		if got := statusOf(err); got != c.want {
			t.Errorf("A: write %s %s: %v (status %d), want %d", c.path, c.args, err, got, c.want)
			continue
		}
		t.Logf("A$ vault write %s → %s", strings.TrimSpace(c.path+" "+c.args), shortErr(err))
	}
	if cur := vaultJSON(t, a, dir, "read", "mastio-ca/intermediate/cert"); str(t, cur.Data, "certificate") != a1.certPEM {
		t.Fatal("A: a refused write changed the intermediate")
	}

	// A rotation round on A, while the root still runs: the old key signs
	// the continuity proof over the new certificate.
	a2 := csrRound("A", a, true, "24h")
	proof := str(t, a2.setSigned.Data, "continuity_proof")
	if err := client.VerifyContinuity(a1.cert, a2.cert, proof); err != nil {
		t.Fatalf("A: continuity proof: %v", err)
	}
	if err := client.VerifyContinuity(a2.cert, a2.cert, proof); !errors.Is(err, client.ErrContinuity) {
		t.Fatalf("A: the continuity proof verifies under the new key: %v", err)
	}
	if a2.setSigned.Data["org_ca_installed"] != false || a2.setSigned.Data["old_intermediate_cn"] != a1.cert.Subject.CommonName || a2.setSigned.Data["new_intermediate_cn"] != a2.cert.Subject.CommonName {
		t.Fatalf("A: rotation answer org_ca_installed=%v old=%v new=%v", a2.setSigned.Data["org_ca_installed"], a2.setSigned.Data["old_intermediate_cn"], a2.setSigned.Data["new_intermediate_cn"])
	}
	sig, err := base64.RawURLEncoding.DecodeString(proof)
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{"A-new.der": string(a2.cert.Raw), "A-proof.sig": string(sig)})
	// (A-int.pem now holds the new one: the old one's key comes from a1.)
	writeFiles(t, dir, map[string]string{"A-old-int.pem": a1.certPEM})
	mustOpenSSL(t, dir, "x509", "-in", "A-old-int.pem", "-pubkey", "-noout", "-out", "A-old.pub")
	dgst := mustOpenSSL(t, dir, "dgst", "-sha256", "-verify", "A-old.pub", "-signature", "A-proof.sig", "A-new.der")
	if !strings.Contains(dgst, "Verified OK") {
		t.Fatalf("openssl dgst: %s", dgst)
	}
	t.Logf("client.VerifyContinuity(old A intermediate %s, new %s, continuity_proof) = nil; $ openssl dgst -sha256 -verify A-old.pub -signature A-proof.sig A-new.der → %s",
		serialHex(a1.cert), serialHex(a2.cert), strings.TrimSpace(dgst))
	inter := vaultJSON(t, a, dir, "read", "mastio-ca/intermediate/cert")
	if str(t, inter.Data, "certificate") != a2.certPEM || !certOf(t, str(t, inter.Data, "previous")).Equal(a1.cert) {
		t.Fatalf("A: intermediate/cert after the rotation: current is the new one %v, previous %.60v", str(t, inter.Data, "certificate") == a2.certPEM, inter.Data["previous"])
	}
	if bundle := strList(t, inter.Data, "bundle"); len(bundle) != 2 {
		t.Fatalf("A: intermediate/cert bundle holds %d certificates, want 2", len(bundle))
	}
	if str(t, inter.Data, "continuity_proof") != proof {
		t.Errorf("A: intermediate/cert serves continuity_proof %.24v…, set-signed returned %.24s…", inter.Data["continuity_proof"], proof)
	}
	t.Logf("A$ vault read mastio-ca/intermediate/cert → serial=%v previous serial=%s previous_grace_until=%v bundle=2",
		inter.Data["serial_number"], serialHex(a1.cert), inter.Data["previous_grace_until"])
	writeFiles(t, dir, map[string]string{"A2-int.pem": a2.certPEM})
	signAndVerify("A", a, "A2-int.pem", a2.cert)
	if sec, err := a.Root.Logical().WriteWithContext(ctx, "mastio-ca/intermediate/set-signed", map[string]any{"certificate": a2.certPEM}); err != nil || sec == nil || sec.Data["unchanged"] != true {
		t.Fatalf("A: a retried set-signed: %v, want unchanged=true", err)
	}
	t.Logf("A$ vault write mastio-ca/intermediate/set-signed certificate=@A2-int.pem (a retry) → unchanged=true")

	// Issuing Vault B, also before the root goes cold.
	mustVaultAt(t, b, dir, "secrets", "enable", pluginName)
	mustVaultAt(t, b, dir, "write", "mastio-ca/config", "org_id=acme")
	t.Logf("B$ vault secrets enable mastio-ca; vault write mastio-ca/config org_id=acme")
	b1 := csrRound("B", b, false, "")
	if b1.setSigned.Data["org_ca_installed"] != true {
		t.Fatalf("B: set-signed org_ca_installed=%v", b1.setSigned.Data["org_ca_installed"])
	}
	if got := getPEM(t, b, "mastio-ca/cert/pem"); got != rootPEM {
		t.Fatal("B's cert/pem differs from the root's")
	}
	if b1.cert.Equal(a2.cert) || b1.cert.Equal(a1.cert) || spkiSHA256(t, b1.cert) == spkiSHA256(t, a2.cert) {
		t.Fatal("B's intermediate is A's")
	}
	t.Logf("A and B intermediates differ: A serial=%s key sha256=%s; B serial=%s key sha256=%s; both issued by %q",
		serialHex(a2.cert), spkiSHA256(t, a2.cert), serialHex(b1.cert), spkiSHA256(t, b1.cert), org.Subject.CommonName)
	signAndVerify("B", b, "B-int.pem", b1.cert)

	// The root goes cold.
	root.Stop()
	if _, err := root.Root.Sys().HealthWithContext(ctx); err == nil {
		t.Fatal("the root Vault still answers after Stop")
	}
	t.Logf("root$ (Vault stopped) → GET %s/v1/sys/health fails", root.Addr)

	aLeaf := signAndVerify("A", a, "A2-int.pem", a2.cert)
	bLeaf := signAndVerify("B", b, "B-int.pem", b1.cert)
	roots := x509.NewCertPool()
	roots.AddCert(certOf(t, rootPEM))
	for _, c := range []struct {
		leaf, inter *x509.Certificate
	}{{aLeaf, a2.cert}, {bLeaf, b1.cert}} {
		mids := x509.NewCertPool()
		mids.AddCert(c.inter)
		if _, err := c.leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: mids, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Fatalf("a leaf signed with the root cold does not verify against the one Org CA PEM: %v", err)
		}
	}
	t.Logf("with the root stopped: leaves from A (serial %s) and B (serial %s) both verify against the one Org CA PEM (Go x509 and openssl)",
		serialHex(aLeaf), serialHex(bLeaf))
	mids := x509.NewCertPool()
	mids.AddCert(a2.cert)
	if _, err := bLeaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: mids, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Fatal("B's leaf verifies with A's intermediate")
	}

	// With the root cold a rotation on A can start but not complete: the
	// CSR has nowhere to go, and A goes on signing with its intermediate.
	pending := vaultJSON(t, a, dir, "write", "-force", "mastio-ca/intermediate/generate-csr")
	_, err = root.Root.Logical().WriteWithContext(ctx, "root-ca/root/sign-intermediate", map[string]any{"csr": str(t, pending.Data, "csr")})
	if err == nil {
		t.Fatal("the stopped root signed")
	}
	t.Logf("A$ vault write -force mastio-ca/intermediate/generate-csr → public_key_sha256=%s; root$ root/sign-intermediate → %v",
		str(t, pending.Data, "public_key_sha256"), err)
	signAndVerify("A", a, "A2-int.pem", a2.cert)
	if _, err := a.Root.Logical().DeleteWithContext(ctx, "mastio-ca/intermediate/pending"); err != nil {
		t.Fatalf("A: dropping the pending key: %v", err)
	}
	if sec, err := a.Root.Logical().ReadWithContext(ctx, "mastio-ca/intermediate/pending"); err != nil || sec != nil {
		t.Fatalf("A: intermediate/pending after delete: %v %v", sec, err)
	}
	t.Logf("A$ vault delete mastio-ca/intermediate/pending → the unsigned key is dropped; A still signs with intermediate %s", serialHex(a2.cert))
}

// getPEM fetches a raw PEM path of server s without a token.
func getPEM(t *testing.T, s *testvault.Server, path string) string {
	t.Helper()
	code, _, body := httpDo(t, "GET", s.Addr+"/v1/"+path, "", nil, nil)
	if code != 200 || !strings.Contains(string(body), "BEGIN CERTIFICATE") {
		t.Fatalf("GET %s at %s: %d %.200s", path, s.Addr, code, body)
	}
	return string(body)
}

// spkiSHA256 is the hex SHA-256 of a certificate's SubjectPublicKeyInfo,
// as generate-csr's public_key_sha256.
func spkiSHA256(t *testing.T, c *x509.Certificate) string {
	t.Helper()
	return sha256Hex(c.RawSubjectPublicKeyInfo)
}

// serialHex is a certificate's serial as Vault prints it (aa:bb:...).
func serialHex(c *x509.Certificate) string {
	b := c.SerialNumber.Bytes()
	parts := make([]string, len(b))
	for i, x := range b {
		parts[i] = fmt.Sprintf("%02x", x)
	}
	return strings.Join(parts, ":")
}
