;; Grows its table by 64 Mi entries (512 MiB of host memory, outside the linear-memory
;; budget) and prints whether it could: the sandbox caps tables, so it cannot.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (table $t 0 funcref)
  (memory (export "memory") 1)
  (data (i32.const 16) "{\"grew\":false}")
  (data (i32.const 32) "{\"grew\":true} ")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (if (i32.ne (table.grow $t (ref.null func) (i32.const 67108864)) (i32.const -1))
      (then (i32.store (i32.const 0) (i32.const 32))))
    (i32.store (i32.const 4) (i32.const 14))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
