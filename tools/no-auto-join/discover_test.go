package discover

import (
	"errors"
	"testing"
)

func TestParseAndString(t *testing.T) {
	c, err := Parse(`provider=aws  tag_key=role tag_value="vault server" region=eu-west-1`)
	if err != nil {
		t.Fatal(err)
	}
	if c["provider"] != "aws" || c["tag_value"] != "vault server" || len(c) != 4 {
		t.Fatalf("parsed %v", c)
	}
	if got, want := c.String(), `provider=aws region=eu-west-1 tag_key=role tag_value="vault server"`; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
	for _, bad := range []string{"provider", "=aws", `provider="aws`, "a b=c"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestAddrsSaysNotBuilt(t *testing.T) {
	d, err := New(WithProviders(Providers))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Addrs("provider=aws tag_key=k tag_value=v", nil); !errors.Is(err, ErrNotBuilt) {
		t.Fatalf("Addrs: %v, want ErrNotBuilt", err)
	}
}
