;; A reactor in WAT, as C or Rust would build one, whose state lives where Go's does
;; not: an unexported mutable global, a static in linear memory, a table entry. Each
;; call writes four digits (the global, the table's size, the static, whether table
;; entry 0 is null) and then changes all three.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $g (mut i32) (i32.const 0))
  (table $t 1 funcref)
  (func $f)
  (elem (i32.const 0) $f)
  (func (export "_initialize"))
  (func (export "skillbox_handle") (result i32)
    (i32.store8 (i32.const 100) (i32.add (i32.const 48) (global.get $g)))
    (i32.store8 (i32.const 101) (i32.add (i32.const 48) (table.size $t)))
    (i32.store8 (i32.const 102) (i32.add (i32.const 48) (i32.load8_u (i32.const 200))))
    (i32.store8 (i32.const 103) (i32.add (i32.const 48) (ref.is_null (table.get $t (i32.const 0)))))
    (global.set $g (i32.add (global.get $g) (i32.const 1)))
    (i32.store8 (i32.const 200) (i32.add (i32.load8_u (i32.const 200)) (i32.const 1)))
    (table.set $t (i32.const 0) (ref.null func))
    (i32.store (i32.const 0) (i32.const 100))
    (i32.store (i32.const 4) (i32.const 4))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (i32.const 0)))
