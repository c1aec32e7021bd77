package isolation_test

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/skillbox-dev/skillbox/isolation"
)

const testSecret = `s3cr3t/"va<l>ue+&`

func testRedactor(t *testing.T) *isolation.Redactor {
	t.Helper()
	r := isolation.NewRedactor([]isolation.BrokeredSecret{{Name: "TOKEN", Header: "Authorization", Value: "Bearer " + testSecret, Secret: testSecret}})
	if r == nil {
		t.Fatal("NewRedactor returned nil for a secret")
	}
	return r
}

// Every form a program echoes a value in is replaced; JSON stays JSON.
func TestRedactorForms(t *testing.T) {
	r := testRedactor(t)
	js, _ := json.Marshal(map[string]string{"authorization": "Bearer " + testSecret})
	in := "raw " + testSecret + " json " + string(js) + " end"
	got := r.String(in)
	if strings.Contains(got, "s3cr3t") {
		t.Fatalf("value left in %q", got)
	}
	if !strings.Contains(got, "[skillbox:secret TOKEN]") {
		t.Fatalf("no placeholder in %q", got)
	}
	out := r.Bytes(js)
	var m map[string]string
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("redacted JSON %s is not JSON: %v", out, err)
	}
	if m["authorization"] != "Bearer [skillbox:secret TOKEN]" {
		t.Fatalf("authorization = %q", m["authorization"])
	}
	if r.String("nothing here") != "nothing here" {
		t.Fatal("changed a text without the value")
	}
	var nilR *isolation.Redactor
	if nilR.String(testSecret) != testSecret || !nilR.Empty() {
		t.Fatal("a nil Redactor must redact nothing")
	}
	if isolation.NewRedactor([]isolation.BrokeredSecret{{Name: "E"}}) != nil {
		t.Fatal("an empty value must give no Redactor")
	}
}

// A value split over any read boundary is still caught.
func TestRedactorReaderSpansReads(t *testing.T) {
	r := testRedactor(t)
	body := strings.Repeat("x", 5000) + testSecret + strings.Repeat("y", 3) + testSecret + "s3cr3t" + testSecret
	want := r.String(body)
	if strings.Contains(want, testSecret) {
		t.Fatal("String left the value")
	}
	for name, src := range map[string]io.Reader{
		"one byte": iotest.OneByteReader(strings.NewReader(body)),
		"half":     iotest.HalfReader(strings.NewReader(body)),
		"whole":    strings.NewReader(body),
	} {
		got, err := io.ReadAll(r.Reader(io.NopCloser(src)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if string(got) != want {
			t.Fatalf("%s: got %q, want %q", name, got, want)
		}
	}
	// The source's error arrives after every byte.
	errSrc := io.MultiReader(strings.NewReader("ab"+testSecret), iotest.ErrReader(io.ErrUnexpectedEOF))
	got, err := io.ReadAll(r.Reader(io.NopCloser(errSrc)))
	if err != io.ErrUnexpectedEOF || !bytes.Equal(got, []byte("ab[skillbox:secret TOKEN]")) {
		t.Fatalf("got %q, %v", got, err)
	}
}
