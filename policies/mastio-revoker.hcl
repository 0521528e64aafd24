# mastio-revoker: what Mastio's revoke flow (or an incident responder's
# script) needs: revoke certificates this mount issued, and nothing else.
# It cannot sign, generate, import, rotate, configure, tidy or touch the KV
# mirror. The CRLs (crl, issuer/<id>/crl), the issuer certificates and OCSP
# need no token at all.
#
# A revocation is permanent until the certificate expires: give this
# policy only to what decides that an agent's certificate must stop being
# trusted.
#
# The mount is mastio-ca/; change the prefix if yours differs.

path "mastio-ca/revoke" {
  capabilities = ["update"]
}
