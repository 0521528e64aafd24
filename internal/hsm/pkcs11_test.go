//go:build pkcs11

package hsm

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/mastio/vault-plugin-mastio-ca/internal/issuing"
	"github.com/mastio/vault-plugin-mastio-ca/internal/testhsm"
)

func openTest(t *testing.T, tok *testhsm.Token, pin string) *Token {
	t.Helper()
	tk := Open(Config{ModulePath: testhsm.Module, TokenLabel: tok.Label, PIN: pin})
	t.Cleanup(tk.Close)
	return tk
}

func signVerifies(t *testing.T, s crypto.Signer) error {
	t.Helper()
	d := sha256.Sum256([]byte("mastio"))
	sig, err := s.Sign(rand.Reader, d[:], crypto.SHA256)
	if err != nil {
		return err
	}
	if !ecdsa.VerifyASN1(s.Public().(*ecdsa.PublicKey), d[:], sig) {
		t.Fatal("the token's signature does not verify with the key's public half")
	}
	return nil
}

// A key made in the token is sensitive and never extractable, signs, and
// is found again (same public key) by a fresh context on its reference.
func TestGenerateSignReopen(t *testing.T) {
	tok := testhsm.New(t, "hsm-unit")
	tk := openTest(t, tok, tok.PIN)
	ref, s, err := tk.Generate(issuing.KeyTypeEC, 256, "mastio-ca/test/")
	if err != nil {
		t.Fatal(err)
	}
	if len(ref.ID) != 16 || !strings.HasPrefix(ref.Label, "mastio-ca/test/") {
		t.Fatalf("ref %v", ref)
	}
	if err := signVerifies(t, s); err != nil {
		t.Fatal(err)
	}
	attrs, err := tk.KeyAttributes(ref)
	if err != nil {
		t.Fatal(err)
	}
	if !attrs.Protected() {
		t.Fatalf("the private key's attributes allow extraction: %+v", attrs)
	}
	pub := s.Public()
	tk.Close()

	again := openTest(t, tok, tok.PIN)
	if err := signVerifies(t, again.Signer(ref, pub)); err != nil {
		t.Fatalf("a fresh context does not sign with the stored reference: %v", err)
	}
	// A reference whose key is not the certificate's is refused.
	other, _, err := again.Generate(issuing.KeyTypeEC, 256, "other/")
	if err != nil {
		t.Fatal(err)
	}
	if err := signVerifies(t, again.Signer(other, pub)); issuing.KindOf(err) != issuing.KindState {
		t.Fatalf("a key that is not the certificate's: %v", err)
	}
	if err := again.Delete(other); err != nil {
		t.Fatal(err)
	}
	if err := signVerifies(t, again.Signer(other, nil)); issuing.KindOf(err) != issuing.KindUnavailable || !strings.Contains(err.Error(), "holds no key") {
		t.Fatalf("a deleted key: %v", err)
	}
	if _, _, err := again.Generate(issuing.KeyTypeEd25519, 256, "x/"); !issuing.IsInput(err) {
		t.Fatalf("ed25519 in the token: %v", err)
	}
}

// The token taken away while open: signing answers KindUnavailable, never
// panics; put back, the next signature works on re-opened sessions.
func TestLostTokenRecovers(t *testing.T) {
	tok := testhsm.New(t, "hsm-lost")
	tk := openTest(t, tok, tok.PIN)
	ref, s, err := tk.Generate(issuing.KeyTypeEC, 256, "lost/")
	if err != nil {
		t.Fatal(err)
	}
	tok.Hide(t)
	err = signVerifies(t, s)
	if issuing.KindOf(err) != issuing.KindUnavailable {
		t.Fatalf("signing with the token gone: %v", err)
	}
	tok.Restore(t)
	// The failed open is remembered for retryOpenAfter.
	deadline := 0
	for err = signVerifies(t, s); err != nil && deadline < 30; err = signVerifies(t, s) {
		deadline++
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("signing after the token came back: %v", err)
	}
	if err := signVerifies(t, tk.Signer(ref, s.Public())); err != nil {
		t.Fatal(err)
	}
}

