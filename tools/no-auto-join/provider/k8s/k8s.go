// Package k8s stands in for go-discover's Kubernetes provider, which Vault
// registers by name: it answers every lookup with discover.ErrNotBuilt.
package k8s

import (
	"log"

	discover "github.com/hashicorp/go-discover"
)

// Provider is the "k8s" auto-join provider, not built here.
type Provider struct{}

// Help says that this build has no auto-join.
func (p *Provider) Help() string { return discover.ErrNotBuilt.Error() }

// Addrs always fails.
func (p *Provider) Addrs(map[string]string, *log.Logger) ([]string, error) {
	return nil, discover.ErrNotBuilt
}
