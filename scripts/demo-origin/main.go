// Command demo-origin serves the two local web origins scripts/demo.sh needs, on
// loopback only: a "granted" one the fetch skill is approved for, and an "internal"
// one its manifest asks for but the operator's grant leaves out. It writes
// "granted=http://127.0.0.1:P1 internal=http://127.0.0.1:P2" to --addr-file once both
// listen, and appends one line per request it receives to --log, so the demo can show
// that the origin left out of the grant received no request at all.
//
// The granted origin also stands in for an API that needs a credential: with
// DEMO_TOKEN set in its environment, /api/ answers only a request carrying
// "Authorization: Bearer $DEMO_TOKEN" (401 otherwise), and /echo-headers answers with
// the request's headers as JSON, as some APIs and error pages do. The log says whether
// a request carried the right token, never what it carried.
package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

const grantedPage = `<!doctype html>
<html><head><title>ACME price list</title>
<style>body { font-family: sans-serif }</style>
<script>console.log("scripts are dropped by the fetch skill")</script></head>
<body><nav>Home | Products | Contact</nav>
<h1>ACME price list</h1>
<p>Widget: 19.99 USD. Gadget: 5.00 USD. Prices valid this quarter.</p>
</body></html>
`

const internalPage = `<!doctype html>
<html><head><title>internal admin</title></head>
<body><p>If you can read this, the egress policy failed.</p></body></html>
`

func main() {
	addrFile := flag.String("addr-file", "", "write the two origins here once listening (required)")
	logFile := flag.String("log", "", "append one line per request received (required)")
	flag.Parse()
	if *addrFile == "" || *logFile == "" {
		log.Fatal("demo-origin: --addr-file and --log are required")
	}
	if err := run(*addrFile, *logFile); err != nil {
		log.Fatalf("demo-origin: %v", err)
	}
}

func run(addrFile, logFile string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	lf, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer lf.Close()
	var mu sync.Mutex // one line per request, never interleaved
	token := os.Getenv("DEMO_TOKEN")

	origins := map[string]string{"granted": grantedPage, "internal": internalPage}
	urls := map[string]string{}
	var servers []*http.Server
	for _, name := range []string{"granted", "internal"} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		page := origins[name]
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			auth := "no token"
			if t := r.Header.Get("Authorization"); t != "" {
				auth = "wrong token"
				if token != "" && subtle.ConstantTimeCompare([]byte(t), []byte("Bearer "+token)) == 1 {
					auth = "right token"
				}
			}
			mu.Lock()
			fmt.Fprintf(lf, "%s %s %s %s (%s)\n", time.Now().UTC().Format(time.RFC3339), name, r.Method, r.URL, auth)
			mu.Unlock()
			switch {
			case name == "granted" && token != "" && strings.HasPrefix(r.URL.Path, "/api/"):
				w.Header().Set("Content-Type", "application/json")
				if auth != "right token" {
					w.Header().Set("WWW-Authenticate", `Bearer realm="demo"`)
					w.WriteHeader(http.StatusUnauthorized)
					fmt.Fprintf(w, `{"error":"this API needs Authorization: Bearer <token> (%s)"}`+"\n", auth)
					return
				}
				fmt.Fprint(w, `{"account":"demo","balance":"1234.56 USD","token":"accepted"}`+"\n")
			case name == "granted" && r.URL.Path == "/echo-headers":
				echoHeaders(w, r)
			default:
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				fmt.Fprint(w, page)
			}
		})
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
		servers = append(servers, srv)
		go srv.Serve(l)
		urls[name] = "http://" + l.Addr().String()
	}
	line := fmt.Sprintf("granted=%s internal=%s\n", urls["granted"], urls["internal"])
	if err := os.WriteFile(addrFile+".tmp", []byte(line), 0o600); err != nil {
		return err
	}
	if err := os.Rename(addrFile+".tmp", addrFile); err != nil {
		return err
	}
	<-ctx.Done()
	for _, s := range servers {
		s.Close()
	}
	return nil
}

// echoHeaders answers with the request's headers as JSON, the way an API that
// reflects what it received would.
func echoHeaders(w http.ResponseWriter, r *http.Request) {
	names := make([]string, 0, len(r.Header))
	for n := range r.Header {
		names = append(names, n)
	}
	sort.Strings(names)
	h := map[string]string{}
	for _, n := range names {
		h[n] = strings.Join(r.Header[n], ", ")
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"you_sent": h})
}
