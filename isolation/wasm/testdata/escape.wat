;; Opens a path relative to the first preopen (fd 3) straight through WASI, with no
;; guest-side path cleaning. Input: one mode byte ('r' read and print, 'c' create and
;; write "pwned") followed by the path. Exits with 100+errno when path_open fails.
(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 32) "pwned")
  ;; iovec at 0, counts at 8, opened fd at 12, input at 1024, file data at 4096
  (func (export "_start")
    (local $n i32) (local $errno i32) (local $fd i32)
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const 1024))
    (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
    (local.set $n (i32.load (i32.const 8)))
    (if (i32.lt_u (local.get $n) (i32.const 2)) (then (call $proc_exit (i32.const 2))))
    (if (i32.eq (i32.load8_u (i32.const 1024)) (i32.const 99)) ;; 'c'
      (then
        ;; oflags CREAT|TRUNC, rights fd_read|fd_write
        (local.set $errno (call $path_open (i32.const 3) (i32.const 1)
          (i32.const 1025) (i32.sub (local.get $n) (i32.const 1))
          (i32.const 9) (i64.const 66) (i64.const 66) (i32.const 0) (i32.const 12)))
        (if (local.get $errno) (then (call $proc_exit (i32.add (i32.const 100) (local.get $errno)))))
        (i32.store (i32.const 0) (i32.const 32))
        (i32.store (i32.const 4) (i32.const 5))
        (local.set $errno (call $fd_write (i32.load (i32.const 12)) (i32.const 0) (i32.const 1) (i32.const 8)))
        (if (local.get $errno) (then (call $proc_exit (i32.add (i32.const 100) (local.get $errno)))))
        (return)))
    (local.set $errno (call $path_open (i32.const 3) (i32.const 1)
      (i32.const 1025) (i32.sub (local.get $n) (i32.const 1))
      (i32.const 0) (i64.const 2) (i64.const 2) (i32.const 0) (i32.const 12)))
    (if (local.get $errno) (then (call $proc_exit (i32.add (i32.const 100) (local.get $errno)))))
    (local.set $fd (i32.load (i32.const 12)))
    (i32.store (i32.const 0) (i32.const 4096))
    (i32.store (i32.const 4) (i32.const 4096))
    (local.set $errno (call $fd_read (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)))
    (if (local.get $errno) (then (call $proc_exit (i32.add (i32.const 100) (local.get $errno)))))
    (i32.store (i32.const 4) (i32.load (i32.const 8)))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
