;; A core module, not a component.
(module (func (export "execute") (result i32) i32.const 0))
