// Stands in for github.com/hashicorp/go-discover in the Vault servers we
// build for tests and `make dev` (tools/vault*/go.mod replace it with this
// folder). See README.md beside this file.
module github.com/hashicorp/go-discover

go 1.21
