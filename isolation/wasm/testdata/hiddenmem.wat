;; Declares 4 GiB of memory without exporting it, so only instantiation can notice.
(module
  (memory 65536)
  (func (export "_start")))
