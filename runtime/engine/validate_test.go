package engine_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/internal/testkit"
)

// TestEngineValidatesRequests: a missing or malformed name and negative or below-floor
// limits are refused by the engine itself (whatever door the call came through), as
// INVALID_INPUT with the field, and every refusal is audited once as invoke.refused;
// the record of a malformed name has no skill field (the caller's bytes stay out).
func TestEngineValidatesRequests(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.installApprove(t, testkit.Package{Name: "echo", Version: "1.0.0", Module: "testdata/echo.wasm", Body: echoBody}, nil)
	cases := []struct {
		name  string
		req   engine.Request
		field string
		skill string // in the audit record
	}{
		{"no name", engine.Request{Input: []byte(`{}`)}, "name", ""},
		{"not a name", engine.Request{Skill: "Echo\n../x", Input: []byte(`{}`)}, "name", ""},
		{"negative timeout", engine.Request{Skill: "echo", Input: []byte(`{}`), Limits: manifest.Limits{Timeout: -1}}, "limits", "echo"},
		{"negative memory", engine.Request{Skill: "echo", Input: []byte(`{}`), Limits: manifest.Limits{Memory: -1}}, "limits", "echo"},
		{"negative requests", engine.Request{Skill: "echo", Input: []byte(`{}`), Limits: manifest.Limits{Requests: -1}}, "limits", "echo"},
		{"cpu below the floor", engine.Request{Skill: "echo", Input: []byte(`{}`), Limits: manifest.Limits{CPU: 1e-6}}, "limits", "echo"},
		{"memory below the floor", engine.Request{Skill: "echo", Input: []byte(`{}`), Limits: manifest.Limits{Memory: 1}}, "limits", "echo"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.Caller = "test"
			before := len(auditEvents(t, f.eng))
			_, err := f.eng.Invoke(ctx, tc.req)
			var ee *engine.Error
			if reasonOf(t, err) != engine.ReasonInvalidInput || !errors.As(err, &ee) || ee.Field != tc.field || ee.AuditID == "" {
				t.Fatalf("got %v (%s), want INVALID_INPUT on %s with an audit id", err, engine.ReasonOf(err), tc.field)
			}
			evs := auditEvents(t, f.eng)
			if len(evs) != before+1 {
				t.Fatalf("%d new audit records, want exactly one", len(evs)-before)
			}
			rec := evs[len(evs)-1]
			if rec.Event != engine.EventInvokeRefused || rec.Reason != string(engine.ReasonInvalidInput) || rec.Skill != tc.skill {
				t.Fatalf("audit record %+v, want invoke.refused INVALID_INPUT with skill %q", rec.Record, tc.skill)
			}
			if strings.Contains(err.Error(), "../x") {
				t.Fatalf("refusal %q quotes the caller's name", err)
			}
		})
	}
	// The kill switch's name is checked by the engine too.
	if _, err := f.eng.Disable(ctx, "../echo", "test", "x"); reasonOf(t, err) != engine.ReasonInvalidInput {
		t.Fatalf("disable of a non-name: %v", err)
	}
	if err := f.eng.Enable(ctx, "", "test"); reasonOf(t, err) != engine.ReasonInvalidInput {
		t.Fatalf("enable of no name: %v", err)
	}
}
