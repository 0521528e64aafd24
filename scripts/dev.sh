#!/usr/bin/env bash
# Start (or stop) a local dev Vault with the mastio-ca plugin mounted at
# mastio-ca/, an Org CA minted and a sample CSR signed and verified.
#
#   scripts/dev.sh start    (what `make dev` runs; builds must exist)
#   scripts/dev.sh stop     (what `make dev-stop` runs)
#
# Environment: DEV_PORT (first port to try, default 8200), VERSION (the
# plugin version the binary was built with, default 0.1.0-dev), DEV_STATE
# (the state folder, default .dev; make bench uses .bench so that it leaves
# a running make dev alone). The chosen address is written to $DEV_STATE/addr.
#
# DEV_PKCS11=1 (make bench sets it) also keeps CA keys in an HSM: it makes a
# SoftHSM2 token in $DEV_STATE/softhsm (its own SOFTHSM2_CONF, a random PIN
# in $DEV_STATE/softhsm/pin), registers the PKCS#11 build
# (bin/vault-plugin-mastio-ca-pkcs11, make plugin-pkcs11) as a second plugin,
# mastio-ca-pkcs11, mounts it at mastio-ca-hsm/, writes its config/pkcs11
# and makes an Org CA and an intermediate there with key_backend=pkcs11
# (EC P-256). Off by default: make dev is then as it was.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
state="$root/${DEV_STATE:-.dev}"
vault="$root/bin/vault"
plugin="$root/bin/vault-plugin-mastio-ca"
plugin_pkcs11="$root/bin/vault-plugin-mastio-ca-pkcs11"
softhsm_module=/usr/lib/softhsm/libsofthsm2.so
hsm_mount=mastio-ca-hsm
version="v${VERSION:-0.1.0-dev}"
token=root

