package egress

import (
	"bufio"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/manifest"
)

// echConfig builds one ECHConfig (draft-ietf-tls-esni, version 0xfe0d) for an X25519
// key with public_name pub.
func echConfig(t *testing.T, pub string) (config []byte, key *ecdh.PrivateKey) {
	key, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	u16 := func(b []byte, v int) []byte { return binary.BigEndian.AppendUint16(b, uint16(v)) }
	var c []byte
	c = append(c, 7)   // config_id
	c = u16(c, 0x0020) // DHKEM(X25519, HKDF-SHA256)
	pk := key.PublicKey().Bytes()
	c = u16(c, len(pk))
	c = append(c, pk...)
	c = u16(c, 4)      // cipher_suites
	c = u16(c, 0x0001) // HKDF-SHA256
	c = u16(c, 0x0001) // AES-128-GCM
	c = append(c, 64)  // maximum_name_length
	c = append(c, byte(len(pub)))
	c = append(c, pub...)
	c = u16(c, 0) // extensions
	config = u16(nil, 0xfe0d)
	config = u16(config, len(c))
	config = append(config, c...)
	return config, key
}

// A tunnel granted for example.com that carries an Encrypted Client Hello (outer name
// example.com, inner name another site) is refused: a shared front end holding the ECH
// key would serve the inner name, which the proxy cannot read. Recorded as denied.
func TestProxyTunnelRefusesEncryptedClientHello(t *testing.T) {
	cfg, key := echConfig(t, "example.com")
	var served atomic.Int32
	front := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		fmt.Fprintf(w, "served %s ech=%v", r.TLS.ServerName, r.TLS.ECHAccepted)
	}))
	front.TLS = &tls.Config{EncryptedClientHelloKeys: []tls.EncryptedClientHelloKey{{Config: cfg, PrivateKey: key.Bytes(), SendAsRetry: true}}}
	front.StartTLS()
	defer front.Close()
	p := front.Listener.Addr().(*net.TCPAddr).Port

	res := newResolver(map[string][][]string{"example.com": {{"127.0.0.1"}}})
	g := NewGuard([]manifest.Origin{origin("https", "example.com", p)}, roomy, WithResolver(res), WithInternalNamesUnsafe())
	px, addr := startProxy(t)
	token, release := px.Register(g)
	defer release()

	c := connectRaw(t, addr, token, fmt.Sprintf("example.com:%d", p))
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	list := binary.BigEndian.AppendUint16(nil, uint16(len(cfg)))
	list = append(list, cfg...)
	tc := tls.Client(c, &tls.Config{ServerName: "secret.other.example", InsecureSkipVerify: true,
		MinVersion: tls.VersionTLS13, EncryptedClientHelloConfigList: list})
	if err := tc.Handshake(); err == nil {
		io.WriteString(tc, "GET / HTTP/1.1\r\nHost: secret.other.example\r\nConnection: close\r\n\r\n")
		body, _ := io.ReadAll(bufio.NewReader(tc))
		t.Fatalf("an Encrypted Client Hello went through a tunnel granted for example.com: %q", body)
	}
	recs := g.Records()
	if len(recs) == 0 || recs[len(recs)-1].Allowed || !strings.Contains(recs[len(recs)-1].Reason, "Encrypted Client Hello") {
		t.Fatalf("records %+v: want the tunnel denied, naming the Encrypted Client Hello", recs)
	}
	if n := served.Load(); n != 0 {
		t.Fatalf("the front end served %d requests", n)
	}
}

// A hello whose server name is not the ASCII host but maps to it under IDNA
// (full-width letters, an ideographic full stop) is refused: those bytes go upstream
// unchanged and name no site there, so the front end would pick its default site.
func TestHelloNameNotASCII(t *testing.T) {
	name := Target{Scheme: "https", Host: "example.com", Port: 443}
	for _, sni := range []string{"\uff45xample.com", "example\u3002com", "xn--exmple-cua.com"} {
		if r := helloNameRefusal(name, sni); r == "" {
			t.Errorf("hello naming %q passes for example.com", sni)
		}
	}
	if r := helloNameRefusal(name, "EXAMPLE.com"); r != "" {
		t.Errorf("hello naming EXAMPLE.com refused: %s", r)
	}
}
