package backend

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
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

// respondErr answers an inputError with a 400 and a conflictError with a
// 409, each carrying its message, and passes every other error up as a 500.
func respondErr(err error) (*logical.Response, error) {
	var conflict *conflictError
	switch {
	case isInputError(err):
		return logical.ErrorResponse(err.Error()), nil
	case errors.As(err, &conflict):
		return respondStatus(http.StatusConflict, "%s", conflict.msg)
	}
	return nil, err
}

// respondStatus answers with status and Vault's own {"errors":[msg]}
// envelope, so clients read it like any Vault error. It is a raw response
// rather than logical.CodedError so that Vault shows the message as is, not
// wrapped in "1 error occurred"; audit devices record the status in
// response.data.http_status_code.
func respondStatus(status int, format string, args ...any) (*logical.Response, error) {
	body, err := json.Marshal(map[string][]string{"errors": {fmt.Sprintf(format, args...)}})
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]any{
		logical.HTTPContentType: "application/json",
		logical.HTTPRawBody:     string(body),
		logical.HTTPStatusCode:  status,
	}}, nil
}
