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
# so this token cannot choose the new one's lifetime or key, nor end any
# old intermediate's grace early: not with grace_period=0 or drop_earlier
# (refused by this policy), and not by rotating again (every rotated-out
# intermediate stays published until its own grace ends; once 16 are,
# a further rotation is refused until one's grace is over).
path "mastio-ca/intermediate/rotate" {
  capabilities = ["update"]
  allowed_parameters = {
    "cas" = []
  }
}

path "mastio-ca/health" {
  capabilities = ["read"]
}
