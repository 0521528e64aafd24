package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
)

const auditReportUsage = `Usage: mastio-ca audit-report [--mount mastio-ca] <audit-log-file>

Reads a Vault file audit device's log and prints one row per call to the
mount: time, who (display name, accessor when not HMAC'd), operation and
path, outcome (ok, the HTTP status of a refusal, "denied"), and the
certificate serial when the mount is tuned to leave it readable
(vault secrets tune -audit-non-hmac-response-keys=serial_number mastio-ca/).
A summary counts calls per path and flags denied calls and every call to a
key-bearing path (import, intermediate/import, the KV mirror data/).

Flags:
`

// auditEntry is the part of a Vault audit log line the report reads.
type auditEntry struct {
	Type  string `json:"type"`
	Time  string `json:"time"`
	Error string `json:"error"`
	Auth  struct {
		Accessor    string `json:"accessor"`
		DisplayName string `json:"display_name"`
	} `json:"auth"`
	Request struct {
		ID        string `json:"id"`
		Operation string `json:"operation"`
		Path      string `json:"path"`
	} `json:"request"`
	Response struct {
		Data map[string]any `json:"data"`
	} `json:"response"`
}

// auditRow is one call in the report.
type auditRow struct {
	time, who, op, path, outcome, serial string
	denied, keyBearing                   bool
}

// keyBearingPaths are the mount's paths whose requests or responses can
// carry private key material.
var keyBearingPaths = []string{"import", "intermediate/import", "data/"}

func runAuditReport(args []string, stdout, stderr io.Writer) int {
	fs := subcommand("audit-report", auditReportUsage, "", stderr)
	mount := fs.String("mount", "mastio-ca", "path the plugin is mounted at")
	if code, stop := parse(fs, args, 1); stop {
		return code
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 1
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "mastio-ca audit-report: %v\n", err)
		return 1
	}
	defer f.Close()
	rows, err := readAuditLog(f, strings.Trim(*mount, "/")+"/")
	if err != nil {
		fmt.Fprintf(stderr, "mastio-ca audit-report: %v\n", err)
		return 1
	}
	writeAuditReport(stdout, rows)
	return 0
}

// readAuditLog returns one row per call to the mount, from the response
// entries, or the request entry when no response was logged.
func readAuditLog(r io.Reader, prefix string) ([]auditRow, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	var rows []auditRow
	pending := map[string]int{} // request id -> index in rows, until its response
	line := 0
	for sc.Scan() {
		line++
		var e auditEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("line %d is not an audit entry: %v", line, err)
		}
		if !strings.HasPrefix(e.Request.Path, prefix) {
			continue
		}
		row := auditRow{
			time: e.Time,
			who:  e.Auth.DisplayName,
			op:   e.Request.Operation,
			path: strings.TrimPrefix(e.Request.Path, prefix),
		}
		if row.who == "" {
			row.who = "(no token)"
		}
		if a := e.Auth.Accessor; a != "" && !strings.HasPrefix(a, "hmac-") {
			row.who += " " + a
		}
		for _, k := range keyBearingPaths {
			if row.path == k || strings.HasSuffix(k, "/") && strings.HasPrefix(row.path, k) {
				row.keyBearing = true
			}
		}
		switch e.Type {
		case "request":
			row.outcome = "no response logged"
			if e.Error != "" {
				row.outcome, row.denied = outcomeOf(e.Error, nil)
			}
			pending[e.Request.ID] = len(rows)
			rows = append(rows, row)
			continue
		case "response":
			row.outcome, row.denied = outcomeOf(e.Error, e.Response.Data)
			if s, ok := e.Response.Data["serial_number"].(string); ok && !strings.HasPrefix(s, "hmac-") {
				row.serial = s
			}
		default:
			continue
		}
		if i, ok := pending[e.Request.ID]; ok {
			rows[i] = row
			delete(pending, e.Request.ID)
		} else {
			rows = append(rows, row)
		}
	}
	return rows, sc.Err()
}

// outcomeOf reads a response: Vault's error, or the status of a raw
// response (the plugin answers 404 and 409 that way), or ok.
func outcomeOf(errText string, data map[string]any) (string, bool) {
	if errText != "" {
		if strings.Contains(errText, "permission denied") {
			return "denied", true
		}
		msg := strings.TrimSpace(errText)
		if _, rest, ok := strings.Cut(msg, "error occurred:"); ok {
			msg = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest), "*"))
		}
		if len(msg) > 60 {
			msg = msg[:57] + "..."
		}
		return "error: " + msg, false
	}
	if code, ok := data["http_status_code"].(float64); ok && code >= 400 {
		return fmt.Sprintf("HTTP %d", int(code)), false
	}
	// A plugin's refusal (400) carries its message in data.error, which
	// audit devices HMAC like any response field.
	if msg, ok := data["error"].(string); ok {
		if strings.HasPrefix(msg, "hmac-") {
			return "refused (message HMAC'd)", false
		}
		return "refused: " + msg, false
	}
	return "ok", false
}

func writeAuditReport(w io.Writer, rows []auditRow) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tWHO\tOPERATION\tPATH\tOUTCOME\tSERIAL")
	perPath := map[string]int{}
	var denied, keyBearing []auditRow
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.time, r.who, r.op, r.path, r.outcome, r.serial)
		perPath[r.path]++
		if r.denied {
			denied = append(denied, r)
		}
		if r.keyBearing {
			keyBearing = append(keyBearing, r)
		}
	}
	tw.Flush()

	fmt.Fprintf(w, "\nSummary: %d calls\n", len(rows))
	paths := make([]string, 0, len(perPath))
	for p := range perPath {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		fmt.Fprintf(w, "  %6d  %s\n", perPath[p], p)
	}
	fmt.Fprintf(w, "DENIED calls: %d\n", len(denied))
	for _, r := range denied {
		fmt.Fprintf(w, "  ! %s %s %s %s\n", r.time, r.who, r.op, r.path)
	}
	fmt.Fprintf(w, "Calls to key-bearing paths (import, intermediate/import, data/): %d\n", len(keyBearing))
	for _, r := range keyBearing {
		fmt.Fprintf(w, "  ! %s %s %s %s (%s)\n", r.time, r.who, r.op, r.path, r.outcome)
	}
}
