package main

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// maxSectionRows bounds each flag section of the table; the count beyond
// is printed.
const maxSectionRows = 1000

// tableBlock is how many rows the table aligns at a time, so that a long
// log streams instead of being held for alignment.
const tableBlock = 500

// auditWriter prints calls as they come and, for the table, the flag
// sections at the end.
type auditWriter struct {
	o        auditOptions
	w        *bufio.Writer
	csv      *csv.Writer
	json     *json.Encoder
	table    *tabwriter.Writer
	inBlock  int
	sections map[string][]*auditCall
	counts   map[string]int
	calls    int
	certs    int
	revoked  int // certificates revoked (revoke calls that were ok, not already revoked)
}

var auditColumns = []string{"TIME", "WHO", "POLICIES", "ENTITY", "TOKEN", "REMOTE", "OP", "PATH", "ROLE", "OUTCOME", "SERIAL", "SPIFFE ID", "NOT AFTER"}

func newAuditWriter(o auditOptions, w io.Writer) (*auditWriter, error) {
	aw := &auditWriter{o: o, w: bufio.NewWriter(w), sections: map[string][]*auditCall{}, counts: map[string]int{}}
	switch o.format {
	case "csv":
		aw.csv = csv.NewWriter(aw.w)
		header := []string{"time", "request_id", "display_name", "policies", "entity_id", "token_type", "remote_address", "operation", "path", "role", "outcome", "status", "message", "serials", "spiffe_ids", "not_afters", "flags", "revoked_serial", "revocation_reason", "revocation_note"}
		if err := aw.csv.Write(header); err != nil {
			return nil, err
		}
	case "json":
		aw.json = json.NewEncoder(aw.w)
	default:
		aw.newBlock()
	}
	return aw, nil
}

