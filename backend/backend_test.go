package backend

import (
	"context"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/mastio/vault-plugin-mastio-ca/internal/issuing"
	"github.com/mastio/vault-plugin-mastio-ca/internal/testpki"
)

// getTestBackend returns an initialised backend on in-memory storage.
func getTestBackend(t testing.TB) (*mastioBackend, logical.Storage) {
	t.Helper()
	return getTestBackendWithSystem(t, nil)
}

// getTestBackendWithSystem is getTestBackend with the SystemView Vault
// would give the backend wrapped by wrap (when not nil).
func getTestBackendWithSystem(t testing.TB, wrap func(logical.SystemView) logical.SystemView) (*mastioBackend, logical.Storage) {
	t.Helper()
	config := logical.TestBackendConfig()
	config.StorageView = &logical.InmemStorage{}
	config.Logger = hclog.NewNullLogger()
	if wrap != nil {
		config.System = wrap(config.System)
	}
	b, err := Factory(context.Background(), config)
	if err != nil {
		t.Fatalf("Factory: %v", err)
	}
	mb := b.(*mastioBackend)
	if err := mb.Initialize(context.Background(), &logical.InitializationRequest{Storage: config.StorageView}); err != nil {
		t.Fatalf("Initialize: %v", err)
	}
	return mb, config.StorageView
}

// request runs one request through the backend and fails on a Go error
// (a 500); 4xx answers come back as an error response for the caller.
func request(t testing.TB, b *mastioBackend, s logical.Storage, op logical.Operation, path string, data map[string]any) *logical.Response {
	t.Helper()
	resp, err := requestErr(b, s, op, path, data)
	if err != nil {
		t.Fatalf("%s %s: unexpected error: %v", op, path, err)
	}
	return resp
}

// requestErr runs one request; every SPIFFE leaf it issues must pass
// go-spiffe's X.509-SVID verification (checkSVIDs).
func requestErr(b *mastioBackend, s logical.Storage, op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
	resp, err := b.HandleRequest(context.Background(), &logical.Request{
		Operation:  op,
		Path:       path,
		Data:       data,
		Storage:    s,
		MountPoint: "mastio-ca/",
	})
	if err == nil {
		err = checkSVIDs(resp)
	}
	return resp, err
}

// mustOK fails unless resp is a success.
func mustOK(t testing.TB, resp *logical.Response) *logical.Response {
	t.Helper()
	if resp != nil && resp.IsError() {
		t.Fatalf("unexpected error response: %v", resp.Error())
	}
	return resp
}

// generateCA mints an EC P-256 Org CA for org "acme".
func generateCA(t testing.TB, b *mastioBackend, s logical.Storage) *logical.Response {
	t.Helper()
	return mustOK(t, request(t, b, s, logical.UpdateOperation, "generate", map[string]any{"org_id": "acme"}))
}

// snapshot returns every storage entry, to prove a refused request changed
// nothing.
func snapshot(t testing.TB, s logical.Storage) map[string]string {
	t.Helper()
	out := map[string]string{}
	var walk func(prefix string)
	walk = func(prefix string) {
		keys, err := s.List(context.Background(), prefix)
		if err != nil {
			t.Fatalf("list %q: %v", prefix, err)
		}
		for _, k := range keys {
			if strings.HasSuffix(k, "/") {
				walk(prefix + k)
				continue
			}
			e, err := s.Get(context.Background(), prefix+k)
			if err != nil {
				t.Fatalf("get %q: %v", prefix+k, err)
			}
			out[prefix+k] = string(e.Value)
		}
	}
	walk("")
	return out
}

func assertUnchanged(t testing.TB, before map[string]string, s logical.Storage) {
	t.Helper()
	if after := snapshot(t, s); !reflect.DeepEqual(before, after) {
		t.Fatalf("storage changed by a refused request: %d entries before, %d after", len(before), len(after))
	}
}

func TestBackend_RunningVersionAndPaths(t *testing.T) {
	b, _ := getTestBackend(t)
	if got, want := b.RunningVersion, "v"+Version; got != want {
		t.Fatalf("RunningVersion = %q, want %q", got, want)
	}
	special := b.SpecialPaths()
	if !reflect.DeepEqual(special.SealWrapStorage, []string{caPrefix, pkcs11StorageKey}) {
		t.Fatalf("SealWrapStorage = %v, want [%s %s] (the CA keys, the token's PIN)", special.SealWrapStorage, caPrefix, pkcs11StorageKey)
	}
	if !strings.HasPrefix(orgCA.storageKey(), special.SealWrapStorage[0]) {
		t.Fatalf("CA key %q is not under a seal-wrapped prefix", orgCA.storageKey())
	}
	if !reflect.DeepEqual(special.Unauthenticated, append([]string{"cert", "cert/pem", "intermediate/cert", "bundle"}, crlUnauthenticated...)) {
		t.Fatalf("Unauthenticated = %v", special.Unauthenticated)
	}
}

func TestBackend_InvalidateDropsIssuerCache(t *testing.T) {
	b, s := getTestBackend(t)
	generateCA(t, b, s)
	if b.issuers[orgCA].Load().is == nil {
		t.Fatal("generate did not fill the issuer cache")
	}
	b.invalidate(context.Background(), "config")
	if b.issuers[orgCA].Load().is == nil {
		t.Fatal("an unrelated invalidation dropped the issuer cache")
	}
	b.invalidate(context.Background(), orgCA.storageKey())
	if b.issuers[orgCA].Load().is != nil {
		t.Fatal("invalidating the CA key kept the cache")
	}
	is, err := b.loadIssuer(context.Background(), s, orgCA)
	if err != nil || is == nil {
		t.Fatalf("reload after invalidate: %v, %v", is, err)
	}
}

