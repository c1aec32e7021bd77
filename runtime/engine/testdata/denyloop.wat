;; denyloop: rawhttp, then spins forever: its call ends only when the caller gives up,
;; after a request that may have been denied.
(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "skillbox" "http_request" (func $req (param i32 i32) (result i32)))
  (import "skillbox" "http_response" (func $resp (param i32 i32) (result i32)))
  (memory (export "memory") 4)
  ;; iovec at 0; counter at 8; request buffer at 1024 (up to 64000 bytes); result at 65536.
  (func (export "_start")
    (local $len i32) (local $n i32)
    (block $done
      (loop $more
        (i32.store (i32.const 0) (i32.add (i32.const 1024) (local.get $len)))
        (i32.store (i32.const 4) (i32.sub (i32.const 64000) (local.get $len)))
        (br_if $done (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
        (local.set $n (i32.load (i32.const 8)))
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $len (i32.add (local.get $len) (local.get $n)))
        (br $more)))
    (local.set $n (call $req (i32.const 1024) (local.get $len)))
    (if (i32.lt_s (local.get $n) (i32.const 0)) (then (call $exit (i32.const 2))))
    (if (i32.gt_s (local.get $n) (i32.const 131072)) (then (call $exit (i32.const 3))))
    (local.set $n (call $resp (i32.const 65536) (local.get $n)))
    (if (i32.lt_s (local.get $n) (i32.const 0)) (then (call $exit (i32.const 4))))
    (i32.store (i32.const 0) (i32.const 65536))
    (i32.store (i32.const 4) (local.get $n))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (loop $forever (br $forever))))
