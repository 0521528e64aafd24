package backend

// Version is the plugin's semantic version without the leading "v". Release
// builds and the test harness set it with
// -ldflags "-X github.com/mastio/vault-plugin-mastio-ca/backend.Version=...",
// and Vault's catalog must be registered with the same "-version=v<Version>".
var Version = "0.1.0-dev"

// Commit is the source revision, injected with -ldflags -X like Version.
var Commit = ""
