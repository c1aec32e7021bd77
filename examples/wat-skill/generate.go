// Package watskill holds a skillbox skill written in plain WebAssembly text
// (upper.wat) with no SDK and no compiler. The package directory upper/ holds only
// what a package may hold: skill.yaml and module.wasm. The Go files here only rebuild
// the module and test it in the real sandbox.
package watskill

// module.wasm is committed so that neither the tests nor users need wabt.
//go:generate wat2wasm upper.wat -o upper/module.wasm
