package egress

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/skillbox-dev/skillbox/manifest"
)

// maxLeaves bounds the leaf certificates one CallCA keeps: a wildcard origin covers any
// number of names, and a skill must not grow the proxy's memory by asking for them all.
// Past it leaves are still issued, just not kept.
const maxLeaves = 64

// CallCA is a certificate authority made for one call's container: the container
// proxy terminates TLS with certificates it issues, for the https origins that carry a
// brokered secret (and no others), so the Guard can see each request and add the
// secret. Only its certificate (CertPEM) goes into the container; the private key lives
// in this value, in the proxy's memory, and Drop forgets it when the call's
// registration ends.
//
// The certificate is an ECDSA P-256 CA, valid from a minute before it is made for the
// duration asked, with a path length of zero, for server authentication only, and with
// critical name constraints that permit exactly the brokered hosts: every other DNS
// name, IP address, e-mail address and URI is excluded, so even a copy of the key
// could not vouch for anything else to a client that checks constraints (Go, OpenSSL,
// NSS, BoringSSL do).
type CallCA struct {
	cert     *x509.Certificate
	pem      []byte
	origins  []manifest.Origin // https origins it may issue for
	notAfter time.Time

	mu      sync.Mutex
	key     *ecdsa.PrivateKey // nil once dropped
	leafKey *ecdsa.PrivateKey
	leaves  map[string]*tls.Certificate // by host, at most maxLeaves
}

// ErrCADropped is a leaf asked of a CallCA whose call has ended.
var ErrCADropped = errors.New("the call's certificate authority is gone (the call has ended)")

// NewCallCA makes a CA for the https origins among origins (others are ignored; at
// least one is needed), valid for validFor from now.
func NewCallCA(origins []manifest.Origin, validFor time.Duration) (*CallCA, error) {
	var https []manifest.Origin
	for _, o := range origins {
		if strings.EqualFold(o.Scheme, "https") && !slices.Contains(https, o) {
			https = append(https, o)
		}
	}
	if len(https) == 0 {
		return nil, errors.New("call CA: no https origin to issue for")
	}
	if validFor <= 0 {
		return nil, fmt.Errorf("call CA: validity %s: want above zero", validFor)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("call CA key: %w", err)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("call CA leaf key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "skillbox call CA " + rand.Text()[:12]},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(validFor),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	constrain(tmpl, https)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("call CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("call CA certificate: %w", err)
	}
	return &CallCA{
		cert: cert, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		origins: https, notAfter: tmpl.NotAfter,
		key: key, leafKey: leafKey, leaves: map[string]*tls.Certificate{},
	}, nil
}

// constrain sets critical name constraints that permit the hosts of origins and
// nothing else. A DNS constraint "h" also permits every name under h, so an exact
// origin's subdomains are excluded (".h") unless a wildcard origin covers them.
func constrain(c *x509.Certificate, origins []manifest.Origin) {
	c.PermittedDNSDomainsCritical = true
	var wild []string
	for _, o := range origins {
		if o.Wildcard {
			wild = append(wild, originHost(o))
		}
	}
	for _, o := range origins {
		h := originHost(o)
		if a, err := netip.ParseAddr(h); err == nil && !o.Wildcard {
			bits := a.BitLen()
			c.PermittedIPRanges = append(c.PermittedIPRanges, &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(bits, bits)})
			continue
		}
		if o.Wildcard {
			c.PermittedDNSDomains = append(c.PermittedDNSDomains, "."+h)
			continue
		}
		c.PermittedDNSDomains = append(c.PermittedDNSDomains, h)
		covered := slices.ContainsFunc(wild, func(w string) bool { return h == w || strings.HasSuffix(h, "."+w) })
		if !covered {
			c.ExcludedDNSDomains = append(c.ExcludedDNSDomains, "."+h)
		}
	}
	// An empty constraint matches every name of its kind (RFC 5280 leaves it open; Go,
	// NSS and OpenSSL read it so): each kind with nothing permitted is excluded whole.
	if len(c.PermittedDNSDomains) == 0 {
		c.ExcludedDNSDomains = []string{""}
	}
	if len(c.PermittedIPRanges) == 0 {
		c.ExcludedIPRanges = []*net.IPNet{
			{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)},
			{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)},
		}
	}
	c.ExcludedEmailAddresses = []string{""}
	c.ExcludedURIDomains = []string{""}
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		// crypto/rand does not fail on the platforms Go supports.
		return big.NewInt(time.Now().UnixNano())
	}
	return n.Add(n, big.NewInt(1))
}

// CertPEM is the CA certificate, PEM-encoded: the only part of the CA that may leave
// the proxy (it goes into the container, which trusts it).
func (ca *CallCA) CertPEM() []byte { return slices.Clone(ca.pem) }

// Certificate is the parsed CA certificate.
func (ca *CallCA) Certificate() *x509.Certificate { return ca.cert }

// Covers reports whether t is one of the origins the CA issues for.
func (ca *CallCA) Covers(t Target) bool {
	_, ok := Match(ca.origins, t)
	return ok && t.Scheme == "https"
}

// Drop forgets the private keys and the leaves: no certificate is issued after it.
// It is safe to call more than once.
func (ca *CallCA) Drop() {
	ca.mu.Lock()
	ca.key, ca.leafKey, ca.leaves = nil, nil, nil
	ca.mu.Unlock()
}

// leaf returns the certificate for t's host, issuing it on first use.
func (ca *CallCA) leaf(t Target) (*tls.Certificate, error) {
	if !ca.Covers(t) {
		return nil, fmt.Errorf("the call's CA does not issue for %s", t.Host)
	}
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if ca.key == nil {
		return nil, ErrCADropped
	}
	if c := ca.leaves[t.Host]; c != nil {
		return c, nil
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: t.Host},
		NotBefore:    ca.cert.NotBefore,
		NotAfter:     ca.notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if t.IP.IsValid() {
		tmpl.IPAddresses = []net.IP{t.IP.AsSlice()}
	} else {
		tmpl.DNSNames = []string{t.Host}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &ca.leafKey.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("issue a certificate for %s: %w", t.Host, err)
	}
	c := &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: ca.leafKey}
	if len(ca.leaves) < maxLeaves {
		ca.leaves[t.Host] = c
	}
	return c, nil
}

// ServerNameError is a TLS handshake to the proxy whose server name (SNI) is not the
// host the client asked the proxy to connect to: the policy checked that host, so no
// certificate is issued for any other.
type ServerNameError struct {
	Connect, SNI string
}

func (e *ServerNameError) Error() string {
	if e.SNI == "" {
		return fmt.Sprintf("skillbox egress proxy: TLS handshake for %s sent no server name; it must name %s", e.Connect, e.Connect)
	}
	return fmt.Sprintf("skillbox egress proxy: TLS server name %q is not the CONNECT target %s", e.SNI, e.Connect)
}

// serverConfig is the TLS configuration the proxy terminates a CONNECT to t with: a
// certificate for t's host only, given only when the client's server name is that
// host (or, for an IP target, absent: clients send no name for an address), and
// HTTP/1.1 as the one application protocol.
func (ca *CallCA) serverConfig(t Target) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			sni := strings.ToLower(hello.ServerName)
			if sni != t.Host && (sni != "" || !t.IP.IsValid()) {
				return nil, &ServerNameError{Connect: t.Host, SNI: boundText(hello.ServerName, 256)}
			}
			return ca.leaf(t)
		},
	}
}
