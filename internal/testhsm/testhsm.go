// Package testhsm gives tests a SoftHSM2 token of their own: a token
// directory and config in a temporary folder, SOFTHSM2_CONF pointing at it,
// and a token initialised with softhsm2-util (Debian's softhsm2, which
// `make deps` installs).
package testhsm

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Module is where Debian's softhsm2 puts its PKCS#11 module.
const Module = "/usr/lib/softhsm/libsofthsm2.so"

// Token is an initialised SoftHSM2 token.
type Token struct {
	Label, PIN, SOPIN string
	// Conf is the SOFTHSM2_CONF file, Dir the token directory it names.
	Conf, Dir string
}

// Available reports why SoftHSM2 cannot be used here ("" when it can).
func Available() string {
	if _, err := os.Stat(Module); err != nil {
		return Module + " is missing: apt-get install softhsm2 (make deps)"
	}
	if _, err := exec.LookPath("softhsm2-util"); err != nil {
		return "softhsm2-util is not on PATH: apt-get install softhsm2 (make deps)"
	}
	return ""
}

// New makes a token directory under t.TempDir(), sets SOFTHSM2_CONF for
// the rest of the test (t.Setenv: not with t.Parallel) and initialises a
// token labelled label. A missing SoftHSM2 fails the test: make test
// installs it.
func New(t testing.TB, label string) *Token {
	t.Helper()
	if why := Available(); why != "" {
		t.Fatal(why)
	}
	dir := t.TempDir()
	tok := &Token{Label: label, PIN: "1234", SOPIN: "123456", Conf: filepath.Join(dir, "softhsm2.conf"), Dir: filepath.Join(dir, "tokens")}
	if err := os.MkdirAll(tok.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", tok.Dir)
	if err := os.WriteFile(tok.Conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", tok.Conf)
	tok.Init(t, label)
	return tok
}

// Init initialises one more token in the same directory.
func (tok *Token) Init(t testing.TB, label string) {
	t.Helper()
	out, err := tok.util("--init-token", "--free", "--label", label, "--pin", tok.PIN, "--so-pin", tok.SOPIN)
	if err != nil {
		t.Fatalf("softhsm2-util --init-token: %v\n%s", err, out)
	}
}

// Env is the environment a process needs to see this token.
func (tok *Token) Env() []string { return []string{"SOFTHSM2_CONF=" + tok.Conf} }

// Hide moves the token's files out of the token directory: the token is
// gone, as when an HSM is unplugged. Restore brings them back.
func (tok *Token) Hide(t testing.TB) {
	t.Helper()
	names, err := os.ReadDir(tok.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(tok.Dir+".away", 0o700); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if err := os.Rename(filepath.Join(tok.Dir, n.Name()), filepath.Join(tok.Dir+".away", n.Name())); err != nil {
			t.Fatal(err)
		}
	}
}

// Restore undoes Hide.
func (tok *Token) Restore(t testing.TB) {
	t.Helper()
	names, err := os.ReadDir(tok.Dir + ".away")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if err := os.Rename(filepath.Join(tok.Dir+".away", n.Name()), filepath.Join(tok.Dir, n.Name())); err != nil {
			t.Fatal(err)
		}
	}
}

func (tok *Token) util(args ...string) ([]byte, error) {
	cmd := exec.Command("softhsm2-util", args...)
	cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+tok.Conf)
	return cmd.CombinedOutput()
}
