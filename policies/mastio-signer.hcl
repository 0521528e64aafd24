# mastio-signer: what a sign-only caller (Mastio through the mastio_ca
# Python package, or a Go program through client.KMS) needs to sign, and
# nothing more.
# It can read the CA certificate and sign CSRs and bare public keys under
# any role; it cannot generate, import, rotate, configure, read roles or
# touch the KV mirror. Narrow sign-csr*/sign-public-key* to the roles you
# use where you can: Mastio's are sign-public-key/agent (agents, S10, S11,
# S14), sign-public-key/mastio-leaf (S6-S8), sign-csr/principal (S12) and
# sign-csr/mastio-server (S9); policies/mastio-proxy.hcl is that list plus
# what Mastio's boot and rotation need. intermediate/cert needs no token
# at all.
#
# The mount is mastio-ca/; change the prefix if yours differs.

path "mastio-ca/sign-csr*" {
  capabilities = ["update"]
}

path "mastio-ca/sign-public-key*" {
  capabilities = ["update"]
}

path "mastio-ca/cert*" {
  capabilities = ["read"]
}
