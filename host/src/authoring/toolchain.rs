//! Finding the tools each language needs, the way plugins/build.sh does, and saying what is missing and how to get it.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::AuthoringError;

/// `name` on PATH, if it is there.
pub fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

fn missing(what: &str, how: &str) -> AuthoringError {
    AuthoringError::ToolMissing {
        what: what.to_owned(),
        how: how.to_owned(),
    }
}

/// Node.js (18 or newer) and npm, for TypeScript.
pub struct NodeTools {
    pub node: PathBuf,
    pub npm: PathBuf,
}

pub fn node() -> Result<NodeTools, AuthoringError> {
    const HOW: &str = "TypeScript executors need Node.js 18 or newer with npm: \
                       install them from https://nodejs.org or with `apt-get install nodejs npm`";
    let node = on_path("node").ok_or_else(|| missing("node (Node.js)", HOW))?;
    let npm = on_path("npm").ok_or_else(|| missing("npm", HOW))?;
    let version = Command::new(&node)
        .args(["-p", "process.versions.node"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let major: u32 = version
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major < 18 {
        return Err(missing(
            &format!("Node.js 18 or newer (found {version:?})"),
            HOW,
        ));
    }
    Ok(NodeTools { node, npm })
}

/// python3 with its venv module, for Python.
pub fn python() -> Result<PathBuf, AuthoringError> {
    const HOW: &str = "Python executors need python3 with venv: install it with \
                       `apt-get install python3 python3-venv` (or from https://python.org)";
    let python = on_path("python3").ok_or_else(|| missing("python3", HOW))?;
    let venv = Command::new(&python)
        .args(["-m", "venv", "--help"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !venv {
        return Err(missing("python3's venv module", HOW));
    }
    Ok(python)
}

/// How Rust executors are compiled to wasm32-unknown-unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RustToolchain {
    /// A rustup toolchain that has the target.
    Rustup,
    /// Debian's rustc-web, building std from rust-web-src (DESIGN.md).
    Debian,
}

pub const WASM_TARGET: &str = "wasm32-unknown-unknown";
pub const DEBIAN_WASM_LD: &str = "/usr/lib/llvm-16/bin/wasm-ld";
const DEBIAN_STD_SRC: &str = "/usr/lib/rustlib/src/rust/library";

/// The toolchain to build `project_dir` with: BOOKHOST_WASM_TOOLCHAIN
/// (`rustup` or `debian`) if set, else rustup if its active toolchain (for
/// that folder) has the target, else Debian's.
pub fn rust(project_dir: &Path) -> Result<RustToolchain, AuthoringError> {
    const HOW: &str = "Rust executors need a compiler for wasm32-unknown-unknown: with rustup, \
                       `rustup target add wasm32-unknown-unknown`; on Debian, \
                       `apt-get install rustc-web rust-web-src lld-16`";
    let rustup_has_target = || {
        on_path("rustup").is_some()
            && Command::new("rustup")
                .args(["target", "list", "--installed"])
                .current_dir(project_dir)
                .output()
                .is_ok_and(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .any(|l| l.trim() == WASM_TARGET)
                })
    };
    let debian_present = || {
        [
            "/usr/bin/cargo",
            "/usr/bin/rustc",
            DEBIAN_WASM_LD,
            DEBIAN_STD_SRC,
        ]
        .iter()
        .all(|p| Path::new(p).exists())
    };
    match std::env::var("BOOKHOST_WASM_TOOLCHAIN").ok().as_deref() {
        Some("rustup") if rustup_has_target() => Ok(RustToolchain::Rustup),
        Some("rustup") => Err(missing("the rustup target wasm32-unknown-unknown", HOW)),
        Some("debian") if debian_present() => Ok(RustToolchain::Debian),
        Some("debian") => Err(missing("Debian's rustc-web, rust-web-src or lld-16", HOW)),
        Some(other) => Err(missing(
            &format!("the toolchain {other:?} (BOOKHOST_WASM_TOOLCHAIN)"),
            "set BOOKHOST_WASM_TOOLCHAIN to rustup or debian, or unset it",
        )),
        None if rustup_has_target() => Ok(RustToolchain::Rustup),
        None if debian_present() => Ok(RustToolchain::Debian),
        None => Err(missing("a Rust toolchain for wasm32-unknown-unknown", HOW)),
    }
}
