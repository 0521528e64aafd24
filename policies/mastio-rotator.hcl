# mastio-rotator: what an automated rotation job needs (for example
# Mastio's "30 days left" watcher, which with the plugin becomes a
# `vault write mastio-ca/intermediate/rotate`): rotate the Mastio
# Intermediate CA and read the result, nothing else. It cannot create or
# import a CA, sign, configure, manage roles or touch the KV mirror.
# intermediate/cert and cert need no token; health tells the days left.
#
# The mount is mastio-ca/; change the prefix if yours differs.

# Only cas may be sent: the new intermediate gets the plugin's defaults
# (5 years capped at the Org CA, P-256, 14 days of grace for the old one),
# so this token cannot end the old intermediate's grace early
# (grace_period=0) or choose the new one's lifetime or key.
path "mastio-ca/intermediate/rotate" {
  capabilities = ["update"]
  allowed_parameters = {
    "cas" = []
  }
}

path "mastio-ca/health" {
  capabilities = ["read"]
}
