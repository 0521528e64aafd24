package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/mastio/vault-plugin-mastio-ca/internal/issuing"
)

// Reading Vault's file audit log: one JSON object a line, a "request"
// entry when a call comes in and a "response" entry when it is answered,
// both with the request's id. Calls are read as a stream: a call is
// emitted when its response arrives, and memory stays bounded by the calls
// awaiting their response (at most maxPending).

// maxPending bounds the requests held while their response is awaited; the
// oldest is emitted without one when more arrive.
const maxPending = 10000

// auditEntry is the part of an audit log line the report reads.
type auditEntry struct {
	Type  string `json:"type"`
	Time  string `json:"time"`
	Error string `json:"error"`
	Auth  struct {
		DisplayName      string   `json:"display_name"`
		Policies         []string `json:"policies"`
		TokenPolicies    []string `json:"token_policies"`
		IdentityPolicies []string `json:"identity_policies"`
		EntityID         string   `json:"entity_id"`
		TokenType        string   `json:"token_type"`
	} `json:"auth"`
	Request struct {
		ID            string         `json:"id"`
		Operation     string         `json:"operation"`
		Path          string         `json:"path"`
		RemoteAddress string         `json:"remote_address"`
		Data          map[string]any `json:"data"`
	} `json:"request"`
	Response struct {
		Data map[string]any `json:"data"`
	} `json:"response"`
}

// auditCall is one call to the mount, as the report shows it.
type auditCall struct {
	Time          time.Time  `json:"time"`
	RequestID     string     `json:"request_id"`
	DisplayName   string     `json:"display_name"`
	Policies      []string   `json:"policies"`
	EntityID      string     `json:"entity_id"`
	TokenType     string     `json:"token_type"`
	RemoteAddress string     `json:"remote_address"`
	Operation     string     `json:"operation"`
	Path          string     `json:"path"`
	Role          string     `json:"role"`
	Outcome       string     `json:"outcome"`
	Status        int        `json:"status"`
	Message       string     `json:"message"`
	Certificates  []certSeen `json:"certificates"`
	// Revocation is what a revoke or tidy call did; null on other calls.
	Revocation *revocationSeen `json:"revocation"`
	Flags      []string        `json:"flags"`
}

// revocationSeen is a revoke or tidy call as the log shows it (only
// values Vault left readable). revoke's response names the serial and
// reason (readable once the mount is tuned with
// -audit-non-hmac-response-keys=serial_number and =reason); its request
// names what was asked (readable with -audit-non-hmac-request-keys), which
// is all a refused revoke leaves. already_revoked, crl_number and tidy's
// counts are never HMAC'd (Vault hashes strings only).
type revocationSeen struct {
	Serial             string `json:"serial,omitempty"`
	Reason             string `json:"reason,omitempty"`
	RevokedAt          string `json:"revocation_time,omitempty"`
	NotAfter           string `json:"not_after,omitempty"`
	IssuerID           string `json:"issuer_id,omitempty"`
	AlreadyRevoked     *bool  `json:"already_revoked,omitempty"`
	CRLNumber          *int64 `json:"crl_number,omitempty"`
	RevocationsRemoved *int64 `json:"revocations_removed,omitempty"`  // tidy
	RetiredKeysDropped *int64 `json:"retired_keys_dropped,omitempty"` // tidy
	// serialHMAC is the response's serial as an HMAC, for --serial.
	serialHMAC string
}

// isRevocationPath reports whether a write to path revokes or tidies.
func isRevocationPath(path string) bool { return path == "revoke" || path == "tidy" }

// certSeen is an issued certificate as the log shows it (only values Vault
// left readable).
type certSeen struct {
	Serial   string `json:"serial,omitempty"`
	SPIFFEID string `json:"spiffe_id,omitempty"`
	NotAfter string `json:"not_after,omitempty"`
	// The HMACs the log holds instead, for --serial and --spiffe-id.
	serialHMAC, idHMAC string
}

// isHMAC reports whether an audit value is an HMAC, which means nothing
// without the device's key.
func isHMAC(s string) bool { return strings.HasPrefix(s, "hmac-sha256:") }

// readable is s unless it is an HMAC.
func readable(s string) string {
	if isHMAC(s) {
		return ""
	}
	return s
}

// auditInput is one opened log.
type auditInput struct {
	name  string
	r     io.Reader
	first time.Time // the time of its first entry; zero when unknown
}

