;; Spins forever without calling out: only the wall-clock budget can stop it.
(module
  (memory (export "memory") 1)
  (func (export "_start") (loop $l (br $l))))
