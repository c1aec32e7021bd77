;; A reactor that grows its table and its memory by one each call and writes their
;; sizes as two digits: a reset cannot shrink either, so the instance must go.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (table $t 1 funcref)
  (func (export "_initialize"))
  (func (export "skillbox_handle") (result i32)
    (i32.store8 (i32.const 100) (i32.add (i32.const 48) (table.size $t)))
    (i32.store8 (i32.const 101) (i32.add (i32.const 48) (memory.size)))
    (drop (table.grow $t (ref.null func) (i32.const 1)))
    (drop (memory.grow (i32.const 1)))
    (i32.store (i32.const 0) (i32.const 100))
    (i32.store (i32.const 4) (i32.const 2))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (i32.const 0)))
