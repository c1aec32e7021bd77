package approval_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/runtime/approval"
)

// An approver sees the input canonically: indented, keys sorted, numbers as written,
// the caller's own layout gone, and every character that could hide or reorder text
// escaped, while the view is still JSON with the input's value.
func TestInputView(t *testing.T) {
	in := "{\"payee\":\"alice\u202e \u2066evil\u2069\",\"amount\":1e2,\n\n\n\n\"note\":\"a\\u0000b\u0085c\u200bd\u00a0e\ufeff\U000e0041\u2028<b>&\",\"x\":[\"\U0001F600\",\"\u0301\u00e9\"]}"
	got := approval.InputView([]byte(in))
	want := `{
  "amount": 1e2,
  "note": "a\u0000b\u0085c\u200bd\u00a0e\ufeff\udb40\udc41\u2028<b>&",
  "payee": "alice\u202e \u2066evil\u2069",
  "x": [
    "` + "\U0001F600" + `",
    "` + "\u0301\u00e9" + `"
  ]
}`
	if got != want {
		t.Errorf("view:\n%s\nwant:\n%s", got, want)
	}
	for _, r := range got {
		if r != '\n' && approval.Disguising(r) {
			t.Errorf("the view keeps %U", r)
		}
	}
	var a, b any
	if err := json.Unmarshal([]byte(in), &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(got), &b); err != nil || !reflect.DeepEqual(a, b) {
		t.Errorf("the view is not the input's value: %v", err)
	}
	// A stack of combining marks (drawn over the lines around it) is escaped past the
	// second; characters drawn blank are escaped (a second review).
	if v := approval.InputView([]byte("\"a\u0301\u0302\u0303\u0304b\u2800c\u3164\"")); v != `"a`+"\u0301\u0302"+`\u0303\u0304b\u2800c\u3164"` {
		t.Errorf("marks and blanks: %q", v)
	}
	if v := approval.InputView([]byte(`{"a":1} {}`)); !strings.HasPrefix(v, "(not shown: 10 bytes") {
		t.Errorf("not one JSON value: %q", v)
	}
}
