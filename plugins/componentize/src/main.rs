//! Turns the core wasm modules built from plugins/ into components, and checks that they import nothing but bookhost's own interfaces.
//!
//! ```text
//! bookhost-componentize --out-dir DIR <core.wasm>...   encode, check, write DIR/<name>.wasm
//! bookhost-componentize --check <component.wasm>...    print and check imports/exports
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, ensure, Context, Result};
use wit_component::{ComponentEncoder, DecodedWasm};

/// The only interfaces an executor may import: bookhost's own. Anything else
/// (WASI above all) would let an executor reach past the host's transaction.
const ALLOWED_IMPORT_PREFIX: &str = "bookhost:executor/";
const REQUIRED_EXPORTS: [&str; 2] = ["describe", "execute"];

const USAGE: &str = "usage: bookhost-componentize --out-dir DIR <core.wasm>...\n       \
                     bookhost-componentize --check <component.wasm>...";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bookhost-componentize: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> Result<()> {
    let mut out_dir: Option<PathBuf> = None;
    let mut check_only = false;
    let mut inputs = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--out-dir" => {
                let dir = args.next().context("--out-dir needs a directory")?;
                out_dir = Some(dir.into());
            }
            "--check" => check_only = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            flag if flag.starts_with('-') => bail!("unknown option {flag}\n{USAGE}"),
            _ => inputs.push(PathBuf::from(arg)),
        }
    }
    ensure!(!inputs.is_empty(), "no input files\n{USAGE}");

    if check_only {
        ensure!(out_dir.is_none(), "--check takes no --out-dir\n{USAGE}");
        for path in &inputs {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let summary = check(&bytes).with_context(|| format!("checking {}", path.display()))?;
            println!("{}: {summary}", path.display());
        }
        return Ok(());
    }

    let out_dir = out_dir.context(format!("--out-dir is required\n{USAGE}"))?;
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    for path in &inputs {
        let out = out_dir.join(format!("{}.wasm", component_name(path)?));
        let size = componentize(path, &out)?;
        println!("{:>9} bytes  {}", size, out.display());
    }
    Ok(())
}

/// `create_booking.wasm` (cargo's file name for crate `create-booking`)
/// becomes `create-booking`, the executor's name.
fn component_name(path: &Path) -> Result<String> {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .with_context(|| format!("{} has no usable file name", path.display()))?;
    Ok(stem.replace('_', "-"))
}

fn componentize(input: &Path, out: &Path) -> Result<usize> {
    let bytes = std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
    let component = ComponentEncoder::default()
        .module(&bytes)
        .with_context(|| {
            format!(
                "{}: not a core module with bookhost's component-type section \
                 (built with bookhost-sdk, and not stripped of custom sections?)",
                input.display()
            )
        })?
        .validate(true)
        .encode()
        .with_context(|| format!("encoding {} as a component", input.display()))?;
    check(&component).with_context(|| format!("checking the component of {}", input.display()))?;
    std::fs::write(out, &component).with_context(|| format!("writing {}", out.display()))?;
    Ok(component.len())
}

/// Decodes a component's world and refuses imports outside bookhost's own
/// package; returns a one-line summary of its imports and exports.
fn check(bytes: &[u8]) -> Result<String> {
    let (resolve, world) = match wit_component::decode(bytes).context("decoding the component")? {
        DecodedWasm::Component(resolve, world) => (resolve, world),
        DecodedWasm::WitPackage(..) => bail!("this is a WIT package, not a component"),
    };
    let world = &resolve.worlds[world];
    // World-level types (the world's `use types.{manifest}`) are listed as
    // imports too but carry no capability, so they are left out.
    // wit-component does not re-export wit-parser's `WorldItem`, hence the
    // variant is told by its `Debug` name rather than matched.
    let imports: Vec<String> = world
        .imports
        .iter()
        .filter(|(_, item)| !format!("{item:?}").starts_with("Type"))
        .map(|(k, _)| resolve.name_world_key(k))
        .collect();
    let exports: Vec<String> = world
        .exports
        .keys()
        .map(|k| resolve.name_world_key(k))
        .collect();
    let foreign: Vec<&String> = imports
        .iter()
        .filter(|i| !i.starts_with(ALLOWED_IMPORT_PREFIX))
        .collect();
    ensure!(
        foreign.is_empty(),
        "imports outside {ALLOWED_IMPORT_PREFIX}*: {foreign:?}"
    );
    for required in REQUIRED_EXPORTS {
        ensure!(
            exports.iter().any(|e| e == required),
            "does not export `{required}` (exports: {exports:?})"
        );
    }
    Ok(format!(
        "imports [{}] exports [{}]",
        imports.join(", "),
        exports.join(", ")
    ))
}
