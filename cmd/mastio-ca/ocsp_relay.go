package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
)

const ocspRelayUsage = `Usage: mastio-ca ocsp-relay [flags]

Serves OCSP (RFC 6960) over HTTP for a mastio-ca mount, in both forms:
POST with an application/ocsp-request body, and GET /<base64>. Each
request is asked of the mount's ocsp/<base64> path, with no token (the
path is unauthenticated), and the signed answer is passed back unchanged.

Vault gives an external plugin no raw request body, so POST clients (openssl
ocsp -url, Firefox, most OCSP libraries) cannot reach the plugin directly;
GET clients (nginx ssl_ocsp and ssl_stapling) can, and need no relay. The
relay holds no key and no token, and can answer nothing by itself: run it
beside Vault and put its URL in config ocsp_servers.

Vault is reached through VAULT_ADDR and VAULT_CACERT.

Flags:
`

// maxOCSPBody bounds a POST body: a request with a few CertIDs is well
// under 1 KiB.
const maxOCSPBody = 4 << 10

func runOCSPRelay(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := subcommand("ocsp-relay", ocspRelayUsage, "", stderr)
	listen := fs.String("listen", "127.0.0.1:8081", "address to listen on")
	mount := fs.String("mount", "mastio-ca", "the plugin's mount path")
	if code, stop := parse(fs, args, 3); stop {
		return code
	}
	cfg := api.DefaultConfig()
	if cfg.Error != nil {
		fmt.Fprintf(stderr, "mastio-ca ocsp-relay: %v\n", cfg.Error)
		return 3
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "mastio-ca ocsp-relay: %v\n", err)
		return 3
	}
	relay := &ocspRelay{vault: strings.TrimSuffix(cfg.Address, "/"), mount: strings.Trim(*mount, "/"), client: cfg.HttpClient, namespace: os.Getenv("VAULT_NAMESPACE"), log: stderr}
	srv := &http.Server{Handler: relay, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 15 * time.Second}
	fmt.Fprintf(stdout, "mastio-ca ocsp-relay: http://%s/ -> %s/v1/%s/ocsp/\n", ln.Addr(), relay.vault, relay.mount)
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "mastio-ca ocsp-relay: %v\n", err)
		return 3
	}
	return 0
}

// ocspRelay passes OCSP requests on to a mount's ocsp/<base64> path.
type ocspRelay struct {
	vault, mount string
	client       *http.Client
	namespace    string    // sent as X-Vault-Namespace when set
	log          io.Writer // where failures to reach Vault are written
}

// maxOCSPAnswer bounds what the relay reads back: a signed answer is well
// under 2 KiB.
const maxOCSPAnswer = 64 << 10

func (o *ocspRelay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var der []byte
	switch r.Method {
	case http.MethodPost:
		body, err := io.ReadAll(io.LimitReader(r.Body, maxOCSPBody+1))
		switch {
		case err != nil:
			http.Error(w, "could not read the OCSP request", http.StatusBadRequest)
			return
		case len(body) > maxOCSPBody:
			http.Error(w, "the OCSP request is too large", http.StatusRequestEntityTooLarge)
			return
		}
		der = body
	case http.MethodGet:
		b64, err := url.PathUnescape(strings.TrimPrefix(r.URL.EscapedPath(), "/"))
		if err == nil {
			der, err = decodeBase64(b64)
		}
		if err != nil {
			http.Error(w, "GET /<base64 of the DER OCSP request>", http.StatusBadRequest)
			return
		}
	default:
		http.Error(w, "OCSP takes GET or POST", http.StatusMethodNotAllowed)
		return
	}
	if len(der) == 0 {
		http.Error(w, "an OCSP request is required: POST its DER, or GET /<base64>", http.StatusBadRequest)
		return
	}
	target := o.vault + "/v1/" + o.mount + "/ocsp/" + url.PathEscape(base64.StdEncoding.EncodeToString(der))
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, target, nil)
	if err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	if o.namespace != "" {
		req.Header.Set("X-Vault-Namespace", o.namespace)
	}
	resp, err := o.client.Do(req)
	if err != nil {
		if o.log != nil {
			fmt.Fprintf(o.log, "mastio-ca ocsp-relay: asking Vault: %v\n", err)
		}
		http.Error(w, "Vault is unreachable", http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxOCSPAnswer+1))
	if err != nil || resp.StatusCode != http.StatusOK || len(answer) > maxOCSPAnswer {
		http.Error(w, fmt.Sprintf("Vault answered %d", resp.StatusCode), http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", "application/ocsp-response")
	if cc := resp.Header.Get("Cache-Control"); cc != "" {
		w.Header().Set("Cache-Control", cc)
	}
	_, _ = w.Write(answer)
}

// decodeBase64 reads standard or URL-safe base64, padded or not, as the
// plugin does.
func decodeBase64(s string) ([]byte, error) {
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		var der []byte
		if der, err = enc.DecodeString(s); err == nil {
			return der, nil
		}
	}
	return nil, err
}