// openAuditInputs opens the named logs ("-" is stdin), each read through
// gzip when it starts with gzip's magic bytes, and orders them by the time
// of their first entry: a shell expands audit.log* newest first, and a
// call's request and response may sit in two files.
func openAuditInputs(names []string, stdin io.Reader) ([]auditInput, func(), error) {
	var inputs []auditInput
	var closers []io.Closer
	closeAll := func() {
		for _, c := range closers {
			_ = c.Close()
		}
	}
	for _, name := range names {
		var r io.Reader = stdin
		if name != "-" {
			f, err := os.Open(name)
			if err != nil {
				closeAll()
				return nil, nil, err
			}
			closers = append(closers, f)
			r = f
		}
		br := bufio.NewReaderSize(r, 1<<20)
		if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
			gz, err := gzip.NewReader(br)
			if err != nil {
				closeAll()
				return nil, nil, fmt.Errorf("%s: %v", name, err)
			}
			closers = append(closers, gz)
			br = bufio.NewReaderSize(gz, 1<<20)
		}
		// Read the first line for its time, then put it back in front.
		line, err := br.ReadBytes('\n')
		if err != nil && err != io.EOF {
			closeAll()
			return nil, nil, fmt.Errorf("%s: %v", name, err)
		}
		var head struct {
			Time string `json:"time"`
		}
		_ = json.Unmarshal(line, &head)
		first, _ := time.Parse(time.RFC3339Nano, head.Time)
		inputs = append(inputs, auditInput{name: name, r: io.MultiReader(bytes.NewReader(line), br), first: first})
	}
	sort.SliceStable(inputs, func(i, j int) bool { return inputs[i].first.Before(inputs[j].first) })
	return inputs, closeAll, nil
}

// auditReader turns audit entries for one mount into calls.
type auditReader struct {
	prefix  string // "<mount>/"
	emit    func(*auditCall) error
	pending map[string]*auditCall
	order   []string // request ids in arrival order, for eviction
}

func newAuditReader(mount string, emit func(*auditCall) error) *auditReader {
	return &auditReader{prefix: strings.Trim(mount, "/") + "/", emit: emit, pending: map[string]*auditCall{}}
}

// read streams one log.
func (ar *auditReader) read(name string, r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		// Most lines of a busy log are for other mounts: skip those
		// without decoding them.
		if !bytes.Contains(b, []byte(ar.prefix)) {
			continue
		}
		var e auditEntry
		if err := json.Unmarshal(b, &e); err != nil {
			return fmt.Errorf("%s line %d is not an audit entry: %v", name, line, err)
		}
		if err := ar.entry(&e); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %v", name, err)
	}
	return nil
}

// entry handles one audit entry.
func (ar *auditReader) entry(e *auditEntry) error {
	path, tuneOfMount := strings.CutPrefix(e.Request.Path, "sys/mounts/"+ar.prefix)
	switch {
	case tuneOfMount && path == "tune":
		path = "sys/mounts/" + ar.prefix + "tune"
	case strings.HasPrefix(e.Request.Path, ar.prefix):
		path = strings.TrimPrefix(e.Request.Path, ar.prefix)
	default:
		return nil
	}
	c := callOf(e, path)
	switch e.Type {
	case "request":
		if e.Error != "" { // refused before the backend: no response follows for some
			c.Outcome, c.Status, c.Message = outcomeOf(e.Error, nil)
		}
		ar.pending[c.RequestID] = c
		ar.order = append(ar.order, c.RequestID)
		if len(ar.pending) > maxPending {
			return ar.evictOldest()
		}
		return nil
	case "response":
		c.Outcome, c.Status, c.Message = outcomeOf(e.Error, e.Response.Data)
		// Issued or created, not a read of the CA certificate, nor the
		// certificate a revoke names.
		if isWrite(c.Operation) && c.Revocation == nil {
			c.Certificates = certificatesOf(e.Response.Data)
		}
		delete(ar.pending, c.RequestID)
		// Keep the arrival order as small as what is pending.
		if len(ar.order) > 2*len(ar.pending)+1024 {
			kept := ar.order[:0]
			for _, id := range ar.order {
				if _, ok := ar.pending[id]; ok {
					kept = append(kept, id)
				}
			}
			ar.order = kept
		}
		return ar.emit(c)
	}
	return nil
}

// evictOldest emits the oldest pending request without its response.
func (ar *auditReader) evictOldest() error {
	for len(ar.order) > 0 {
		id := ar.order[0]
		ar.order = ar.order[1:]
		if c, ok := ar.pending[id]; ok {
			delete(ar.pending, id)
			if c.Outcome == "" {
				c.Outcome = "no response logged"
			}
			return ar.emit(c)
		}
	}
	return nil
}

// flush emits every request still awaiting its response.
func (ar *auditReader) flush() error {
	for len(ar.pending) > 0 {
		if err := ar.evictOldest(); err != nil {
			return err
		}
	}
	return nil
}

