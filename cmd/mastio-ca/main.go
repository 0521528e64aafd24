// Command mastio-ca is the operator CLI of the mastio-ca Vault plugin.
//
//	mastio-ca migrate [flags]        move Mastio's CAs from its database into the plugin
//	mastio-ca verify [flags]         check a mount's CAs, keys and chain
//	mastio-ca audit-report <file>... review a Vault audit log's calls to the mount
//	mastio-ca ocsp-relay [flags]     serve OCSP over POST and GET for a mount
//
// Run `mastio-ca migrate -h` for the flags and exit codes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/mastio/vault-plugin-mastio-ca/backend"
)

const usage = `Usage: mastio-ca <command> [flags]

Commands:
  migrate       move Mastio's Org CA (and Mastio Intermediate CA) from
                Mastio's SQLite or PostgreSQL database into the plugin,
                verified by proof of possession, optionally blanking the
                keys in the database
  verify        check a mount: each CA certificate (validity, days left,
                chain), each CRL's freshness, and, by a test signing, that
                the plugin holds its key; exit codes 0 OK, 1 warning,
                2 critical, 3 could not check
  audit-report  who signed what, from Vault file audit logs: every call to
                the mount, and sections for policy and CA changes, revocations,
                key-bearing calls, denials, refusals, non-signer signings,
                volume outliers;
                --serial/--spiffe-id find one certificate
  bench         measure sign-csr against Vault's builtin PKI and the
                in-process floor, side by side, on a running Vault
  ocsp-relay    serve OCSP over POST and GET for a mount (Vault gives a
                plugin no raw POST body); holds no key and no token
  version       print the version (the plugin's RunningVersion is the same)

Run "mastio-ca <command> -h" for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:]))
}

func run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 1
	}
	switch args[0] {
	case "migrate":
		return runMigrate(ctx, args[1:], migrateEnv{
			getenv: os.Getenv,
			stdin:  os.Stdin,
			isTTY:  stdinIsTerminal(),
			stdout: os.Stdout,
			stderr: os.Stderr,
		})
	case "verify":
		return runVerify(ctx, args[1:], os.Stdout, os.Stderr)
	case "audit-report":
		return runAuditReport(args[1:], os.Stdout, os.Stderr)
	case "bench":
		return runBench(ctx, args[1:], os.Stdout, os.Stderr)
	case "ocsp-relay":
		return runOCSPRelay(ctx, args[1:], os.Stdout, os.Stderr)
	case "version", "-version", "--version":
		commit := backend.Commit
		if commit == "" {
			commit = "unknown"
		}
		fmt.Printf("mastio-ca v%s (commit %s); the plugin built from this tree reports v%s\n", backend.Version, commit, backend.Version)
		return 0
	case "-h", "-help", "--help", "help":
		fmt.Fprint(os.Stdout, usage)
		return 0
	default:
		fmt.Fprintf(os.Stderr, "mastio-ca: unknown command %q\n\n%s", args[0], usage)
		return 1
	}
}

// subcommand makes a subcommand's flag set: errors go to stderr, and -h
// prints usage, the flags, then after.
func subcommand(name, usage, after string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
		fmt.Fprint(stderr, after)
	}
	return fs
}

// parse parses args into fs. stop says the command ends here, with code:
// 0 after -h, failCode after a bad flag (the flag package has said why).
func parse(fs *flag.FlagSet, args []string, failCode int) (code int, stop bool) {
	switch err := fs.Parse(args); {
	case err == nil:
		return 0, false
	case errors.Is(err, flag.ErrHelp):
		return 0, true
	default:
		return failCode, true
	}
}
