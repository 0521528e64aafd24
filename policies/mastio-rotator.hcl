# mastio-rotator: what an automated rotation job needs (for example
# Mastio's "30 days left" watcher, which with the plugin becomes a
# `vault write mastio-ca/intermediate/rotate`): rotate the Mastio
# Intermediate CA and read the result, nothing else. It cannot create or
# import a CA, sign, configure, manage roles or touch the KV mirror.
# intermediate/cert and cert need no token; health tells the days left.
#
# The mount is mastio-ca/; change the prefix if yours differs.

path "mastio-ca/intermediate/rotate" {
  capabilities = ["update"]
}

path "mastio-ca/health" {
  capabilities = ["read"]
}
