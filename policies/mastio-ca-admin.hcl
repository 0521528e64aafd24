# mastio-ca-admin: the operator who runs the CA. Everything on the mount:
# generate and import the CAs, rotate the intermediate, manage roles and
# config, seal the KV mirror's export (kv-export/), and sign.
#
# Key custody does not depend on this policy: no path returns a generated
# key, and an imported key is served by the KV mirror (data/) only while
# its kv_export is on. Leave data/ out of this policy once export is sealed
# if you want even that door closed in the ACL too.
#
# The mount is mastio-ca/; change the prefix if yours differs.

path "mastio-ca/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}

# Registering and upgrading the plugin (register, then tune the mount's
# plugin_version and reload), and enabling the mount. Registration also
# sets the plugin's environment, where the PKCS#11 build reads its module
# allow-list (MASTIO_CA_PKCS11_MODULES, docs/hsm.md): where CA admins and
# Vault's platform operators are different people, give CA admins this
# policy without the sys/plugins/catalog block, so that they cannot choose
# which library the plugin may load.
path "sys/plugins/catalog/secret/mastio-ca" {
  capabilities = ["create", "read", "update", "sudo"]
}

path "sys/plugins/reload/backend" {
  capabilities = ["update", "sudo"]
}

path "sys/mounts/mastio-ca" {
  capabilities = ["create", "read", "update"]
}

path "sys/mounts/mastio-ca/tune" {
  capabilities = ["read", "update"]
}