// callOf is what an entry says of its call, outcome aside.
func callOf(e *auditEntry, path string) *auditCall {
	t, _ := time.Parse(time.RFC3339Nano, e.Time)
	c := &auditCall{
		Time:          t,
		RequestID:     e.Request.ID,
		DisplayName:   readable(e.Auth.DisplayName),
		EntityID:      readable(e.Auth.EntityID),
		TokenType:     readable(e.Auth.TokenType),
		RemoteAddress: readable(e.Request.RemoteAddress),
		Operation:     e.Request.Operation,
		Path:          path,
		Certificates:  []certSeen{},
		Flags:         []string{},
	}
	seen := map[string]bool{}
	for _, list := range [][]string{e.Auth.Policies, e.Auth.TokenPolicies, e.Auth.IdentityPolicies} {
		for _, p := range list {
			if p = readable(p); p != "" && !seen[p] {
				seen[p] = true
				c.Policies = append(c.Policies, p)
			}
		}
	}
	sort.Strings(c.Policies)
	if c.Policies == nil {
		c.Policies = []string{}
	}
	for _, p := range []string{"sign-csr/", "sign-public-key/"} {
		if role, ok := strings.CutPrefix(path, p); ok {
			c.Role = role
		}
	}
	if isWrite(c.Operation) && isRevocationPath(path) {
		c.Revocation = revocationOf(path, e.Request.Data, e.Response.Data)
	}
	return c
}

// revocationOf reads a revoke or tidy call: the response's values first
// (the serial as the mount prints it, the reason it kept), else the
// request's, when readable.
func revocationOf(path string, req, resp map[string]any) *revocationSeen {
	r := &revocationSeen{}
	str := func(m map[string]any, k string) string { v, _ := m[k].(string); return v }
	num := func(k string) *int64 {
		if v, ok := resp[k].(float64); ok {
			n := int64(v)
			return &n
		}
		return nil
	}
	if path == "tidy" {
		r.RevocationsRemoved, r.RetiredKeysDropped = num("revocations_removed"), num("retired_keys_dropped")
		return r
	}
	if serial := str(resp, "serial_number"); serial != "" {
		r.Serial = readable(serial)
		if isHMAC(serial) {
			r.serialHMAC = serial
		}
	}
	if r.Serial == "" {
		// The request's form, as the caller wrote it: shown as the mount
		// prints serials when it parses.
		if s := readable(str(req, "serial_number")); s != "" {
			r.Serial = s
			if n, err := issuing.ParseSerial(s); err == nil {
				r.Serial = issuing.FormatSerial(n)
			}
		}
	}
	r.Reason = readable(str(resp, "reason"))
	if r.Reason == "" {
		r.Reason = readable(str(req, "reason"))
	}
	r.RevokedAt = readable(str(resp, "revocation_time"))
	r.NotAfter = readable(str(resp, "not_after"))
	if r.NotAfter == "" {
		r.NotAfter = readable(str(req, "not_after"))
	}
	r.IssuerID = readable(str(resp, "issuer_id"))
	if r.IssuerID == "" {
		r.IssuerID = readable(str(req, "issuer"))
	}
	if v, ok := resp["already_revoked"].(bool); ok {
		r.AlreadyRevoked = &v
	}
	r.CRLNumber = num("crl_number")
	return r
}

// certificatesOf reads the issued certificates of a signing response: the
// single answer's fields or the batch's list.
func certificatesOf(data map[string]any) []certSeen {
	items := []map[string]any{data}
	if list, ok := data["certificates"].([]any); ok {
		items = items[:0]
		for _, it := range list {
			if m, ok := it.(map[string]any); ok {
				items = append(items, m)
			}
		}
	}
	certs := []certSeen{}
	for _, m := range items {
		serial, _ := m["serial_number"].(string)
		id, _ := m["spiffe_id"].(string)
		notAfter, _ := m["not_after"].(string)
		if serial == "" {
			continue
		}
		c := certSeen{Serial: readable(serial), SPIFFEID: readable(id), NotAfter: readable(notAfter)}
		if isHMAC(serial) {
			c.serialHMAC = serial
		}
		if isHMAC(id) {
			c.idHMAC = id
		}
		certs = append(certs, c)
	}
	return certs
}

// outcomeOf reads a response: Vault's error, or the status of a raw
// response (the plugin answers 404, 409 and 422 that way), a plugin's 400
// (data.error), or ok. HMAC'd messages are not shown.
func outcomeOf(errText string, data map[string]any) (outcome string, status int, message string) {
	if errText != "" {
		msg := strings.TrimSpace(errText)
		if _, rest, ok := strings.Cut(msg, "error occurred:"); ok {
			msg = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest), "*"))
		}
		if strings.Contains(msg, "permission denied") {
			return "denied", 403, msg
		}
		return "error", 500, msg
	}
	if code, ok := data["http_status_code"].(float64); ok && code >= 400 {
		return "refused", int(code), ""
	}
	if msg, ok := data["error"].(string); ok {
		return "refused", 400, readable(msg)
	}
	return "ok", 200, ""
}
