# mastio-cert-manager: what cert-manager's Vault Issuer needs with
# spec.vault.path = "mastio-ca/sign/k8s-workload": sign CSRs under that one
# role, in Vault PKI's request shape, and nothing else. Every name the
# request lists is checked against the CSR and the role judges the CSR as
# sign-csr does. Readiness (sys/health) needs no policy.
#
# Name the role your Issuer uses; one policy per role keeps a namespace's
# Issuer from signing under another's profile.
#
# The mount is mastio-ca/; change the prefix if yours differs.

path "mastio-ca/sign/k8s-workload" {
  capabilities = ["update"]
}
