package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/skillbox-dev/skillbox/skills/sdk"
)

// A skill is a main that hands one typed function to sdk.Run:
//
//	func main() { sdk.Run(greet) }
//
// Main is the same path with explicit streams, as tests use it.
func ExampleMain() {
	type In struct {
		Name string `json:"name"`
	}
	type Out struct {
		Greeting string `json:"greeting"`
	}
	greet := func(_ context.Context, in In) (Out, error) {
		if in.Name == "" {
			return Out{}, errors.New("name is required")
		}
		return Out{Greeting: "hello, " + in.Name}, nil
	}
	code := sdk.Main(context.Background(), strings.NewReader(`{"name":"Ada"}`), os.Stdout, os.Stdout, greet)
	fmt.Println("exit", code)
	code = sdk.Main(context.Background(), strings.NewReader(`{}`), os.Stdout, os.Stdout, greet)
	fmt.Println("exit", code)
	// Output:
	// {"greeting":"hello, Ada"}
	// exit 0
	// name is required
	// exit 1
}

// Requests go through the host with an ordinary net/http client; a refused origin is
// an *sdk.EgressError. Outside skillbox (as here, in a host-side test) the client
// reports that there is no host.
func ExampleHTTPClient() {
	resp, err := sdk.HTTPClient().Get("https://api.example.com/items")
	var denied *sdk.EgressError
	switch {
	case errors.As(err, &denied):
		fmt.Println("refused:", denied.Reason, denied.Message)
	case errors.Is(err, sdk.ErrNotUnderSkillbox):
		fmt.Println("not under skillbox")
	case err == nil:
		resp.Body.Close()
		fmt.Println(resp.Status)
	}
	// Output: not under skillbox
}
