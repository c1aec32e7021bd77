;; upper: a skillbox skill written by hand in WebAssembly text, with no SDK and no
;; compiler, to show that the guest ABI (skills/ABI.md) is plain WASI preview1:
;; the input JSON arrives on stdin, the output JSON leaves on stdout, a failure is a
;; last line on stderr and a non-zero exit.
;;
;; Input  {"text": "..."}  (the engine has already checked it against skill.yaml)
;; Output {"text": "..."}  the same string with ASCII letters a-z upper-cased.
;;
;; The string is transformed in place: escapes (\n, \", \u00e9...) are copied
;; untouched, so the output is valid JSON whatever the input string held, and
;; non-ASCII UTF-8 bytes pass through as they are.
(module
  (import "wasi_snapshot_preview1" "fd_read"   (func $fd_read   (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"  (func $fd_write  (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))

  ;; Page 0 holds scratch and constants; the input is read from $IN (page 1) on,
  ;; growing memory as needed (the sandbox's memory limit caps the growth).
  (memory (export "memory") 2)
  (global $IN i32 (i32.const 65536))
  ;; 0: iovec {ptr, len}; 8: count written by fd_read / fd_write.
  (data (i32.const 64)  "{\"text\":\"")                               ;; 9 bytes
  (data (i32.const 80)  "\"}\n")                                      ;; 3 bytes
  (data (i32.const 96)  "upper: input is not {\"text\": \"...\"}\n")  ;; 36 bytes
  (data (i32.const 160) "upper: cannot read stdin\n")                 ;; 25 bytes
  (data (i32.const 192) "upper: input too large for the memory limit\n") ;; 44 bytes
  (data (i32.const 240) "upper: cannot write stdout\n")               ;; 27 bytes

  ;; write_all writes mem[ptr, ptr+len) to fd, looping over short writes.
  (func $write_all (param $fd i32) (param $ptr i32) (param $len i32) (result i32)
    (block $done
      (loop $more
        (br_if $done (i32.eqz (local.get $len)))
        (i32.store (i32.const 0) (local.get $ptr))
        (i32.store (i32.const 4) (local.get $len))
        (if (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8))
          (then (return (i32.const 0))))
        (local.set $ptr (i32.add (local.get $ptr) (i32.load (i32.const 8))))
        (local.set $len (i32.sub (local.get $len) (i32.load (i32.const 8))))
        (br $more)))
    (i32.const 1))

  ;; fail prints one line to stderr (the caller sees it as the skill's message) and
  ;; exits 1.
  (func $fail (param $msg i32) (param $len i32)
    (drop (call $write_all (i32.const 2) (local.get $msg) (local.get $len)))
    (call $proc_exit (i32.const 1))
    (unreachable))

  ;; read_all reads stdin to its end into memory from $IN and returns the end.
  (func $read_all (result i32)
    (local $end i32) (local $free i32)
    (local.set $end (global.get $IN))
    (block $eof
      (loop $more
        ;; Keep at least 16 KiB free after $end.
        (local.set $free (i32.sub (i32.shl (memory.size) (i32.const 16)) (local.get $end)))
        (if (i32.lt_u (local.get $free) (i32.const 16384))
          (then
            (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1))
              (then (call $fail (i32.const 192) (i32.const 44))))
            (local.set $free (i32.add (local.get $free) (i32.const 65536)))))
        (i32.store (i32.const 0) (local.get $end))
        (i32.store (i32.const 4) (local.get $free))
        (if (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8))
          (then (call $fail (i32.const 160) (i32.const 25))))
        (br_if $eof (i32.eqz (i32.load (i32.const 8))))
        (local.set $end (i32.add (local.get $end) (i32.load (i32.const 8))))
        (br $more)))
    (local.get $end))

  ;; skip_ws returns the first position at or after p that is not JSON whitespace.
  (func $skip_ws (param $p i32) (param $end i32) (result i32)
    (local $c i32)
    (block $done
      (loop $more
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $c (i32.load8_u (local.get $p)))
        (br_if $done
          (i32.eqz
            (i32.or
              (i32.or (i32.eq (local.get $c) (i32.const 0x20)) (i32.eq (local.get $c) (i32.const 0x09)))
              (i32.or (i32.eq (local.get $c) (i32.const 0x0a)) (i32.eq (local.get $c) (i32.const 0x0d))))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $more)))
    (local.get $p))

  ;; expect checks that mem[p, p+n) equals the constant at lit (a prefix of the output
  ;; template, which spells the input's key too) and returns p+n, or fails.
  (func $expect (param $p i32) (param $end i32) (param $lit i32) (param $n i32) (result i32)
    (local $i i32)
    (if (i32.gt_u (i32.add (local.get $p) (local.get $n)) (local.get $end))
      (then (call $fail (i32.const 96) (i32.const 36))))
    (block $done
      (loop $more
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (if (i32.ne (i32.load8_u (i32.add (local.get $p) (local.get $i)))
                    (i32.load8_u (i32.add (local.get $lit) (local.get $i))))
          (then (call $fail (i32.const 96) (i32.const 36))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $more)))
    (i32.add (local.get $p) (local.get $n)))

  (func (export "_start")
    (local $end i32) (local $p i32) (local $start i32) (local $c i32)
    (local.set $end (call $read_all))
    ;; {  "text"  :  "   — whitespace allowed between tokens.
    (local.set $p (call $skip_ws (global.get $IN) (local.get $end)))
    (local.set $p (call $expect (local.get $p) (local.get $end) (i32.const 64) (i32.const 1)))  ;; {
    (local.set $p (call $skip_ws (local.get $p) (local.get $end)))
    (local.set $p (call $expect (local.get $p) (local.get $end) (i32.const 65) (i32.const 6)))  ;; "text"
    (local.set $p (call $skip_ws (local.get $p) (local.get $end)))
    (local.set $p (call $expect (local.get $p) (local.get $end) (i32.const 71) (i32.const 1)))  ;; :
    (local.set $p (call $skip_ws (local.get $p) (local.get $end)))
    (local.set $p (call $expect (local.get $p) (local.get $end) (i32.const 72) (i32.const 1)))  ;; "
    (local.set $start (local.get $p))
    ;; Upper-case the string's bytes in place up to its closing quote.
    (block $closed
      (loop $more
        (if (i32.ge_u (local.get $p) (local.get $end))
          (then (call $fail (i32.const 96) (i32.const 36))))
        (local.set $c (i32.load8_u (local.get $p)))
        (br_if $closed (i32.eq (local.get $c) (i32.const 0x22)))            ;; "
        (if (i32.eq (local.get $c) (i32.const 0x5c))                         ;; \ : keep the escaped byte
          (then (local.set $p (i32.add (local.get $p) (i32.const 2))) (br $more)))
        (if (i32.lt_u (i32.sub (local.get $c) (i32.const 0x61)) (i32.const 26))  ;; a-z
          (then (i32.store8 (local.get $p) (i32.sub (local.get $c) (i32.const 32)))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $more)))
    ;; {"text":"  +  the string  +  "}\n
    (if (i32.eqz
          (i32.and
            (i32.and
              (call $write_all (i32.const 1) (i32.const 64) (i32.const 9))
              (call $write_all (i32.const 1) (local.get $start) (i32.sub (local.get $p) (local.get $start))))
            (call $write_all (i32.const 1) (i32.const 80) (i32.const 3))))
      (then (call $fail (i32.const 240) (i32.const 27))))))
