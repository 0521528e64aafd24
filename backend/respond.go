package backend

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/mastio/vault-plugin-mastio-ca/internal/issuing"
)

// kindStatus is the one status each kind of refusal gets (issuing.Kind
// says what each means; docs/architecture.md lists the situations).
var kindStatus = map[issuing.Kind]int{
	issuing.KindInput:    http.StatusBadRequest,
	issuing.KindConflict: http.StatusConflict,
	issuing.KindNotFound: http.StatusNotFound,
	issuing.KindState:    http.StatusUnprocessableEntity,
	// The HSM holding the key cannot sign now: Vault's own word for a
	// backend that is there but not serving.
	issuing.KindUnavailable: http.StatusServiceUnavailable,
}

// respondErr answers a refusal with its kind's status and its message, and
// passes every other error up to Vault, which answers 500.
func respondErr(err error) (*logical.Response, error) {
	status, ok := kindStatus[issuing.KindOf(err)]
	switch {
	case !ok:
		return nil, err
	case status == http.StatusBadRequest:
		return logical.ErrorResponse(err.Error()), nil
	}
	return respondStatus(status, "%s", err.Error())
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

// respond is the usual end of a handler: data on success, the refusal's
// status otherwise.
func respond(data map[string]any, err error) (*logical.Response, error) {
	if err != nil {
		return respondErr(err)
	}
	return &logical.Response{Data: data}, nil
}

// respondWarn is respond with warnings for the caller.
func respondWarn(data map[string]any, warnings []string, err error) (*logical.Response, error) {
	resp, rerr := respond(data, err)
	if err == nil {
		for _, w := range warnings {
			resp.AddWarning(w)
		}
	}
	return resp, rerr
}
