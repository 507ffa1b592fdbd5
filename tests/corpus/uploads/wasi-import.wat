;; Imports a WASI interface: executors may import only bookhost's own.
(component
  (import "wasi:cli/environment@0.2.0" (instance
    (export "get-arguments" (func (result (list string)))))))
