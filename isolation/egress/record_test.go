package egress

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/skillbox-dev/skillbox/isolation"
	"github.com/skillbox-dev/skillbox/manifest"
)

// checkBounded fails if a record's text is longer than its bound, not valid UTF-8, or
// holds a control or format character.
func checkBounded(t *testing.T, r isolation.EgressRecord) {
	t.Helper()
	for _, f := range []struct {
		name, s string
		max     int
	}{{"method", r.Method, maxMethodBytes}, {"url", r.URL, MaxURLBytes}, {"reason", r.Reason, MaxReasonBytes}} {
		if len(f.s) > f.max || !utf8.ValidString(f.s) || strings.IndexFunc(f.s, func(r rune) bool {
			return unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
		}) >= 0 {
			t.Fatalf("record %s not bounded (%d bytes): %.80q", f.name, len(f.s), f.s)
		}
	}
}

// A skill that makes thousands of refused attempts with long URLs spends its request
// budget on them: it leaves requests+1 bounded records (the last one typed as over the
// limit), the rest are counted, and no request goes out once the budget is spent, not
// even to a granted origin.
func TestGuardDenialsSpendTheBudget(t *testing.T) {
	granted := newCountingServer(t, hello("ok"), false)
	other := newCountingServer(t, hello("no"), false)
	const budget, attempts = 3, 5000
	g := NewGuard([]manifest.Origin{origin("http", "127.0.0.1", granted.port)}, Limits{MaxRequests: budget, MaxResponseBytes: 10})
	long := other.URL + "/" + strings.Repeat("a", 30<<10) + "?q=" + strings.Repeat("%E2%80%AE", 100)
	var policy, overBudget int
	for i := 0; i < attempts; i++ {
		_, err := get(t, g, long)
		var de *DeniedError
		switch {
		case errors.As(err, &de):
			policy++
			if len(de.URL) > MaxURLBytes || len(de.Reason) > MaxReasonBytes {
				t.Fatalf("denial error not bounded: %d-byte URL, %d-byte reason", len(de.URL), len(de.Reason))
			}
		case IsBudget(err):
			overBudget++
			if len(err.Error()) > 2*MaxURLBytes {
				t.Fatalf("budget error is %d bytes", len(err.Error()))
			}
		default:
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if policy != budget || overBudget != attempts-budget {
		t.Fatalf("%d policy denials, %d over the budget; want %d and %d", policy, overBudget, budget, attempts-budget)
	}
	if _, err := get(t, g, granted.URL); !IsBudget(err) {
		t.Fatalf("granted origin after the budget was spent on denials: %v", err)
	}
	if n := granted.conns.Load() + other.conns.Load(); n != 0 {
		t.Fatalf("servers saw %d connections", n)
	}
	if made, denied := g.Counts(); made != 0 || denied != attempts+1 {
		t.Fatalf("counts %d %d, want 0 %d", made, denied, attempts+1)
	}
	recs := g.Records()
	if len(recs) != budget+1 {
		t.Fatalf("%d records, want %d", len(recs), budget+1)
	}
	for i, r := range recs {
		checkBounded(t, r)
		want := isolation.DenialNotGranted
		if i == budget {
			want = isolation.DenialRequestLimit
		}
		if r.Allowed || r.Denial != want || !strings.HasSuffix(r.URL, ellipsis) {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
}

// However large the budget, a Guard keeps at most MaxRecords records, including the
// first refusal over the budget.
func TestGuardKeepsAtMostMaxRecords(t *testing.T) {
	srv := newCountingServer(t, hello("ok"), false)
	g := NewGuard([]manifest.Origin{origin("http", "127.0.0.1", srv.port)}, Limits{MaxRequests: manifest.MaxRequests, MaxResponseBytes: 10})
	for i := 0; i < manifest.MaxRequests+10; i++ {
		_, err := get(t, g, fmt.Sprintf("http://127.0.0.1:%d/%d", srv.port+1, i))
		if err == nil {
			t.Fatal("an ungranted request went out")
		}
	}
	if _, err := get(t, g, srv.URL); !IsBudget(err) {
		t.Fatalf("after the budget: %v", err)
	}
	recs := g.Records()
	if len(recs) != MaxRecords || recs[len(recs)-1].Denial != isolation.DenialRequestLimit {
		t.Fatalf("%d records, last %+v", len(recs), recs[len(recs)-1])
	}
	if _, denied := g.Counts(); denied != manifest.MaxRequests+11 {
		t.Fatalf("denied %d", denied)
	}
}

func TestBoundText(t *testing.T) {
	long := strings.Repeat("é", 600) // 1200 bytes
	for _, c := range []struct{ in, want string }{
		{"http://a.test/x", "http://a.test/x"},
		{"a\nb\rc\x00d\x7fe\u0085f", "a\uFFFDb\uFFFDc\uFFFDd\uFFFDe\uFFFDf"},
		{"bad\xff\xfeutf8", "bad\uFFFD\uFFFDutf8"},
		{"bidi \u202egnp.exe", "bidi \uFFFDgnp.exe"},
		{strings.Repeat("x", MaxURLBytes), strings.Repeat("x", MaxURLBytes)},
		{strings.Repeat("x", MaxURLBytes+1), strings.Repeat("x", MaxURLBytes-len(ellipsis)) + ellipsis},
		{long, strings.Repeat("é", (MaxURLBytes-len(ellipsis))/2) + ellipsis},
	} {
		got := boundURL(c.in)
		if got != c.want || len(got) > MaxURLBytes || !utf8.ValidString(got) {
			t.Errorf("boundURL(%.40q) = %.60q (%d bytes), want %.60q", c.in, got, len(got), c.want)
		}
	}
}

// Through the proxy too (plain requests and CONNECT alike), refused attempts spend the
// budget, and only the first attempt over it is recorded.
func TestProxyDenialsSpendTheBudget(t *testing.T) {
	granted := newCountingServer(t, hello("ok"), false)
	other := newCountingServer(t, hello("no"), false)
	p, addr := startProxy(t)
	g := NewGuard([]manifest.Origin{origin("http", "127.0.0.1", granted.port)}, Limits{MaxRequests: 2, MaxResponseBytes: 10})
	token, release := p.Register(g)
	defer release()
	c := proxyClient(addr, token, nil)
	var codes []int
	for i := 0; i < 20; i++ {
		code, _, err := fetch(c, other.URL+"/"+strings.Repeat("b", 4<<10))
		if err != nil {
			t.Fatal(err)
		}
		codes = append(codes, code)
	}
	if codes[0] != 403 || codes[1] != 403 || codes[2] != 429 || codes[19] != 429 {
		t.Fatalf("status codes %v, want 403 403 then 429", codes)
	}
	conn := dialProxy(t, addr)
	fmt.Fprintf(conn, "CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nProxy-Authorization: Basic %s\r\n\r\n",
		other.port, other.port, basic(ProxyUser, token))
	if err := conn.closedByProxy(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if code, _, err := fetch(c, granted.URL); err != nil || code != 429 {
		t.Fatalf("granted origin after the budget was spent: %d %v", code, err)
	}
	if n := granted.conns.Load() + other.conns.Load(); n != 0 {
		t.Fatalf("servers saw %d connections", n)
	}
	recs := g.Records()
	if _, denied := g.Counts(); denied != 22 || len(recs) != 3 || recs[2].Denial != isolation.DenialRequestLimit {
		t.Fatalf("denied %d, records %+v", denied, recs)
	}
	for _, r := range recs {
		checkBounded(t, r)
	}
}
