package wasm

// The hostile and tiny test modules are committed as .wasm next to their .wat source,
// so tests need no wabt; regenerate them after editing a .wat.
//go:generate sh -c "cd testdata && for f in *.wat; do wat2wasm $DOLLAR{f} -o $DOLLAR{f%.wat}.wasm; done"
