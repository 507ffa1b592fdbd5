//! What a component imports, read from its binary before any compilation, and the rule that executors import nothing but bookhost's own interfaces.

use wasmtime::wasmparser::{ComponentTypeRef, Parser, Payload};

/// The only interfaces an executor may import. Anything else (WASI above
/// all) would let an executor reach past the host's transaction.
pub const ALLOWED_IMPORT_PREFIX: &str = "bookhost:executor/";

/// The names a component imports from its host: its top-level imports
/// (nested components' imports are satisfied inside it), but types (a world's
/// `use types.{manifest}` is imported as a type and carries no capability).
pub fn component_imports(bytes: &[u8]) -> Result<Vec<String>, String> {
    let mut imports = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| e.to_string())? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(section) if depth == 0 => {
                for import in section {
                    let import = import.map_err(|e| e.to_string())?;
                    if !matches!(import.ty, ComponentTypeRef::Type(_)) {
                        imports.push(import.name.name.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    Ok(imports)
}

/// The imports of `bytes` outside bookhost's interfaces.
pub fn foreign_imports(bytes: &[u8]) -> Result<Vec<String>, String> {
    Ok(component_imports(bytes)?
        .into_iter()
        .filter(|name| !name.starts_with(ALLOWED_IMPORT_PREFIX))
        .collect())
}
