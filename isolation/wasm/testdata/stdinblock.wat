;; Waits for stdin forever: polls fd 0 for reading (no clock subscription) and reads it,
;; again and again, also after end of input.
(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; Subscription at 0: tag 1 (fd_read), fd 0 at 16. Event out at 64, nevents at 128.
  ;; iovec at 256: buf 512, len 1024; nread at 264.
  (func (export "_start")
    (i32.store8 (i32.const 8) (i32.const 1))
    (i32.store (i32.const 16) (i32.const 0))
    (i32.store (i32.const 256) (i32.const 512))
    (i32.store (i32.const 260) (i32.const 1024))
    (loop $again
      (drop (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))
      (drop (call $fd_read (i32.const 0) (i32.const 256) (i32.const 1) (i32.const 264)))
      (br $again))))
