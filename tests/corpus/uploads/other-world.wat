;; A valid component of another world: it exports `hello`, not describe/execute.
(component
  (core module $m (func (export "f") (result i32) i32.const 1))
  (core instance $i (instantiate $m))
  (func (export "hello") (result u32) (canon lift (core func $i "f"))))
