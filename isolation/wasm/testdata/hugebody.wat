;; Hands http_request one request JSON of about 512 MiB (a base64 body of 'A's built in
;; its own memory), then prints the host's reply. Only a size check before parsing
;; keeps the host from scanning, decoding and copying all of it inside the host call.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "skillbox" "http_request" (func $req (param i32 i32) (result i32)))
  (import "skillbox" "http_response" (func $resp (param i32 i32) (result i32)))
  (memory (export "memory") 8192) ;; 512 MiB
  ;; iovec at 0, nwritten at 8; the request starts at 64 and its body at 101.
  (data (i32.const 64) "{\"url\":\"http://127.0.0.1:1/\",\"body\":\"")
  (func (export "_start")
    (local $end i32) (local $n i32)
    (local.set $end (i32.const 0x1ff00003)) ;; the body's length is a multiple of 4
    (memory.fill (i32.const 101) (i32.const 65) (i32.sub (local.get $end) (i32.const 103)))
    (i32.store8 (i32.sub (local.get $end) (i32.const 2)) (i32.const 34))  ;; "
    (i32.store8 (i32.sub (local.get $end) (i32.const 1)) (i32.const 125)) ;; }
    (local.set $n (call $req (i32.const 64) (i32.sub (local.get $end) (i32.const 64))))
    (if (i32.lt_s (local.get $n) (i32.const 0)) (then unreachable))
    (local.set $n (call $resp (i32.const 64) (local.get $n)))
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (local.get $n))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
