// Package jsonschema is github.com/santhosh-tekuri/jsonschema/v6 v6.0.3 (Apache-2.0,
// see LICENSE), copied here with one change: a draft's metaschemas are compiled when
// a schema first names that draft (Draft.ensure, called from roots'
// _collectResources) instead of all five drafts' in the package's init.
//
// Why a copy: every program that linked v6 paid for compiling five drafts'
// metaschemas (1.7 MB in 21,000 allocations, 3-8 ms) before main, whether it
// validated anything or not, which alone put `skillbox run DIR` over its start-up
// budget (issue 18). A replace directive would have broken `go install ...@version`;
// switching to another validator would have changed the drafts supported and every
// schema message authors see (docs/rationale.md, "A CLI that starts fast").
//
// Checked: the library's own tests, run against the JSON-Schema-Test-Suite, fail the
// same 402 cases (tests newer than v6.0.3) with and without the change.
//
// To update: copy the new release's non-test .go files, kind/ and metaschemas/ over
// these, rewrite the import path, and apply the change again (grep "skillbox patch").
package jsonschema
