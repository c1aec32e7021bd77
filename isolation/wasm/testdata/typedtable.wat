;; Base of a hostile command (TestTypedTableKeepsItsCap): the test replaces its table
;; section with 63 00 00, which the table cap once read as a table of min 0 (ref byte
;; 0x63, flags 0) and rewrote as 63 01 00 <max>, which wazero reads as a table of
;; (ref null 1) with no maximum at all. _start grows the table by 4 Mi entries (32 MiB
;; of host memory, past MaxTableEntries) and writes "grown" or "refused".
(module
  (type $t0 (func))
  (type $t1 (func (param i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (table $t 1 funcref)
  (memory (export "memory") 1)
  (data (i32.const 100) "grown")
  (data (i32.const 200) "refused")
  (func (export "_start") (type $t0)
    (if (i32.eq (table.grow $t (table.get $t (i32.const 0)) (i32.const 4194304)) (i32.const -1))
      (then (i32.store (i32.const 0) (i32.const 200)) (i32.store (i32.const 4) (i32.const 7)))
      (else (i32.store (i32.const 0) (i32.const 100)) (i32.store (i32.const 4) (i32.const 5))))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
