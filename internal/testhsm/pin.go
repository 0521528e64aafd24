//go:build pkcs11

package testhsm

import (
	"testing"

	"github.com/miekg/pkcs11"
)

// SetPIN changes the user PIN of the token from tok.PIN to pin through
// PKCS#11 (C_SetPIN), as an operator would behind the plugin's back. It
// needs SOFTHSM2_CONF set to tok.Conf in this process (New does).
func (tok *Token) SetPIN(t testing.TB, pin string) {
	t.Helper()
	p := pkcs11.New(Module)
	if p == nil {
		t.Fatal("loading " + Module)
	}
	defer p.Destroy()
	if err := p.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer p.Finalize()
	slots, err := p.GetSlotList(true)
	if err != nil {
		t.Fatal(err)
	}
	for _, slot := range slots {
		info, err := p.GetTokenInfo(slot)
		if err != nil || info.Label != tok.Label {
			continue
		}
		s, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
		if err != nil {
			t.Fatal(err)
		}
		defer p.CloseSession(s)
		if err := p.Login(s, pkcs11.CKU_USER, tok.PIN); err != nil {
			t.Fatal(err)
		}
		if err := p.SetPIN(s, tok.PIN, pin); err != nil {
			t.Fatal(err)
		}
		tok.PIN = pin
		return
	}
	t.Fatalf("no token %q", tok.Label)
}
