package backend

import (
	"sort"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// rejectUnknownFields answers 400 when the request body carries a field the
// path does not define. Vault would only warn, and on a CA a mistyped
// policy field ("alow_dns_sans") must not be silently ignored.
func rejectUnknownFields(req *logical.Request, d *framework.FieldData) *logical.Response {
	var unknown []string
	for k := range req.Data {
		if _, ok := d.Schema[k]; !ok {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	known := make([]string, 0, len(d.Schema))
	for k := range d.Schema {
		known = append(known, k)
	}
	sort.Strings(known)
	return logical.ErrorResponse("unknown field(s) %s; this path accepts %s", strings.Join(unknown, ", "), strings.Join(known, ", "))
}

// respondErr answers an inputError with a 400 carrying its message and
// passes every other error up (coded errors keep their status, the rest
// become a 500).
func respondErr(err error) (*logical.Response, error) {
	if isInputError(err) {
		return logical.ErrorResponse(err.Error()), nil
	}
	return nil, err
}
