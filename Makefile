# vault-plugin-mastio-ca — see README.md.
#
#   make dev     build everything, start a dev Vault with the plugin mounted
#   make test    lint + every test, acceptance against a real Vault included

SHELL := /bin/bash
.DEFAULT_GOAL := build

GO        ?= go
VERSION   ?= 0.1.0-dev
COMMIT    := $(shell git rev-parse --short HEAD 2>/dev/null)
MODULE    := github.com/mastio/vault-plugin-mastio-ca
LDFLAGS   := -X $(MODULE)/backend.Version=$(VERSION) -X $(MODULE)/backend.Commit=$(COMMIT)
BIN       := $(CURDIR)/bin
PLUGIN    := $(BIN)/vault-plugin-mastio-ca
# The PKCS#11 build of the same plugin (cgo, -tags pkcs11): CA keys in an
# HSM. docs/hsm.md; DECISIONS.md says why it is a second binary.
PLUGIN_PKCS11 := $(BIN)/vault-plugin-mastio-ca-pkcs11
VAULT     := $(BIN)/vault
STATICCHECK_VERSION := v0.8.2
FUZZTIME  ?= 60s
# Debian packages the tests and `make dev` need, as "check:package" pairs:
# openssl makes and verifies certificates as an outside judge; postgresql
# serves the migration tests; python3-cryptography makes Mastio's Fernet
# rows with an implementation independent of ours; httpx, pytest and
# pytest-asyncio run the Python package's tests (python/), with Debian's
# /usr/bin/python3: there is no PyPI here. softhsm2 is the PKCS#11 token
# the HSM tests make keys in.
PYTHON    := /usr/bin/python3
APT_NEEDS := \
  "command -v openssl:openssl" \
  "ls /usr/lib/postgresql/*/bin/initdb:postgresql" \
  "$(PYTHON) -c 'import cryptography':python3-cryptography" \
  "$(PYTHON) -c 'import httpx':python3-httpx" \
  "$(PYTHON) -c 'import pytest':python3-pytest" \
  "$(PYTHON) -c 'import pytest_asyncio':python3-pytest-asyncio" \
  "command -v script:bsdutils" \
  "command -v curl:curl" \
  "command -v softhsm2-util && test -f /usr/lib/softhsm/libsofthsm2.so:softhsm2"

export VAULT_BIN := $(VAULT)

.PHONY: build plugin plugin-pkcs11 cli release dev dev-stop test test-pkcs11 test-python test-compat unit testacc soak fuzz bench fmt lint deps clean

build: plugin plugin-pkcs11 cli

# Static and path-free, as the release builds are; built the same way as
# bin/vault (scripts/build-vault.sh), so a first build compiles Go's
# standard library once for all three.
BUILDFLAGS := -trimpath -ldflags "$(LDFLAGS)"
# The compiler and linker collect garbage only past 3 GiB of heap each: the
# plugin's cold build took 61 s instead of 78 s (BENCHMARKS.md, "A fresh
# machine"), at up to twice the memory per compile. BUILD_ENV= builds with
# Go's defaults. Builds only, never tests or servers.
BUILD_ENV ?= GOGC=off GOMEMLIMIT=3GiB

plugin:
	$(BUILD_ENV) CGO_ENABLED=0 $(GO) build $(BUILDFLAGS) -o $(PLUGIN) ./cmd/vault-plugin-mastio-ca

# Dynamically linked against the C library (it dlopens the HSM's module);
# built for this machine only.
plugin-pkcs11:
	$(BUILD_ENV) CGO_ENABLED=1 $(GO) build -tags pkcs11 $(BUILDFLAGS) -o $(PLUGIN_PKCS11) ./cmd/vault-plugin-mastio-ca

cli:
	$(BUILD_ENV) CGO_ENABLED=0 $(GO) build $(BUILDFLAGS) -o $(BIN)/mastio-ca ./cmd/mastio-ca