stop() {
  if [[ -f "$state/vault.pid" ]]; then
    pid=$(cat "$state/vault.pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      echo "==> stopped dev Vault (pid $pid)"
    fi
    rm -f "$state/vault.pid"
  fi
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start() {
  [[ -x "$vault" ]] || { echo "bin/vault is missing: run make dev" >&2; exit 1; }
  [[ -x "$plugin" ]] || { echo "bin/vault-plugin-mastio-ca is missing: run make dev" >&2; exit 1; }
  if [[ "${DEV_PKCS11:-0}" = 1 ]]; then
    [[ -x "$plugin_pkcs11" ]] || { echo "bin/vault-plugin-mastio-ca-pkcs11 is missing (DEV_PKCS11=1): run make plugin-pkcs11" >&2; exit 1; }
    [[ -f "$softhsm_module" ]] && command -v softhsm2-util >/dev/null ||
      { echo "SoftHSM2 is missing (DEV_PKCS11=1): run make deps (apt-get install softhsm2)" >&2; exit 1; }
  fi
  stop
  rm -rf "$state" && mkdir -p "$state/plugins" "$state/sample"

  port=${DEV_PORT:-8200}
  # The dev server also listens on port+1 for cluster traffic.
  while ! { port_free "$port" && port_free $((port + 1)); }; do
    port=$((port + 2))
    (( port < ${DEV_PORT:-8200} + 200 )) || { echo "no free loopback port near ${DEV_PORT:-8200}" >&2; exit 1; }
  done
  export VAULT_ADDR="http://127.0.0.1:$port" VAULT_TOKEN=$token
  echo "$VAULT_ADDR" > "$state/addr"
  unset VAULT_NAMESPACE VAULT_CACERT

  cp "$plugin" "$state/plugins/"
  printf 'plugin_directory = "%s"\ndisable_mlock = true\n' "$state/plugins" > "$state/vault.hcl"
  echo "==> starting dev Vault at $VAULT_ADDR (log: .dev/vault.log)"
  setsid "$vault" server -dev -dev-root-token-id=$token -dev-listen-address="127.0.0.1:$port" \
    -dev-no-store-token -config="$state/vault.hcl" >"$state/vault.log" 2>&1 < /dev/null &
  echo $! > "$state/vault.pid"

  for i in $(seq 1 300); do
    "$vault" status >/dev/null 2>&1 && break
    kill -0 "$(cat "$state/vault.pid")" 2>/dev/null || { echo "vault exited; see .dev/vault.log" >&2; tail -20 "$state/vault.log" >&2; exit 1; }
    (( i < 300 )) || { echo "vault did not answer within 30s" >&2; exit 1; }
    sleep 0.1
  done

  sha=$(sha256sum "$state/plugins/vault-plugin-mastio-ca" | cut -d' ' -f1)
  echo "==> registering plugin mastio-ca $version (sha256 ${sha:0:12}...)"
  "$vault" plugin register -sha256="$sha" -version="$version" -command=vault-plugin-mastio-ca secret mastio-ca >/dev/null
  "$vault" secrets enable mastio-ca >/dev/null
  echo "==> vault secrets enable mastio-ca: mounted at mastio-ca/"
  # What an audit review needs readable, and nothing key-bearing: the
  # serial, SPIFFE ID and NotAfter of each certificate issued.
  "$vault" secrets tune -audit-non-hmac-response-keys=serial_number \
    -audit-non-hmac-response-keys=spiffe_id -audit-non-hmac-response-keys=not_after \
    -allowed-response-headers=ETag -passthrough-request-headers=If-None-Match mastio-ca/ >/dev/null # the bundle's ETag
  if [ "${DEV_AUDIT:-1}" = 1 ]; then # make bench sets DEV_AUDIT=0: an audit device costs throughput
    "$vault" audit enable file file_path="$state/audit.log" >/dev/null
    echo "==> audit log in $state/audit.log; serial_number, spiffe_id, not_after left readable (vault secrets tune)"
  fi

  echo "==> vault write mastio-ca/generate org_id=acme"
  "$vault" write mastio-ca/generate org_id=acme | grep -E '^(fingerprint_sha256|key_type|not_after|version) '

  cd "$state/sample"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout agent.key -out agent.csr -subj "/CN=acme::agent-1/O=acme" \
    -addext "subjectAltName=URI:spiffe://cullis.local/acme/agent-1" 2>/dev/null
  echo "==> vault write mastio-ca/sign-csr csr=@.dev/sample/agent.csr"
  "$vault" write -field=certificate mastio-ca/sign-csr csr=@agent.csr > agent.pem
  "$vault" read -field=certificate mastio-ca/cert > ca.pem
  echo "==> openssl verify -CAfile ca.pem agent.pem: $(openssl verify -CAfile ca.pem agent.pem)"
  openssl x509 -in agent.pem -noout -subject -ext subjectAltName,basicConstraints | sed 's/^/    /'
  cd "$root"

  hsm_note=""
  if [[ "${DEV_PKCS11:-0}" = 1 ]]; then
    start_hsm
    hsm_note="
The PKCS#11 build (mastio-ca-pkcs11) is mounted at $hsm_mount/: its Org CA's and
intermediate's keys are in the SoftHSM2 token mastio-dev (${state#"$root"/}/softhsm).

    vault read $hsm_mount/health     # *_key_backend pkcs11, pkcs11_status ok
    vault write $hsm_mount/sign-csr csr=@${state#"$root"/}/sample/agent.csr
    mastio-ca verify --mount $hsm_mount
"
  fi

  cat <<EOF

Dev Vault is running with the mastio-ca plugin ($version) mounted at mastio-ca/.

    export VAULT_ADDR=$VAULT_ADDR
    export VAULT_TOKEN=$token
    export PATH="$root/bin:\$PATH"    # the pinned vault CLI and mastio-ca

Try next:

    vault read mastio-ca/cert
    vault path-help mastio-ca/sign-csr
    vault write mastio-ca/sign-csr/principal csr=@.dev/sample/agent.csr   # refused: wrong SPIFFE ID shape
    mastio-ca verify                     # CAs, days left, proof of possession, chain
    mastio-ca audit-report $state/audit.log   # who signed what, and every flag
    curl -si \$VAULT_ADDR/v1/mastio-ca/bundle   # the SPIFFE trust bundle, with its ETag
    vault path-help mastio-ca/root/sign-intermediate   # cold root + issuing Vaults, SPIRE: docs/spiffe.md

The sample key, CSR and certificate are in .dev/sample/. Stop with: make dev-stop
EOF
  printf '%s' "$hsm_note"
}

# start_hsm makes the SoftHSM2 token, registers and mounts the PKCS#11
# build and makes its two CAs in the token (DEV_PKCS11=1).
start_hsm() {
  local dir="$state/softhsm" label=mastio-dev sha sample="$state/sample"
  mkdir -p "$dir/tokens"
  chmod 700 "$dir"
  printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' "$dir/tokens" > "$dir/softhsm2.conf"
  (umask 077 && openssl rand -hex 8 | tr -d '\n' > "$dir/pin")
  echo "==> softhsm2-util --init-token --label $label (SOFTHSM2_CONF=${dir#"$root"/}/softhsm2.conf, PIN in ${dir#"$root"/}/pin)"
  SOFTHSM2_CONF="$dir/softhsm2.conf" softhsm2-util --init-token --free --label "$label" \
    --pin "$(cat "$dir/pin")" --so-pin "$(openssl rand -hex 8)" >/dev/null

  cp "$plugin_pkcs11" "$state/plugins/"
  sha=$(sha256sum "$state/plugins/vault-plugin-mastio-ca-pkcs11" | cut -d' ' -f1)
  echo "==> registering plugin mastio-ca-pkcs11 $version (sha256 ${sha:0:12}..., -env MASTIO_CA_PKCS11_MODULES=$softhsm_module -env SOFTHSM2_CONF=...)"
  "$vault" plugin register -sha256="$sha" -version="$version" -command=vault-plugin-mastio-ca-pkcs11 \
    -env "MASTIO_CA_PKCS11_MODULES=$softhsm_module" -env "SOFTHSM2_CONF=$dir/softhsm2.conf" \
    secret mastio-ca-pkcs11 >/dev/null
  "$vault" secrets enable -path="$hsm_mount" mastio-ca-pkcs11 >/dev/null
  "$vault" secrets tune -audit-non-hmac-response-keys=serial_number \
    -audit-non-hmac-response-keys=spiffe_id -audit-non-hmac-response-keys=not_after \
    -allowed-response-headers=ETag -passthrough-request-headers=If-None-Match "$hsm_mount/" >/dev/null
  echo "==> vault secrets enable -path=$hsm_mount mastio-ca-pkcs11: mounted at $hsm_mount/"
  echo "==> vault write $hsm_mount/config/pkcs11 module_path=$softhsm_module token_label=$label pin=@${dir#"$root"/}/pin"
  "$vault" write "$hsm_mount/config/pkcs11" module_path="$softhsm_module" token_label="$label" pin=@"$dir/pin" >/dev/null
  echo "==> vault write $hsm_mount/generate org_id=acme key_backend=pkcs11"
  "$vault" write "$hsm_mount/generate" org_id=acme key_backend=pkcs11 | grep -E '^(fingerprint_sha256|key_backend|key_type) '
  echo "==> vault write $hsm_mount/intermediate/generate key_backend=pkcs11 key_type=ec key_bits=256"
  "$vault" write "$hsm_mount/intermediate/generate" key_backend=pkcs11 key_type=ec key_bits=256 | grep -E '^(fingerprint_sha256|key_backend|key_type) '

  "$vault" write -field=certificate "$hsm_mount/sign-csr" csr=@"$sample/agent.csr" > "$sample/agent-hsm.pem"
  "$vault" read -field=certificate "$hsm_mount/cert" > "$sample/ca-hsm.pem"
  "$vault" read -field=certificate "$hsm_mount/intermediate/cert" > "$sample/intermediate-hsm.pem"
  echo "==> vault write $hsm_mount/sign-csr, openssl verify through the intermediate: $(cd "$sample" && openssl verify -CAfile ca-hsm.pem -untrusted intermediate-hsm.pem agent-hsm.pem)"
  "$vault" read -format=json "$hsm_mount/health" | grep -E '"(org-ca|intermediate-ca)_key_backend"|"pkcs11_status"' | sed 's/^ */    /'
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