// A wrong PIN is a clear KindUnavailable error naming the PIN, never the
// PIN itself, and is not tried again; a missing token says so.
func TestWrongPINAndMissingToken(t *testing.T) {
	tok := testhsm.New(t, "hsm-pin")
	bad := openTest(t, tok, "98765")
	err := bad.Check()
	if issuing.KindOf(err) != issuing.KindUnavailable || !strings.Contains(err.Error(), "refused the PIN") || strings.Contains(err.Error(), "98765") {
		t.Fatalf("wrong PIN: %v", err)
	}
	if again := bad.Check(); again != err {
		t.Fatalf("a refused PIN was tried again: %v", again)
	}
	bad.Close()
	missing := Open(Config{ModulePath: testhsm.Module, TokenLabel: "no-such-token", PIN: tok.PIN})
	defer missing.Close()
	if err := missing.Check(); issuing.KindOf(err) != issuing.KindUnavailable || !strings.Contains(err.Error(), "has no token") {
		t.Fatalf("missing token: %v", err)
	}
}

func TestConfigCheck(t *testing.T) {
	slot := 3
	allowed := []string{testhsm.Module}
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{ModulePath: "/tmp/evil.so", TokenLabel: "a", PIN: "1"}, "not on the plugin's allow-list"},
		{Config{ModulePath: "lib.so", TokenLabel: "a", PIN: "1"}, "absolute"},
		{Config{ModulePath: testhsm.Module, PIN: "1"}, "token_label or slot is required"},
		{Config{ModulePath: testhsm.Module, TokenLabel: "a", Slot: &slot, PIN: "1"}, "not both"},
		{Config{ModulePath: testhsm.Module, TokenLabel: "a"}, "pin is required"},
	} {
		err := c.cfg.Check(allowed)
		if !issuing.IsInput(err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.want)
		}
	}
	if err := (Config{ModulePath: testhsm.Module, TokenLabel: "a", PIN: "1"}).Check(nil); err == nil || !strings.Contains(err.Error(), ModulesEnv) {
		t.Errorf("empty allow-list: %v", err)
	}
	if err := (Config{ModulePath: testhsm.Module, TokenLabel: "a", PIN: "1"}).Check(allowed); err != nil {
		t.Error(err)
	}
}

// Signatures from many goroutines while the token goes away and comes
// back: every failure is KindUnavailable (never a panic or another kind),
// and once it is back every goroutine signs again.
func TestConcurrentSigningThroughLoss(t *testing.T) {
	tok := testhsm.New(t, "hsm-conc")
	tk := openTest(t, tok, tok.PIN)
	_, s, err := tk.Generate(issuing.KeyTypeEC, 256, "conc/")
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	type result struct{ ok, unavailable, other int }
	results := make(chan result)
	d := sha256.Sum256([]byte("x"))
	for i := 0; i < 8; i++ {
		go func() {
			var r result
			for {
				select {
				case <-stop:
					results <- r
					return
				default:
				}
				_, err := s.Sign(rand.Reader, d[:], crypto.SHA256)
				switch {
				case err == nil:
					r.ok++
				case issuing.KindOf(err) == issuing.KindUnavailable:
					r.unavailable++
				default:
					r.other++
					t.Errorf("a signature failed with %v", err)
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	tok.Hide(t)
	time.Sleep(300 * time.Millisecond)
	tok.Restore(t)
	time.Sleep(1500 * time.Millisecond) // past retryOpenAfter and minResetInterval
	close(stop)
	var total result
	for i := 0; i < 8; i++ {
		r := <-results
		total.ok += r.ok
		total.unavailable += r.unavailable
	}
	if total.unavailable == 0 {
		t.Error("no signature failed while the token was gone: the test did not take it away")
	}
	if err := signVerifies(t, s); err != nil {
		t.Fatalf("after the token came back: %v", err)
	}
	t.Logf("%d signatures, %d refused while the token was gone", total.ok, total.unavailable)
}