# Release binaries of the plugin and the CLI, static (CGO_ENABLED=0), with
# version and commit stamped, the PKCS#11 plugin (cgo) for linux/amd64, and
# their SHA256SUMS, in dist/.
RELEASE_TARGETS := linux/amd64 linux/arm64 darwin/arm64
release:
	rm -rf dist && mkdir -p dist
	@set -e; for t in $(RELEASE_TARGETS); do os=$${t%/*}; arch=$${t#*/}; \
	  echo "==> $$os/$$arch"; \
	  $(BUILD_ENV) CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build $(BUILDFLAGS) \
	    -o dist/vault-plugin-mastio-ca_v$(VERSION)_$${os}_$${arch} ./cmd/vault-plugin-mastio-ca; \
	  $(BUILD_ENV) CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build $(BUILDFLAGS) \
	    -o dist/mastio-ca_v$(VERSION)_$${os}_$${arch} ./cmd/mastio-ca; \
	done
	@echo "==> linux/amd64 (PKCS#11, cgo)"
	$(BUILD_ENV) CGO_ENABLED=1 GOOS=linux GOARCH=amd64 $(GO) build -tags pkcs11 $(BUILDFLAGS) \
	  -o dist/vault-plugin-mastio-ca-pkcs11_v$(VERSION)_linux_amd64 ./cmd/vault-plugin-mastio-ca
	cd dist && sha256sum * > SHA256SUMS && cat SHA256SUMS

# The pinned Vault server (tools/vault/go.mod), built with Vault's `minimal`
# tag by scripts/build-vault.sh: about 4 minutes of compile on 2 cores the
# first time, cached in bin/ afterwards.
$(VAULT): tools/vault/go.mod tools/vault/go.sum scripts/build-vault.sh
	@$(BUILD_ENV) GO=$(GO) scripts/build-vault.sh tools/vault $(VAULT)

bin/vault: $(VAULT)

# The oldest Vault release we support, and any other we test, one tool
# module each (tools/vault-<minor>/go.mod); built the same way into
# bin/vault-<minor>. `make test-compat` runs the smoke subset of the
# acceptance tests (register, enable, generate, intermediate, sign-csr, the
# KV mirror through the official client, upgrade in place, version) against
# each; COMPAT=1.18 picks some.
COMPAT ?= $(sort $(patsubst tools/vault-%/go.mod,%,$(wildcard tools/vault-*/go.mod)))
SMOKE  := ^(TestCLI_EnableGenerateSignVerify|TestIntermediate_ThreeTier|TestKV_OfficialClient|TestUpgradeInPlace|TestVersion_CLIMatchesPlugin)$$

$(BIN)/vault-%: tools/vault-%/go.mod tools/vault-%/go.sum scripts/build-vault.sh
	@$(BUILD_ENV) GO=$(GO) scripts/build-vault.sh tools/vault-$* $@

bin/vault-%: $(BIN)/vault-% ;

test-compat: deps $(COMPAT:%=$(BIN)/vault-%)
	@for v in $(COMPAT); do \
	  echo "==> smoke tests against $$($(BIN)/vault-$$v version) (bin/vault-$$v)"; \
	  VAULT_BIN=$(BIN)/vault-$$v $(GO) test -count=1 -timeout 20m -run '$(SMOKE)' ./tests/acceptance/ || exit 1; \
	done

# Debian packages, installed only when missing (CI runs as root).
deps:
	@missing=""; for need in $(APT_NEEDS); do \
	  check="$${need%:*}"; pkg="$${need##*:}"; \
	  sh -c "$$check" >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "==> installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

# DEV_PKCS11=1 also mounts the PKCS#11 build at mastio-ca-hsm/, its CA keys
# in a SoftHSM2 token made in .dev/softhsm (scripts/dev.sh).
DEV_PKCS11 ?= 0
dev: deps plugin cli $(VAULT) $(if $(filter 1,$(DEV_PKCS11)),plugin-pkcs11)
	@DEV_PKCS11=$(DEV_PKCS11) VERSION=$(VERSION) scripts/dev.sh start

