package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

const auditReportUsage = `Usage: mastio-ca audit-report [flags] <audit-log>... (or - for stdin)

Reads Vault file audit device logs (gzip-rotated ones too) and reports
every call to the mount: when, who (display name, policies, entity,
token type, remote address: the fields Vault leaves readable), what
(operation, path, role, outcome, and the serial, SPIFFE ID and NotAfter of
each certificate issued, when the mount is tuned to leave them readable),
then one section per flag: issuance policy changes, CA changes,
revocations (every revoke and tidy call, with the serial and reason
revoked, or what tidy removed), key-bearing calls, denials, refusals,
signings by tokens that are not a signer's, and volume outliers.

Tune the mount so the certificate fields (and a revocation's reason) are
readable, and nothing else:

  vault secrets tune -audit-non-hmac-response-keys=serial_number \
    -audit-non-hmac-response-keys=spiffe_id \
    -audit-non-hmac-response-keys=not_after \
    -audit-non-hmac-response-keys=reason mastio-ca/

A refused revoke answers no serial: add -audit-non-hmac-request-keys=serial_number
and =reason to read what it asked.

On a mount that is not tuned, --serial and --spiffe-id still find a
certificate: they ask Vault for the HMAC the log holds
(sys/audit-hash/<device>; VAULT_ADDR and VAULT_TOKEN, a token with
policies/mastio-auditor.hcl).

Flags:
`

const auditReportAfter = `
Examples:

  mastio-ca audit-report /var/log/vault/audit.log
  mastio-ca audit-report --serial 3a:91:... --audit-device file /var/log/vault/audit.log*

Several logs are read oldest first, whatever their order on the command
line (by the time of each one's first entry).
  mastio-ca audit-report --since 2026-11-24T00:00:00Z --format json audit.log | jq 'select(.flags | index("policy_change"))'
`

// auditOptions are audit-report's flags.
type auditOptions struct {
	mount          string
	format         string
	since, until   time.Time
	serial, id     string
	device         string
	signerPolicies []string
	maxSignings    int
	window         time.Duration
}

func runAuditReport(args []string, stdout, stderr io.Writer) int {
	fs := subcommand("audit-report", auditReportUsage, auditReportAfter, stderr)
	var o auditOptions
	var since, until, signers string
	fs.StringVar(&o.mount, "mount", "mastio-ca", "path the plugin is mounted at")
	fs.StringVar(&o.format, "format", "table", "table, json (JSON Lines, one object a call) or csv")
	fs.StringVar(&since, "since", "", "only calls at or after this RFC 3339 time")
	fs.StringVar(&until, "until", "", "only calls before this RFC 3339 time")
	fs.StringVar(&o.serial, "serial", "", "only the calls that issued or revoked the certificate with this serial (aa:bb:... as the plugin prints it)")
	fs.StringVar(&o.id, "spiffe-id", "", "only the calls that issued a certificate for this SPIFFE ID")
	fs.StringVar(&o.device, "audit-device", "file", "the audit device that wrote the log (its path in sys/audit), to look HMAC'd values up with sys/audit-hash")
	fs.StringVar(&signers, "signer-policies", "mastio-signer,mastio-proxy", "policies a signing token is expected to have; a signing by any other (root included) is flagged")
	fs.IntVar(&o.maxSignings, "max-signings", 1000, "flag an identity that signs more than this many certificates within --window")
	fs.DurationVar(&o.window, "window", time.Hour, "the window of --max-signings")
	if code, stop := parse(fs, args, 1); stop {
		return code
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "mastio-ca audit-report: "+format+"\n", a...)
		return 1
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 1
	}
	var err error
	for _, t := range []struct {
		flag string
		in   string
		out  *time.Time
	}{{"--since", since, &o.since}, {"--until", until, &o.until}} {
		if t.in == "" {
			continue
		}
		if *t.out, err = time.Parse(time.RFC3339, t.in); err != nil {
			return fail("%s %q is not an RFC 3339 time such as 2026-12-01T00:00:00Z", t.flag, t.in)
		}
	}
	switch o.format {
	case "table", "json", "csv":
	default:
		return fail("--format %q is not table, json or csv", o.format)
	}
	if o.maxSignings < 1 || o.window <= 0 {
		return fail("--max-signings must be at least 1 and --window positive")
	}
	for _, p := range strings.Split(signers, ",") {
		if p = strings.TrimSpace(p); p != "" {
			o.signerPolicies = append(o.signerPolicies, p)
		}
	}

	matcher, err := newAuditMatcher(o, os.Getenv)
	if err != nil {
		return fail("%v", err)
	}
	out, err := newAuditWriter(o, stdout)
	if err != nil {
		return fail("%v", err)
	}
	inputs, closeAll, err := openAuditInputs(fs.Args(), os.Stdin)
	if err != nil {
		return fail("%v", err)
	}
	defer closeAll()
	cl := newAuditClassifier(o)
	ar := newAuditReader(o.mount, func(c *auditCall) error {
		cl.classify(c) // every call, so that volume counts are whole
		if !o.since.IsZero() && c.Time.Before(o.since) || !o.until.IsZero() && !c.Time.Before(o.until) {
			return nil
		}
		if !matcher.match(c) {
			return nil
		}
		return out.call(c)
	})
	for _, in := range inputs {
		if err := ar.read(in.name, in.r); err != nil {
			return fail("%v", err)
		}
	}
	if err := ar.flush(); err != nil {
		return fail("%v", err)
	}
	if err := matcher.check(); err != nil {
		return fail("%v", err)
	}
	if err := out.finish(); err != nil {
		return fail("%v", err)
	}
	return 0
}