func (aw *auditWriter) newBlock() {
	aw.table = tabwriter.NewWriter(aw.w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(aw.table, strings.Join(auditColumns, "\t"))
	aw.inBlock = 0
}

// call prints one call.
func (aw *auditWriter) call(c *auditCall) error {
	aw.calls++
	aw.certs += len(c.Certificates)
	if r := c.Revocation; r != nil && c.Path == "revoke" && c.Outcome == "ok" && (r.AlreadyRevoked == nil || !*r.AlreadyRevoked) {
		aw.revoked++
	}
	for _, f := range c.Flags {
		aw.counts[f]++
		if len(aw.sections[f]) < maxSectionRows {
			aw.sections[f] = append(aw.sections[f], c)
		}
	}
	switch {
	case aw.json != nil:
		return aw.json.Encode(c)
	case aw.csv != nil:
		var serials, ids, ends []string
		for _, cert := range c.Certificates {
			serials, ids, ends = append(serials, cert.Serial), append(ids, cert.SPIFFEID), append(ends, cert.NotAfter)
		}
		var revSerial, revReason string
		if r := c.Revocation; r != nil {
			revSerial, revReason = r.Serial, r.Reason
		}
		return aw.csv.Write([]string{c.Time.Format(time.RFC3339Nano), c.RequestID, c.DisplayName, strings.Join(c.Policies, ";"), c.EntityID, c.TokenType, c.RemoteAddress,
			c.Operation, c.Path, c.Role, c.Outcome, strconv.Itoa(c.Status), c.Message, strings.Join(serials, ";"), strings.Join(ids, ";"), strings.Join(ends, ";"), strings.Join(c.Flags, ";"),
			revSerial, revReason, revocationNote(c.Revocation)})
	}
	if aw.inBlock == tableBlock {
		if err := aw.table.Flush(); err != nil {
			return err
		}
		aw.newBlock()
	}
	aw.inBlock++
	_, err := fmt.Fprintln(aw.table, strings.Join(tableRow(c), "\t"))
	return err
}

// tableRow is a call's table columns; empty values show as "-".
func tableRow(c *auditCall) []string {
	var cert certSeen
	if len(c.Certificates) > 0 {
		cert = c.Certificates[0]
		if n := len(c.Certificates); n > 1 {
			cert.Serial += fmt.Sprintf(" +%d", n-1)
		}
	}
	if r := c.Revocation; r != nil { // the certificate a revoke names
		cert = certSeen{Serial: r.Serial, NotAfter: r.NotAfter}
	}
	outcome := c.Outcome
	if c.Status != 0 && c.Status != 200 {
		outcome += " " + strconv.Itoa(c.Status)
	}
	row := []string{c.Time.UTC().Format(time.RFC3339), c.DisplayName, strings.Join(c.Policies, ","), c.EntityID, c.TokenType, c.RemoteAddress,
		c.Operation, c.Path, c.Role, outcome, cert.Serial, cert.SPIFFEID, cert.NotAfter}
	for i, v := range row {
		if v == "" {
			row[i] = "-"
		}
	}
	return row
}

// sectionTitles are the table's flag sections, in order.
func (aw *auditWriter) sectionTitles() [][2]string {
	return [][2]string{
		{flagPolicyChange, "Issuance policy changes (roles, config, kv-export, mount tune)"},
		{flagCAChange, "CA changes (generate, import, intermediate generate/import/rotate)"},
		{flagRevocation, "Revocations (revoke, tidy)"},
		{flagKeyBearing, "Key-bearing calls (import, intermediate/import, the KV mirror data/)"},
		{flagDenied, "Denials"},
		{flagRefused, "Refusals"},
		{flagNonSigner, fmt.Sprintf("Signings by non-signer tokens (policies other than %s)", strings.Join(aw.o.signerPolicies, ", "))},
		{flagVolume, fmt.Sprintf("Volume outliers (more than %d signings in %s)", aw.o.maxSignings, aw.o.window)},
	}
}

// finish ends the output: for the table, the sections and a summary.
func (aw *auditWriter) finish() error {
	switch {
	case aw.csv != nil:
		aw.csv.Flush()
		if err := aw.csv.Error(); err != nil {
			return err
		}
		return aw.w.Flush()
	case aw.json != nil:
		return aw.w.Flush()
	}
	if err := aw.table.Flush(); err != nil {
		return err
	}
	for _, s := range aw.sectionTitles() {
		rows := aw.sections[s[0]]
		fmt.Fprintf(aw.w, "\n%s: %d\n", s[1], aw.counts[s[0]])
		if len(rows) == 0 {
			fmt.Fprintln(aw.w, "  (none)")
			continue
		}
		for _, c := range rows {
			r := tableRow(c)
			fmt.Fprintf(aw.w, "  ! %s %s [%s] %s %s %s %s", r[0], r[1], r[2], r[6], r[7], r[9], c.RequestID)
			if s[0] == flagRevocation {
				fmt.Fprint(aw.w, ": ", revocationDetail(c))
			}
			fmt.Fprintln(aw.w)
		}
		if n := aw.counts[s[0]] - len(rows); n > 0 {
			fmt.Fprintf(aw.w, "  ... and %d more (--format json lists every one)\n", n)
		}
	}
	fmt.Fprintf(aw.w, "\nSummary: %d calls, %d certificates issued or created, %d denials, %d refusals, %d signings by non-signer tokens, %d certificates revoked\n",
		aw.calls, aw.certs, aw.counts[flagDenied], aw.counts[flagRefused], aw.counts[flagNonSigner], aw.revoked)
	return aw.w.Flush()
}

// revocationDetail says what a revoke or tidy call did, as far as the log
// lets it be read.
func revocationDetail(c *auditCall) string {
	r := c.Revocation
	if r == nil {
		return ""
	}
	if c.Path == "tidy" {
		if note := revocationNote(r); note != "" {
			return note
		}
		return "nothing readable"
	}
	var parts []string
	switch {
	case r.Serial != "":
		parts = append(parts, "serial "+r.Serial)
	case r.serialHMAC != "":
		parts = append(parts, "serial HMAC'd (tune -audit-non-hmac-response-keys=serial_number, or --serial with a token)")
	default:
		parts = append(parts, "serial not readable")
	}
	if r.Reason != "" {
		parts = append(parts, "reason "+r.Reason)
	}
	if note := revocationNote(r); note != "" {
		parts = append(parts, note)
	}
	return strings.Join(parts, ", ")
}

// revocationNote is what the never-HMAC'd values say: already revoked,
// the CRL number, tidy's counts.
func revocationNote(r *revocationSeen) string {
	if r == nil {
		return ""
	}
	var parts []string
	if r.AlreadyRevoked != nil && *r.AlreadyRevoked {
		parts = append(parts, "already revoked (the first revocation stands)")
	}
	if r.CRLNumber != nil {
		parts = append(parts, fmt.Sprintf("CRL %d", *r.CRLNumber))
	}
	if r.RevocationsRemoved != nil {
		parts = append(parts, fmt.Sprintf("%d expired revocations removed", *r.RevocationsRemoved))
	}
	if r.RetiredKeysDropped != nil {
		parts = append(parts, fmt.Sprintf("%d retired intermediate keys dropped", *r.RetiredKeysDropped))
	}
	return strings.Join(parts, ", ")
}
