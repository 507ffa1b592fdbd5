;; Imports an interface nobody provides.
(component (import "evil:x/y" (func)))
