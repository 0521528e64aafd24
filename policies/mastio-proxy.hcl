# mastio-proxy: what a Mastio that signs through the plugin needs
# (docs/mastio-integration.md), and nothing more:
#   S1       generate the Org CA on first boot       (create-only: no cas)
#   S3       mint the intermediate on first boot    (create-only: no cas)
#   S4, S5   rotate the intermediate (admin endpoint, 30-days watcher)
#   S6-S8    the Mastio leaf                         sign-public-key/mastio-leaf
#   S9       the nginx server certificate            sign-csr/mastio-server
#   S10, S11 agents, S14 their re-signing            sign-public-key/agent
#   S12      user and workload principals            sign-csr/principal
# and read the CA certificates and health. It cannot replace a CA (no cas
# on generate or intermediate/generate), import, touch the KV mirror or
# kv-export, configure, or manage roles; it cannot end an old
# intermediate's grace early (no grace_period, no drop_earlier). Replacing
# the Org CA (Mastio's dashboard rotate-ca, S2, and migration, S13) is an
# operator's act with the admin policy.
#
# The mount is mastio-ca/; change the prefix if yours differs.

path "mastio-ca/generate" {
  capabilities = ["update"]
  allowed_parameters = {
    "org_id"      = []
    "common_name" = []
    "key_type"    = []
    "key_bits"    = []
    "ttl"         = []
    "path_len"    = []
  }
}

path "mastio-ca/intermediate/generate" {
  capabilities = ["update"]
  allowed_parameters = {
    "key_type"    = []
    "key_bits"    = []
    "ttl"         = []
    "common_name" = []
  }
}

path "mastio-ca/intermediate/rotate" {
  capabilities = ["update"]
  allowed_parameters = {
    "grace_days" = []
    "dry_run"    = []
    "cas"        = []
  }
}

path "mastio-ca/sign-public-key/agent" {
  capabilities = ["update"]
}

path "mastio-ca/sign-public-key/mastio-leaf" {
  capabilities = ["update"]
}

path "mastio-ca/sign-csr/principal" {
  capabilities = ["update"]
}

path "mastio-ca/sign-csr/mastio-server" {
  capabilities = ["update"]
}

path "mastio-ca/cert" {
  capabilities = ["read"]
}

path "mastio-ca/cert/pem" {
  capabilities = ["read"]
}

path "mastio-ca/intermediate/cert" {
  capabilities = ["read"]
}

path "mastio-ca/health" {
  capabilities = ["read"]
}
