;; denyflood: sends the request in its stdin (the host's JSON form) 5,000 times through
;; skillbox.http_request, ignoring every reply, then writes {} and exits: a skill
;; hammering an origin it was not granted.
(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "skillbox" "http_request" (func $req (param i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 16) "{}")
  ;; iovec at 0; counter at 8; "{}" at 16; request buffer at 1024 (up to 64000 bytes).
  (func (export "_start")
    (local $len i32) (local $n i32) (local $i i32)
    (block $done
      (loop $more
        (i32.store (i32.const 0) (i32.add (i32.const 1024) (local.get $len)))
        (i32.store (i32.const 4) (i32.sub (i32.const 64000) (local.get $len)))
        (br_if $done (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
        (local.set $n (i32.load (i32.const 8)))
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $len (i32.add (local.get $len) (local.get $n)))
        (br $more)))
    (loop $again
      (drop (call $req (i32.const 1024) (local.get $len)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 5000))))
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 2))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
