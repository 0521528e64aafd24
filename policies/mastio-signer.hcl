# mastio-signer: what Mastio (client.KMS) needs to sign, and nothing more.
# It can read the CA certificate and sign CSRs and bare public keys under
# any role; it cannot generate, import, rotate, configure, read roles or
# touch the KV mirror. Narrow sign-csr*/sign-public-key* to one role
# (e.g. "mastio-ca/sign-csr/agent") where you can. intermediate/cert needs
# no token at all.
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
