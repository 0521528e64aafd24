// Package discover has the API of github.com/hashicorp/go-discover that
// Vault calls, with no cloud providers, so that the Vault servers built for
// our tests do not compile every cloud SDK (see README.md).
package discover

import (
	"errors"
	"fmt"
	"log"
	"sort"
	"strings"
)

// Provider looks up the addresses of other nodes.
type Provider interface {
	Addrs(args map[string]string, l *log.Logger) ([]string, error)
	Help() string
}

// ProviderWithUserAgent is a Provider that takes a user agent.
type ProviderWithUserAgent interface {
	SetUserAgent(s string)
}

// Providers is empty: this build has no cloud auto-join.
var Providers = map[string]Provider{}

// ErrNotBuilt is what every auto-join lookup returns.
var ErrNotBuilt = errors.New("raft auto_join is not built into this Vault (a test build without go-discover's cloud providers); use retry_join with leader_api_addr")

// Discover looks up addresses through its providers.
type Discover struct {
	Providers map[string]Provider
	userAgent string
}

// Option configures a Discover.
type Option func(*Discover) error

// New returns a Discover with the options applied.
func New(opts ...Option) (*Discover, error) {
	d := &Discover{Providers: map[string]Provider{}}
	for _, o := range opts {
		if err := o(d); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// WithUserAgent sets the user agent passed to providers that take one.
func WithUserAgent(agent string) Option {
	return func(d *Discover) error { d.userAgent = agent; return nil }
}

// WithProviders sets the providers.
func WithProviders(m map[string]Provider) Option {
	return func(d *Discover) error { d.Providers = m; return nil }
}

// Names lists the providers' names, sorted.
func (d *Discover) Names() []string {
	names := make([]string, 0, len(d.Providers))
	for n := range d.Providers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Help says that this build has no auto-join.
func (d *Discover) Help() string { return ErrNotBuilt.Error() }

// Addrs parses cfg and always fails: no provider can look anything up here.
func (d *Discover) Addrs(cfg string, _ *log.Logger) ([]string, error) {
	c, err := Parse(cfg)
	if err != nil {
		return nil, err
	}
	if c["provider"] == "" {
		return nil, errors.New("discover: no provider in auto_join")
	}
	return nil, fmt.Errorf("discover: provider %q: %w", c["provider"], ErrNotBuilt)
}

// Config is an auto_join stanza: space-separated key=value pairs.
type Config map[string]string

// Parse splits "provider=aws tag_key=k tag_value=v" into its pairs. Values
// may be double-quoted to hold spaces.
func Parse(s string) (Config, error) {
	c := Config{}
	for rest := strings.TrimSpace(s); rest != ""; rest = strings.TrimSpace(rest) {
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 || strings.ContainsAny(rest[:eq], " \t") {
			return nil, fmt.Errorf("discover: expected key=value in auto_join, at %q", rest)
		}
		key, rest2 := rest[:eq], rest[eq+1:]
		var val string
		if strings.HasPrefix(rest2, `"`) {
			end := strings.IndexByte(rest2[1:], '"')
			if end < 0 {
				return nil, fmt.Errorf("discover: unterminated quote in auto_join value of %s", key)
			}
			val, rest = rest2[1:end+1], rest2[end+2:]
		} else if sp := strings.IndexAny(rest2, " \t"); sp >= 0 {
			val, rest = rest2[:sp], rest2[sp:]
		} else {
			val, rest = rest2, ""
		}
		c[key] = val
	}
	return c, nil
}

// String renders the pairs with provider first and the rest sorted.
func (c Config) String() string {
	keys := make([]string, 0, len(c))
	for k := range c {
		if k != "provider" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if _, ok := c["provider"]; ok {
		keys = append([]string{"provider"}, keys...)
	}
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		v := c[k]
		if strings.ContainsAny(v, " \t\"") {
			v = `"` + strings.ReplaceAll(v, `"`, `\"`) + `"`
		}
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, " ")
}