func TestBackend_DefaultRolesSeededOnce(t *testing.T) {
	b, s := getTestBackend(t)
	resp := mustOK(t, request(t, b, s, logical.ListOperation, "roles/", nil))
	if got := resp.Data["keys"]; !reflect.DeepEqual(got, []string{"agent", "principal"}) {
		t.Fatalf("roles = %v, want [agent principal]", got)
	}
	request(t, b, s, logical.DeleteOperation, "roles/principal", nil)
	if err := b.Initialize(context.Background(), &logical.InitializationRequest{Storage: s}); err != nil {
		t.Fatal(err)
	}
	resp = mustOK(t, request(t, b, s, logical.ListOperation, "roles/", nil))
	if got := resp.Data["keys"]; !reflect.DeepEqual(got, []string{"agent"}) {
		t.Fatalf("after delete + re-initialise roles = %v, want [agent]", got)
	}
}

// badInput is one request that must be refused with status (400 when 0)
// and a message that contains want, leaving storage exactly as it was.
type badInput struct {
	name   string
	path   string
	data   map[string]any
	want   string
	status int
	// setup runs after the CA exists and before the snapshot.
	setup func(t *testing.T, b *mastioBackend, s logical.Storage)
}

func runBadInputs(t *testing.T, withCA bool, cases []badInput) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, s := getTestBackend(t)
			if withCA {
				generateCA(t, b, s)
			}
			if tc.setup != nil {
				tc.setup(t, b, s)
			}
			want := tc.status
			if want == 0 {
				want = http.StatusBadRequest
			}
			assertRefused(t, b, s, tc.path, tc.data, want, tc.want)
		})
	}
}

// assertRefused sends a write that must be answered with status and a
// message containing every one of wants, and leave storage unchanged.
func assertRefused(t *testing.T, b *mastioBackend, s logical.Storage, path string, data map[string]any, status int, wants ...string) {
	t.Helper()
	before := snapshot(t, s)
	req := &logical.Request{Operation: logical.UpdateOperation, Path: path, Data: data, Storage: s, MountPoint: "mastio-ca/"}
	resp, err := b.HandleRequest(context.Background(), req)
	if err != nil {
		t.Fatalf("%s: internal error %v; want %d", path, err, status)
	}
	code, msg := 0, ""
	switch {
	case resp != nil && resp.Data[logical.HTTPStatusCode] != nil:
		code = resp.Data[logical.HTTPStatusCode].(int)
		var body struct{ Errors []string }
		if err := json.Unmarshal([]byte(resp.Data[logical.HTTPRawBody].(string)), &body); err != nil || len(body.Errors) != 1 {
			t.Fatalf("%s: raw body %v is not Vault's error envelope: %v", path, resp.Data[logical.HTTPRawBody], err)
		}
		msg = body.Errors[0]
	case resp != nil && resp.IsError():
		code, _ = logical.RespondErrorCommon(req, resp, nil)
		msg = resp.Error().Error()
	}
	if code != status {
		t.Fatalf("%s: status %d (resp %v); want %d", path, code, resp, status)
	}
	for _, w := range wants {
		if !strings.Contains(msg, w) {
			t.Errorf("%s: message %q lacks %q", path, msg, w)
		}
	}
	assertUnchanged(t, before, s)
}

// putCA stores e as CA name behind the engine's back, as another node
// would, and invalidates as Vault then does.
func putCA(t testing.TB, b *mastioBackend, s logical.Storage, name caName, e *caEntry) {
	t.Helper()
	if err := putEntry(t.Context(), s, name.storageKey(), name.label(), e); err != nil {
		t.Fatal(err)
	}
	b.invalidate(t.Context(), name.storageKey())
}

// orgAndIntermediate makes an Org CA and an intermediate under it outside
// the plugin, valid until orgEnd and interEnd.
func orgAndIntermediate(t *testing.T, orgEnd, interEnd time.Time, orgPathLenZero bool) (orgKey, orgCert, interKey, interCert string, org *x509.Certificate) {
	t.Helper()
	ok := testpki.NewECKey(t, elliptic.P256())
	org = testpki.MakeCert(t, testpki.CACert{Key: ok, IsCA: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, Org: "acme", NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: orgEnd, PathLenZero: orgPathLenZero})
	ik := testpki.NewECKey(t, elliptic.P256())
	inter := testpki.MakeCert(t, testpki.CACert{Key: ik, IsCA: true, KeyUsage: x509.KeyUsageCertSign, Org: "acme", NotBefore: time.Now().Add(-time.Hour), NotAfter: interEnd, Parent: org, ParentKey: ok})
	return testpki.PKCS8PEM(t, ok), testpki.CertPEM(org), testpki.PKCS8PEM(t, ik), testpki.CertPEM(inter), org
}

// mustPKCS8 is the PKCS#8 DER of a PEM private key.
func mustPKCS8(t *testing.T, keyPEM string) []byte {
	t.Helper()
	k, err := issuing.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// newTestRole is a role with one URI SAN matching pattern, built without
// Validate (as stored by an earlier plugin version).
func newTestRole(t *testing.T, pattern string) *issuing.Role {
	t.Helper()
	r := issuing.NewRole()
	r.URISANPattern = pattern
	return r
}
