;; Base of a hostile reactor (TestReactorHiddenGlobal): its global section is replaced by
;; the test with an encoding the rewrite once read differently from wazero (a ref.null
;; whose type index is a non-minimal LEB128 that the rewrite took for one byte), so that
;; the mutable global $g was not seen, not exported, and not set back between calls.
;; Each call writes the global as a digit and adds one to it.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $r funcref (ref.null func))
  (global $g (mut i32) (i32.const 0))
  (global $v v128 (v128.const i64x2 0 0))
  (func (export "_initialize"))
  (func (export "skillbox_handle") (result i32)
    (i32.store8 (i32.const 100) (i32.add (i32.const 48) (global.get $g)))
    (global.set $g (i32.add (global.get $g) (i32.const 1)))
    (i32.store (i32.const 0) (i32.const 100))
    (i32.store (i32.const 4) (i32.const 1))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (i32.const 0)))
