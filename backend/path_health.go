package backend

import (
	"bufio"
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// processStart is when this plugin process started, for uptime.
var processStart = time.Now()

func pathHealth(b *mastioBackend) *framework.Path {
	return &framework.Path{
		Pattern: "health",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationSuffix: "health",
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback: b.pathHealthRead,
				Summary:  "Plugin diagnostics: version, CA expiry, signings, and the plugin process's goroutines and memory.",
			},
		},
		HelpSynopsis:    pathHealthHelpSyn,
		HelpDescription: pathHealthHelpDesc,
	}
}

func (b *mastioBackend) pathHealthRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	var mem runtime.MemStats
	runtime.ReadMemStats(&mem)
	data := map[string]any{
		"version":          "v" + Version,
		"commit":           Commit,
		"signed":           b.signed.Load(),
		"goroutines":       runtime.NumGoroutine(),
		"heap_alloc_bytes": mem.HeapAlloc,
		"rss_bytes":        residentSetBytes(),
		"uptime_seconds":   int64(time.Since(processStart).Seconds()),
	}
	now := time.Now()
	for _, n := range caNames {
		is, err := b.loadIssuer(ctx, req.Storage, n)
		if err != nil {
			return nil, err
		}
		if is == nil {
			continue
		}
		data[string(n)+"_not_after"] = is.cert.NotAfter.UTC().Format(time.RFC3339)
		data[string(n)+"_days_left"] = int(is.cert.NotAfter.Sub(now).Hours() / 24)
		data[string(n)+"_key_backend"] = is.keyBackend()
		if is.keyRef != nil {
			data[string(n)+"_pkcs11_key"] = is.keyRef.ref().String()
		}
	}
	if configured, problem := b.pkcs11Status(ctx, req.Storage); configured {
		data["pkcs11_status"] = statusWord(problem)
		if problem != "" {
			data["pkcs11_error"] = problem
		}
	}
	return &logical.Response{Data: data}, nil
}

// residentSetBytes reads the process's resident set size on Linux; 0
// elsewhere.
func residentSetBytes() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err == nil {
				return kb * 1024
			}
		}
	}
	return 0
}

const pathHealthHelpSyn = `Diagnostics of the plugin: an external plugin cannot send metrics to Vault's telemetry.`

const pathHealthHelpDesc = `
Reports the plugin's version and commit, how many certificates this mount
has signed since the plugin process started, the days left on each CA and
where its key is (<ca>_key_backend: vault or pkcs11), and the plugin
process's goroutines, Go heap and resident set size. With config/pkcs11 it
logs in to the token and finds each CA key there: pkcs11_status is ok or
unavailable, pkcs11_error says why (a refused PIN, a missing token, a key
not found). It reads nothing secret and writes nothing.

Example:

    $ vault read mastio-ca/health
`
