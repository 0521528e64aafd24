package main

import (
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// relayFakeVault is Vault's side of the relay: it records how each
// request reached /v1/<mount>/ocsp/ and answers status with answer.
type relayFakeVault struct {
	mu      sync.Mutex
	calls   int
	path    string // as Vault decodes it
	rawPath string // as it came over the wire
	method  string
	status  int
	answer  []byte
}

func (f *relayFakeVault) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.path, f.rawPath, f.method = r.URL.Path, r.URL.EscapedPath(), r.Method
	if f.status != http.StatusOK {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.status)
		_, _ = w.Write([]byte(`{"errors":["no"]}`))
		return
	}
	w.Header().Set("Content-Type", "application/ocsp-response")
	_, _ = w.Write(f.answer)
}

// startRelay serves a relay for mount m in front of vault.
func startRelay(t *testing.T, vault string) *httptest.Server {
	t.Helper()
	relay := httptest.NewServer(&ocspRelay{vault: vault, mount: "m", client: &http.Client{Timeout: 5 * time.Second}})
	t.Cleanup(relay.Close)
	return relay
}

// relayDER is a request whose base64 holds '+', "//" and padding, the
// characters a URL path carries only escaped.
var relayDER = []byte{0xfb, 0xef, 0xbe, 0xff, 0xff, 0xff, 0x01}

func TestOCSPRelay(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString(relayDER)
	if b64 != "++++////AQ==" {
		t.Fatalf("the test's request encodes as %s", b64)
	}
	fake := &relayFakeVault{status: http.StatusOK, answer: []byte("\x30\x03\x0a\x01\x00 signed answer")}
	vault := httptest.NewServer(fake)
	defer vault.Close()
	relay := startRelay(t, vault.URL)

	check := func(t *testing.T, resp *http.Response, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/ocsp-response" || !bytes.Equal(body, fake.answer) {
			t.Fatalf("relay answered %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		fake.mu.Lock()
		defer fake.mu.Unlock()
		if fake.method != http.MethodGet || fake.path != "/v1/m/ocsp/"+b64 {
			t.Errorf("Vault was asked %s %s, want GET /v1/m/ocsp/%s", fake.method, fake.path, b64)
		}
		// '/' goes escaped: Go's server (Vault's) redirects a path with "//".
		if escaped, _ := strings.CutPrefix(fake.rawPath, "/v1/m/ocsp/"); strings.Contains(escaped, "/") {
			t.Errorf("Vault got the base64 unescaped: %s", fake.rawPath)
		}
	}

	t.Run("POST", func(t *testing.T) {
		resp, err := http.Post(relay.URL, "application/ocsp-request", bytes.NewReader(relayDER))
		check(t, resp, err)
	})
	for name, path := range map[string]string{
		"GET, escaped as RFC 6960 asks":     "/" + strings.NewReplacer("+", "%2B", "/", "%2F", "=", "%3D").Replace(b64),
		"GET, path-escaped":                 "/" + url.PathEscape(b64),
		"GET, unescaped (as some clients)":  "/" + b64,
		"GET, '+' and '=' only escaped":     "/" + strings.NewReplacer("+", "%2B", "=", "%3D").Replace(b64),
		"GET, lower-case percent encodings": "/" + strings.NewReplacer("+", "%2b", "/", "%2f", "=", "%3d").Replace(b64),
	} {
		t.Run(name, func(t *testing.T) {
			resp, err := http.Get(relay.URL + path)
			check(t, resp, err)
		})
	}

	callsBefore := func() int { fake.mu.Lock(); defer fake.mu.Unlock(); return fake.calls }
	for _, tc := range []struct {
		name   string
		do     func() (*http.Response, error)
		status int
	}{
		{"oversized POST", func() (*http.Response, error) {
			return http.Post(relay.URL, "application/ocsp-request", bytes.NewReader(make([]byte, maxOCSPBody+1)))
		}, http.StatusRequestEntityTooLarge},
		{"PUT", func() (*http.Response, error) {
			req, _ := http.NewRequest(http.MethodPut, relay.URL, bytes.NewReader(relayDER))
			return http.DefaultClient.Do(req)
		}, http.StatusMethodNotAllowed},
		{"DELETE", func() (*http.Response, error) {
			req, _ := http.NewRequest(http.MethodDelete, relay.URL+"/"+url.PathEscape(b64), nil)
			return http.DefaultClient.Do(req)
		}, http.StatusMethodNotAllowed},
		{"GET of no base64", func() (*http.Response, error) { return http.Get(relay.URL + "/not%20base64!") }, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := callsBefore()
			resp, err := tc.do()
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if callsBefore() != before {
				t.Error("the relay asked Vault")
			}
		})
	}

	t.Run("a POST of exactly the limit", func(t *testing.T) {
		resp, err := http.Post(relay.URL, "application/ocsp-request", bytes.NewReader(make([]byte, maxOCSPBody)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("status %d, want 200", resp.StatusCode)
		}
	})

	t.Run("Vault refuses", func(t *testing.T) {
		fake.mu.Lock()
		fake.status = http.StatusNotFound
		fake.mu.Unlock()
		defer func() { fake.mu.Lock(); fake.status = http.StatusOK; fake.mu.Unlock() }()
		resp, err := http.Post(relay.URL, "application/ocsp-request", bytes.NewReader(relayDER))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("Content-Type") == "application/ocsp-response" {
			t.Errorf("status %d %q, want 502", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	})
}

func TestOCSPRelay_VaultDown(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	addr := down.URL
	down.Close() // nothing listens there now
	relay := startRelay(t, addr)
	for _, do := range []func() (*http.Response, error){
		func() (*http.Response, error) {
			return http.Post(relay.URL, "application/ocsp-request", bytes.NewReader(relayDER))
		},
		func() (*http.Response, error) {
			return http.Get(relay.URL + "/" + url.PathEscape(base64.StdEncoding.EncodeToString(relayDER)))
		},
	} {
		resp, err := do()
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadGateway {
			t.Errorf("status %d, want 502", resp.StatusCode)
		}
	}
}
