package egress

import (
	"bytes"
	"io"
	"os"
)

// maxRootsBytes bounds the roots file read from the host.
const maxRootsBytes = 4 << 20

// hostRootFiles are where the host's trusted roots usually are (Go's list for Linux).
var hostRootFiles = []string{
	"/etc/ssl/certs/ca-certificates.crt",
	"/etc/pki/tls/certs/ca-bundle.crt",
	"/etc/ssl/ca-bundle.pem",
	"/etc/pki/tls/cacert.pem",
	"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
	"/etc/ssl/cert.pem",
}

// HostRoots is the PEM bundle of roots this process's host trusts (SSL_CERT_FILE, else
// the usual places), or nil. A sandbox whose guest trusts a call's CA through
// SSL_CERT_FILE appends them to the CA's certificate: that variable names one file,
// which replaces the guest's own roots for most TLS stacks, and the origins the proxy
// only tunnels still need roots there.
func HostRoots() []byte {
	files := hostRootFiles
	if f := os.Getenv("SSL_CERT_FILE"); f != "" {
		files = []string{f}
	}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(fh, maxRootsBytes))
		fh.Close()
		if err == nil && bytes.Contains(b, []byte("-----BEGIN CERTIFICATE-----")) {
			return b
		}
	}
	return nil
}

// CAEnv are the variables that point the common TLS stacks at a CA file: OpenSSL, Go,
// Python's ssl and curl read SSL_CERT_FILE, requests and curl their own; Node.js adds
// NODE_EXTRA_CA_CERTS to its built-in roots (read once, at start).
var CAEnv = []string{"SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO"}
