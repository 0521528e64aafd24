package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// fakeVault answers every request with status and body.
func fakeVault(t *testing.T, status int, body string) *api.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	conf := api.DefaultConfig()
	conf.Address = srv.URL
	conf.MaxRetries = 0
	c, err := api.NewClient(conf)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken("test")
	return c
}

func TestErrorMapping(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		call   func(*Client) error
		want   error
	}{
		{"sign refused", 400, `{"errors":["csr carries 2 URI SANs"]}`, func(c *Client) error {
			_, err := c.SignCSR(context.Background(), []byte("x"), SignOptions{})
			return err
		}, ErrPolicy},
		{"bad generate field", 400, `{"errors":["unknown key_type"]}`, func(c *Client) error { _, err := c.Generate(context.Background(), GenerateRequest{}); return err }, ErrInvalidRequest},
		{"exists", 409, `{"errors":["an Org CA already exists (version 1)"]}`, func(c *Client) error {
			_, err := c.Generate(context.Background(), GenerateRequest{OrgID: "a"})
			return err
		}, ErrExists},
		{"denied", 403, `{"errors":["permission denied"]}`, func(c *Client) error { _, err := c.CA(context.Background()); return err }, ErrPermissionDenied},
		{"sealed", 503, `{"errors":["Vault is sealed"]}`, func(c *Client) error { _, err := c.CA(context.Background()); return err }, ErrSealed},
		{"token gone", 503, `{"errors":["signing certificate: the PKCS#11 module has no token \"mastio\""]}`, func(c *Client) error {
			_, err := c.SignCSR(context.Background(), []byte("csr"), SignOptions{Role: "agent"})
			return err
		}, ErrKeyUnavailable},
		{"no CA", 404, `{"errors":[]}`, func(c *Client) error { _, err := c.CA(context.Background()); return err }, ErrNotFound},
		{"no role", 404, `{"errors":[]}`, func(c *Client) error { _, err := c.Role(context.Background(), "x"); return err }, ErrNotFound},
		{"stale intermediate", 422, `{"errors":["the Mastio Intermediate CA was signed by a previous Org CA"]}`, func(c *Client) error {
			_, err := c.SignCSR(context.Background(), []byte("x"), SignOptions{})
			return err
		}, ErrCAState},
	}
	sentinels := []error{ErrNotFound, ErrExists, ErrPolicy, ErrInvalidRequest, ErrPermissionDenied, ErrSealed, ErrCAState, ErrKeyUnavailable}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(New(fakeVault(t, tc.status, tc.body), "mastio-ca"))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want errors.Is %v", err, tc.want)
			}
			for _, s := range sentinels {
				if s != tc.want && errors.Is(err, s) {
					t.Errorf("err also matches %v", s)
				}
			}
			var e *Error
			if !errors.As(err, &e) || e.StatusCode != tc.status {
				t.Fatalf("err is not an *Error with status %d: %#v", tc.status, err)
			}
		})
	}
}

// TestKMS_HasNoKeyMethod pins the KMS's method set: adding a method is a
// deliberate act that must revisit the sign-only promise.
func TestKMS_HasNoKeyMethod(t *testing.T) {
	typ := reflect.TypeFor[*KMS]()
	var names []string
	for i := 0; i < typ.NumMethod(); i++ {
		names = append(names, typ.Method(i).Name)
	}
	if want := []string{"CACertificate", "Sign", "SignPublicKey"}; !slices.Equal(names, want) {
		t.Fatalf("KMS methods = %v, want exactly %v", names, want)
	}
}

// TestWriteRole_SendsOnlySetFields: a partial update must not reset the
// role's subject templates or booleans.
func TestWriteRole_SendsOnlySetFields(t *testing.T) {
	var got map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = nil
		_ = json.NewDecoder(r.Body).Decode(&got)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	conf := api.DefaultConfig()
	conf.Address = srv.URL
	vc, err := api.NewClient(conf)
	if err != nil {
		t.Fatal(err)
	}
	c := New(vc, "mastio-ca")
	if err := c.WriteRole(context.Background(), "agent", Role{TTL: 48 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	if want := map[string]any{"ttl": float64(48 * 3600)}; !reflect.DeepEqual(got, want) {
		t.Fatalf("partial update sent %v, want %v", got, want)
	}
	if err := c.WriteRole(context.Background(), "agent", Role{AllowDNSSANs: Bool(false), SubjectCommonName: String("")}); err != nil {
		t.Fatal(err)
	}
	if want := map[string]any{"allow_dns_sans": false, "subject_common_name": ""}; !reflect.DeepEqual(got, want) {
		t.Fatalf("explicit false/empty sent %v, want %v", got, want)
	}
}
