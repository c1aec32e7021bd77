package engine

// The test modules are WAT, compiled with wabt's wat2wasm; the .wasm files are
// committed so that tests need no wabt.
//go:generate wat2wasm testdata/echo.wat -o testdata/echo.wasm
//go:generate wat2wasm testdata/loop.wat -o testdata/loop.wasm
//go:generate wat2wasm testdata/rawhttp.wat -o testdata/rawhttp.wasm
//go:generate wat2wasm testdata/failhttp.wat -o testdata/failhttp.wasm
//go:generate wat2wasm testdata/denyloop.wat -o testdata/denyloop.wasm
//go:generate wat2wasm testdata/denyflood.wat -o testdata/denyflood.wasm
//go:generate wat2wasm testdata/stdinerr.wat -o testdata/stdinerr.wasm
