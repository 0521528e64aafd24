// Command vault-plugin-mastio-ca is the Vault secrets-engine plugin binary.
// Vault starts it; it is not meant to be run by hand.
//
// The plugin logs to Vault's log at info level. To see a debug line for
// every certificate signed, register it with
// `-env MASTIO_CA_LOG_LEVEL=debug` (trace, debug, info, warn, error).
package main

import (
	"os"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/sdk/plugin"

	"github.com/mastio/vault-plugin-mastio-ca/backend"
)

// logLevelEnv names the environment variable that sets the plugin's log level.
const logLevelEnv = "MASTIO_CA_LOG_LEVEL"

func main() {
	apiClientMeta := &api.PluginAPIClientMeta{}
	flags := apiClientMeta.FlagSet()
	flags.Parse(os.Args[1:])

	tlsConfig := apiClientMeta.GetTLSConfig()
	tlsProviderFunc := api.VaultPluginTLSProvider(tlsConfig)

	logger, badLevel := newLogger(os.Getenv(logLevelEnv))
	if badLevel {
		logger.Warn("unknown log level, using info", "env", logLevelEnv, "value", os.Getenv(logLevelEnv))
	}
	if err := plugin.ServeMultiplex(&plugin.ServeOpts{
		BackendFactoryFunc: backend.Factory,
		TLSProviderFunc:    tlsProviderFunc,
		Logger:             logger,
	}); err != nil {
		logger.Error("plugin shutting down", "error", err)
		os.Exit(1)
	}
}

// newLogger makes the logger Vault reads from the plugin's stderr: JSON
// lines, which Vault re-logs under its own level. Vault does not tell a
// plugin its level, so the plugin filters on its own; the SDK's default of
// trace would send (and make Vault parse, then drop) a line per signing.
// badLevel reports a level that is set but not known.
func newLogger(level string) (logger hclog.Logger, badLevel bool) {
	l := hclog.Info
	if level != "" {
		if l = hclog.LevelFromString(level); l == hclog.NoLevel {
			l, badLevel = hclog.Info, true
		}
	}
	return hclog.New(&hclog.LoggerOptions{Level: l, Output: os.Stderr, JSONFormat: true}), badLevel
}
