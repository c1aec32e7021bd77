// Package jsonschema is github.com/santhosh-tekuri/jsonschema/v6 v6.0.3 (Apache-2.0,
// see LICENSE), copied here with one change: the drafts' metaschemas are compiled on
// the first Compile (draftsOnce in draft.go) instead of in the package's init.
//
// Why a copy: every program that linked v6 paid for compiling five drafts'
// metaschemas (1.7 MB in 21,000 allocations, 3-8 ms) before main, whether it
// validated anything or not, which alone put `skillbox run DIR` over its start-up
// budget (issue 18). A replace directive would have broken `go install ...@version`;
// switching to another validator would have changed the drafts supported and every
// schema message authors see (docs/rationale.md, "A CLI that starts fast").
//
// To update: copy the new release's non-test .go files, kind/ and metaschemas/ over
// these, rewrite the import path, and apply the draftsOnce change again.
package jsonschema
