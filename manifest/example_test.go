package manifest_test

import (
	"fmt"

	"github.com/skillbox-dev/skillbox/manifest"
)

func ExampleParseOrigin() {
	o, err := manifest.ParseOrigin("HTTPS://*.Bücher.example:443/")
	fmt.Println(o, o.Host, o.Port, o.Wildcard, err)
	_, err = manifest.ParseOrigin("ftp://x")
	fmt.Println(err)
	// Output:
	// https://*.xn--bcher-kva.example xn--bcher-kva.example 443 true <nil>
	// "ftp://x": scheme must be http or https
}

func ExampleParse() {
	_, err := manifest.Parse([]byte(`apiVersion: skillbox/v1
name: Fetch
version: 1.0
description: x
sandbox: {wasm: {module: module.wasm, sha256: ""}}
capabilities:
  network: [https://api.example.com, "ftp://x"]
limits: {memory: 8GiB}
`))
	fmt.Println(err)
	// Output:
	// name: "Fetch": must match ^[a-z][a-z0-9-]{0,62}$ (lowercase letters, digits and hyphens, starting with a letter)
	// version: "1.0": not a semantic version (want MAJOR.MINOR.PATCH, e.g. 1.2.0)
	// sandbox.wasm.sha256: empty (run skillbox pack to fill it in)
	// capabilities.network[1]: "ftp://x": scheme must be http or https
	// limits.memory: "8GiB" is above the 4GiB maximum
}

func ExampleManifest_ValidateInput() {
	m, err := manifest.Parse([]byte(`apiVersion: skillbox/v1
name: fetch
version: 1.0.0
description: Fetch a page.
sandbox: {wasm: {module: module.wasm, sha256: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef}}
input:
  type: object
  required: [url]
  properties: {url: {type: string}, count: {type: integer}}
`))
	if err != nil {
		panic(err)
	}
	fmt.Println(m.ValidateInput([]byte(`{"count": 2}`)))
	fmt.Println(m.ValidateInput([]byte(`{"url": "https://x", "count": "2"}`)))
	fmt.Println(m.ValidateInput([]byte(`{"url": "https://x"}`)))
	// Output:
	// input.url: missing property
	// input.count: want an integer, got a string
	// <nil>
}
