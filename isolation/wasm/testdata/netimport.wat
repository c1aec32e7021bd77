;; Imports the network host function; refused unless the call is granted network.
(module
  (import "skillbox" "http_request" (func $req (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")))
