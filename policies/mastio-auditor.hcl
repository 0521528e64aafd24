# mastio-auditor: what `mastio-ca audit-report --serial/--spiffe-id` needs
# to find a certificate in an audit log that holds only HMACs: Vault's
# sys/audit-hash, which turns a known value into the HMAC the audit device
# writes. It reveals nothing the log does not already hold, and reads no
# secret; it cannot read the log itself (the file is the auditor's).
path "sys/audit-hash/*" {
  capabilities = ["update"]
}
