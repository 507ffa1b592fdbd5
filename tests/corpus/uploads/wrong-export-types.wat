;; Exports `describe` and `execute`, with the wrong types (u32 results, no input).
(component
  (core module $m (func (export "f") (result i32) i32.const 1))
  (core instance $i (instantiate $m))
  (func (export "describe") (result u32) (canon lift (core func $i "f")))
  (func (export "execute") (result u32) (canon lift (core func $i "f"))))
