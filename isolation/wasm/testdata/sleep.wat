;; Sleeps an hour in WASI poll_oneoff (what time.Sleep, thread::sleep and nanosleep
;; become on wasip1), again and again: only a sleep that ends with the call can stop it.
(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; One subscription at 0 (48 bytes): userdata, tag 0 (clock), clock id 1 (monotonic),
  ;; timeout 3600 s relative, precision 0, flags 0. Event out at 64, nevents at 128.
  (func (export "_start")
    (i32.store8 (i32.const 8) (i32.const 0))
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (i64.const 3600000000000))
    (loop $again
      (drop (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))
      (br $again))))
