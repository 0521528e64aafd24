#!/usr/bin/env bash
# Build a pinned Vault server from one of the tool modules in tools/.
#
#   scripts/build-vault.sh tools/vault bin/vault
#
# The build uses Vault's own `minimal` tag (command/commands_min.go,
# helper/builtinplugins/registry_min.go, since Vault 1.18): kv, pki,
# transit and ssh secrets; approle, cert, jwt/oidc and userpass auth; the
# audit devices; inmem and raft storage. That is everything the tests and
# `make dev` use. The tool modules also replace go-discover (raft cloud
# auto-join) with tools/no-auto-join; see tools/README.md.
# CGO_ENABLED=0 as in HashiCorp's own release builds (and no C compiler
# runs); -trimpath and -s -w keep build paths, the symbol table and DWARF
# out of the binary; panics still print full stack traces (the pcln table
# stays). The plugin and CLI are built with the same flags, so they and
# Vault share the compiled standard library.
#
# A cold build takes minutes on 2 cores, so this prints what it is doing
# every 30 seconds instead of pausing silently.
set -euo pipefail

dir=${1:?usage: build-vault.sh TOOL_DIR OUT}
out=${2:?usage: build-vault.sh TOOL_DIR OUT}
go=${GO:-go}
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac

version=$(awk '$1 == "github.com/hashicorp/vault" { print $2; exit }' "$dir/go.mod")
echo "==> building Vault $version (-tags minimal) from $dir into ${out#"$PWD"/}"
echo "    first build on a new machine: about 4 min of compile on 2 cores (and 2-3 min of module download if the module cache is empty); cached afterwards"

start=$(date +%s)
# The ticker waits with bash's own read -t, not a sleep process, so that
# nothing outlives the build holding a pipe that reads this script open.
(
  while ! read -rt 30 <> <(:); do
    echo "    ... still compiling Vault $version ($(( $(date +%s) - start ))s so far)"
  done
) &
ticker=$!
trap 'kill "$ticker" 2>/dev/null || true' EXIT

mkdir -p "$(dirname "$out")"
# Build to a temporary name so an interrupted build never leaves a
# half-written binary that make would take as up to date.
(cd "$dir" && CGO_ENABLED=0 "$go" build -tags minimal -trimpath -ldflags '-s -w' -o "$out.tmp" github.com/hashicorp/vault)
mv "$out.tmp" "$out"

kill "$ticker" 2>/dev/null || true
echo "==> $(basename "$out") built in $(( $(date +%s) - start ))s: $("$out" version), $(du -m "$out" | cut -f1) MB"
