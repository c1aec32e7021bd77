;; Declares 4 GiB of memory up front (65536 pages).
(module
  (memory (export "memory") 65536)
  (func (export "_start")))