dev-stop:
	@scripts/dev.sh stop

# Everything: gofmt, vet, staticcheck, then unit tests, fuzz seeds and the
# acceptance tests against bin/vault, all under the race detector. Go test
# prints its own summary.
test: deps lint $(VAULT)
	$(GO) test -race -count=1 -timeout 30m ./...
	@$(MAKE) --no-print-directory test-pkcs11
	cd tools/no-auto-join && $(GO) test -count=1 ./...
	@$(MAKE) --no-print-directory test-python

# The Python package (python/mastio_ca) against a dev Vault of its own with
# the plugin built from this tree.
test-python: deps plugin $(VAULT)
	VAULT_BIN=$(VAULT) MASTIO_CA_PLUGIN=$(PLUGIN) $(PYTHON) -m pytest -q -p no:cacheprovider python/tests

# The PKCS#11 build's tests, against SoftHSM2 tokens each test makes in a
# temporary folder: the token layer, the backend, and the acceptance tests
# on the real Vault with the pkcs11 plugin build registered.
PKCS11_TESTS := ^TestPKCS11
test-pkcs11: deps $(VAULT)
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 20m -tags pkcs11 ./internal/hsm/
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 20m -tags pkcs11 -run '$(PKCS11_TESTS)' ./backend/ ./tests/acceptance/

unit:
	$(GO) test -count=1 -short ./...

testacc: deps $(VAULT)
	$(GO) test -count=1 -v -timeout 30m ./tests/acceptance/

# Long runs kept out of CI; their figures go to RELIABILITY.md.
soak: deps $(VAULT)
	MASTIO_SOAK=1 $(GO) test -count=1 -v -timeout 60m -run 'TestSoak' ./tests/acceptance/

fuzz:
	@for f in FuzzParseCSR FuzzParsePrivateKeyPEM FuzzParsePublicKeyPEM FuzzURIPattern FuzzLeafTemplate FuzzValidateSignedIntermediate; do \
	  $(GO) test ./internal/issuing -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) || exit 1; \
	done

# Go benchmarks (no server; the PKCS#11 ones, cgo, against a SoftHSM2
# token of their own), then `mastio-ca bench` against a dev Vault of its
# own (in .bench/, so a running `make dev` is left alone) that also has the
# PKCS#11 build mounted at mastio-ca-hsm/ with its CA keys in a SoftHSM2
# token (DEV_PKCS11=1): A/B/C and H table written into BENCHMARKS.md
# between its bench markers.
bench: deps plugin plugin-pkcs11 cli $(VAULT)
	$(GO) test -run '^$$' -bench . -benchmem ./backend/ ./internal/issuing/
	CGO_ENABLED=1 $(GO) test -tags pkcs11 -run '^$$' -bench PKCS11 -benchmem ./backend/
	@DEV_STATE=.bench DEV_PORT=8400 DEV_AUDIT=0 DEV_PKCS11=1 VERSION=$(VERSION) scripts/dev.sh start >/dev/null
	@VAULT_ADDR=$$(cat .bench/addr) VAULT_TOKEN=root $(BIN)/mastio-ca bench --hsm-mount mastio-ca-hsm --out BENCHMARKS.md; \
	  rc=$$?; DEV_STATE=.bench scripts/dev.sh stop >/dev/null; exit $$rc

fmt:
	gofmt -w $$(git ls-files '*.go')

$(BIN)/staticcheck:
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint: $(BIN)/staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(BIN)/staticcheck ./...
	CGO_ENABLED=1 $(GO) vet -tags pkcs11 ./...
	CGO_ENABLED=1 $(BIN)/staticcheck -tags pkcs11 ./...
	cd tools/no-auto-join && $(GO) vet ./... && $(BIN)/staticcheck ./...

clean: dev-stop
	rm -f $(PLUGIN) $(PLUGIN_PKCS11) $(BIN)/mastio-ca $(BIN)/staticcheck
