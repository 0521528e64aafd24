# mastio-spire: what a SPIRE server's UpstreamAuthority "vault" needs
# (pki_mount_point = "mastio-ca"): have the Org CA sign the SPIRE server's
# own CA, under root/profile (pathLen 0, keyCertSign+cRLSign, the trust
# domain's URI SAN, TTL capped), and nothing else. It cannot sign leaves,
# generate, import, rotate, configure or change root/profile, and it may
# send only the fields SPIRE sends (csr, common_name, organization,
# country, uri_sans, ttl): max_path_length, key_usage and the rest are a
# 403 before the plugin sees them. Token login and renewal (auth/token/
# lookup-self, renew-self) come with Vault's default policy.
#
# Put this on the mount that holds the Org CA key (the root); SPIRE's CA
# is then a sibling of the Mastio Intermediate, directly under the Org CA,
# as SPIRE's chain check needs.
#
# The mount is mastio-ca/; change the prefix if yours differs.

path "mastio-ca/root/sign-intermediate" {
  capabilities = ["update"]
  allowed_parameters = {
    "csr"          = []
    "common_name"  = []
    "organization" = []
    "country"      = []
    "uri_sans"     = []
    "ttl"          = []
  }
}
