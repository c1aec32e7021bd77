package review_test

import (
	"fmt"

	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/review"
)

func ExampleDescribe() {
	m, err := manifest.Parse([]byte(`apiVersion: skillbox/v1
name: fetch
version: 1.2.0
description: Fetch a web page and return its readable text.
sandbox: {wasm: {module: module.wasm, sha256: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef}}
capabilities:
  network: [https://api.example.com, "https://*.wikipedia.org"]
  files: [{path: /data, access: read-write}]
  secrets: [API_TOKEN]
`))
	if err != nil {
		panic(err)
	}
	fmt.Print(review.Describe(m).Text())
	// Output:
	// fetch 1.2.0: Fetch a web page and return its readable text.
	//   signer:   unsigned
	//   code:     wasm module module.wasm
	//
	// It can:
	//   connect to https://api.example.com
	//   connect to https://*.wikipedia.org
	//   read and write files under /data
	//   receive secrets API_TOKEN (the skill can read this value and send it anywhere it can reach)
	//
	// Limits per call: timeout 10s, memory 64MiB, output 1MiB, requests 20
	//
	// Risk notes:
	//   ! https://*.wikipedia.org: wildcard: any host under wikipedia.org
	//   ! /data: read-write: can change and delete files there
	//   ! secrets: receives API_TOKEN: the skill can read this value and send it anywhere it can reach
}
