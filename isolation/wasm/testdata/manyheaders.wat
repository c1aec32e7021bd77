;; Hands http_request a request whose one header holds about 22 million empty values
;; (up to 63 MiB of `,""`), then prints the host's reply. Parsed whole, that is gigabytes of
;; host memory the call's budget never sees.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "skillbox" "http_request" (func $req (param i32 i32) (result i32)))
  (import "skillbox" "http_response" (func $resp (param i32 i32) (result i32)))
  (memory (export "memory") 1024) ;; 64 MiB
  ;; iovec at 0, nwritten at 8; the request starts at 64, its values at 111.
  (data (i32.const 64) "{\"url\":\"http://127.0.0.1:1/\",\"headers\":{\"a\":[\"\"")
  (func (export "_start")
    (local $end i32) (local $p i32) (local $n i32)
    (local.set $end (i32.const 0x03f00000)) ;; 63 MiB
    ;; One `,""` at 111, then doubled with memory.copy until within 8 bytes of the end.
    (i32.store8 (i32.const 111) (i32.const 44))            ;; ,
    (i32.store16 (i32.const 112) (i32.const 0x2222))       ;; ""
    (local.set $p (i32.const 114))
    (block $done (loop $l
      (local.set $n (i32.sub (local.get $p) (i32.const 111)))
      (br_if $done (i32.gt_u (i32.add (local.get $p) (local.get $n)) (i32.sub (local.get $end) (i32.const 8))))
      (memory.copy (local.get $p) (i32.const 111) (local.get $n))
      (local.set $p (i32.add (local.get $p) (local.get $n)))
      (br $l)))
    (i32.store8 (local.get $p) (i32.const 93))                         ;; ]
    (i32.store8 (i32.add (local.get $p) (i32.const 1)) (i32.const 125)) ;; }
    (i32.store8 (i32.add (local.get $p) (i32.const 2)) (i32.const 125)) ;; }
    (local.set $n (call $req (i32.const 64) (i32.sub (i32.add (local.get $p) (i32.const 3)) (i32.const 64))))
    (if (i32.lt_s (local.get $n) (i32.const 0)) (then unreachable))
    (local.set $n (call $resp (i32.const 64) (local.get $n)))
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (local.get $n))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
