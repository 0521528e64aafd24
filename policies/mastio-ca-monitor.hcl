# mastio-ca-monitor: what `mastio-ca verify --prove=false` needs, for a
# monitoring system's token: the plugin's health (version, days left on
# each CA). The CA certificates (cert, intermediate/cert) need no token.
# It can sign nothing and read nothing secret. The full `mastio-ca verify`
# (test signings through a temporary role) needs mastio-ca-admin.
#
# The mount is mastio-ca/; change the prefix if yours differs.

path "mastio-ca/health" {
  capabilities = ["read"]
}
