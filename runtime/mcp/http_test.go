package mcp_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/skillbox-dev/skillbox/runtime/client"
	"github.com/skillbox-dev/skillbox/runtime/mcp"
)

// blocking is a backend whose one tool holds every call until release is closed.
type blocking struct {
	entered chan struct{}
	release chan struct{}
}

func (b *blocking) Skills(context.Context, string) ([]mcp.Skill, error) {
	return []mcp.Skill{{Name: "hold", Version: "1.0.0", Input: map[string]any{"type": "object"}}}, nil
}

func (b *blocking) Invoke(ctx context.Context, _, _ string, _ []byte, _ func(client.Waiting)) (*mcp.Result, error) {
	select {
	case b.entered <- struct{}{}:
	case <-b.release:
	}
	select {
	case <-b.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &mcp.Result{Output: []byte(`{}`)}, nil
}

// bearerAdmission names the caller by its bearer token.
type bearerAdmission struct{}

func (bearerAdmission) CheckHost(*http.Request) error { return nil }
func (bearerAdmission) Identify(r *http.Request) (string, error) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return "", errors.New("no token")
	}
	return "token:" + tok, nil
}

type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

func connect(t *testing.T, ctx context.Context, url, token string) *sdk.ClientSession {
	t.Helper()
	c := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "1"}, nil)
	cs, err := c.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: url,
		HTTPClient: &http.Client{Transport: bearer{token, http.DefaultTransport}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// TestRequestsBoundedPerCaller: one caller cannot have more than MaxCallerRequests
// HTTP requests under way (each a goroutine and a connection: tool calls, and the
// streams held open for notifications); past it a request gets 429, another caller is
// still served, and the caller is served again once its requests end.
func TestRequestsBoundedPerCaller(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := &blocking{entered: make(chan struct{}), release: make(chan struct{})}
	d := mcp.New(b, "test")
	srv := httptest.NewServer(d.Handler(bearerAdmission{}, nil))
	defer srv.Close()
	var once sync.Once
	release := func() { once.Do(func() { close(b.release) }) }
	defer release() // before srv.Close, so that a failing run does not hold its calls
	url := srv.URL + mcp.Path

	alice := connect(t, ctx, url, "alice")
	errs := make(chan error, mcp.MaxCallerRequests+2)
	held, refused := 0, error(nil)
	for i := 0; i <= mcp.MaxCallerRequests && refused == nil; i++ {
		go func() {
			_, err := alice.CallTool(ctx, &sdk.CallToolParams{Name: "hold", Arguments: map[string]any{}})
			errs <- err
		}()
		select {
		case <-b.entered:
			held++
		case refused = <-errs:
		}
	}
	if refused == nil || !strings.Contains(refused.Error(), "Too Many Requests") {
		t.Fatalf("after %d calls under way: %v, want 429 Too Many Requests", held, refused)
	}
	if held > mcp.MaxCallerRequests {
		t.Fatalf("%d calls under way for one caller, over %d", held, mcp.MaxCallerRequests)
	}
	// Another caller is served meanwhile.
	bob := connect(t, ctx, url, "bob")
	go func() {
		_, err := bob.CallTool(ctx, &sdk.CallToolParams{Name: "hold", Arguments: map[string]any{}})
		errs <- err
	}()
	<-b.entered
	release()
	for range held + 1 {
		if err := <-errs; err != nil {
			t.Fatalf("a held call: %v", err)
		}
	}
	if _, err := alice.CallTool(ctx, &sdk.CallToolParams{Name: "hold", Arguments: map[string]any{}}); err != nil {
		t.Fatalf("after the calls ended: %v", err)
	}
}

// Arguments that are not UTF-8 are refused as the engine refuses such input, before
// any backend is asked: the gRPC backend could not even send them (a protobuf string
// must be UTF-8) and would have answered with a marshalling error.
func TestArgumentsNotUTF8Refused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b := &blocking{entered: make(chan struct{}, 1), release: make(chan struct{})}
	close(b.release) // a call that reaches the backend returns at once
	srv := httptest.NewServer(mcp.New(b, "test").Handler(bearerAdmission{}, nil))
	defer srv.Close()
	cs := connect(t, ctx, srv.URL+mcp.Path, "alice")
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "hold", Arguments: json.RawMessage("{\"a\":\"\xff\"}")})
	if err != nil {
		t.Fatal(err)
	}
	if !res.IsError || len(res.Content) != 1 || !strings.Contains(res.Content[0].(*sdk.TextContent).Text, "not UTF-8 text") {
		t.Fatalf("result %+v: want an isError result saying the arguments are not UTF-8", res)
	}
	select {
	case <-b.entered:
		t.Fatal("the backend was asked")
	default:
	}
}
