;; Declares a table of 2 Mi entries (16 MiB of host memory at instantiation): refused.
(module
  (table 2097152 funcref)
  (memory (export "memory") 1)
  (func (export "_start")))
