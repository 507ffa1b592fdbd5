//! `bookhost build`: a project's sources into `dist/<name>.wasm` with its language's own tools, then the checks an upload gets (imports, exports, manifest), so what builds here uploads.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::toolchain::{self, RustToolchain, DEBIAN_WASM_LD, WASM_TARGET};
use super::{AuthoringError, Language, Project};
use crate::runtime::imports::component_imports;
use crate::runtime::{EngineSettings, ExecutorEngine, ExecutorRegistry, LoadedExecutor};

/// A component `bookhost build` made and checked.
pub struct Built {
    pub path: PathBuf,
    pub size: usize,
    pub imports: Vec<String>,
    pub executor: std::sync::Arc<LoadedExecutor>,
}

/// Build `project`; `say` hears each step. The component lands in `dist/`
/// only once it passed every check, so a failed build leaves the last good
/// one in place.
pub async fn build(project: &Project, say: &dyn Fn(&str)) -> Result<Built, AuthoringError> {
    let staging = project.state_dir().join("build");
    std::fs::create_dir_all(&staging)?;
    let bytes = match project.language {
        Language::Ts => build_ts(project, &staging, say)?,
        Language::Python => build_python(project, &staging, say)?,
        Language::Rust => build_rust(project, say)?,
    };
    say("checking the component as an upload is checked (imports, exports, manifest)");
    let imports = component_imports(&bytes).map_err(anyhow::Error::msg)?;
    let executor = registry(project)?.load(&bytes).await?;
    if executor.name != project.name {
        return Err(AuthoringError::NameMismatch {
            expected: project.name.to_string(),
            described: executor.name.to_string(),
        });
    }
    let path = project.component_path();
    std::fs::create_dir_all(path.parent().expect("dist/"))?;
    let partial = path.with_extension("wasm.partial");
    std::fs::write(&partial, &bytes)?;
    std::fs::rename(&partial, &path)?;
    Ok(Built {
        path,
        size: bytes.len(),
        imports,
        executor,
    })
}

/// A registry like a host's, keeping compiled artifacts in the project, so
/// `bookhost invoke --local` does not compile the component again.
pub(super) fn registry(project: &Project) -> Result<ExecutorRegistry, AuthoringError> {
    let engine = ExecutorEngine::new(EngineSettings {
        max_instances: 8,
        ..EngineSettings::default()
    })?;
    Ok(
        ExecutorRegistry::new(engine)?
            .with_artifact_cache(project.state_dir().join("artifacts"))?,
    )
}

/// Run `command`; its output is kept for the error if it fails.
fn run(step: &str, command: &mut Command) -> Result<(), AuthoringError> {
    let output = command.output().map_err(|e| AuthoringError::ToolFailed {
        step: step.to_owned(),
        status: "could not start".to_owned(),
        output: e.to_string(),
    })?;
    if output.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    // The end of a long log is where the error is.
    let tail = text.len().saturating_sub(8000);
    let tail = (tail..text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0);
    Err(AuthoringError::ToolFailed {
        step: step.to_owned(),
        status: output.status.to_string(),
        output: text[tail..].to_owned(),
    })
}

/// Install pinned packages again only when their list changed since the
/// last install (recorded as a copy of it in `marker`).
fn stale(list: &Path, marker: &Path) -> bool {
    std::fs::read(list).ok() != std::fs::read(marker).ok()
}

fn read_output(path: &Path) -> Result<Vec<u8>, AuthoringError> {
    std::fs::read(path).map_err(|e| {
        AuthoringError::Other(anyhow::anyhow!(
            "the build did not produce {}: {e}",
            path.display()
        ))
    })
}

fn build_ts(
    project: &Project,
    staging: &Path,
    say: &dyn Fn(&str),
) -> Result<Vec<u8>, AuthoringError> {
    let tools = toolchain::node()?;
    let dir = &project.dir;
    let lock = dir.join("package-lock.json");
    let marker = dir.join("node_modules/.bookhost-installed-lock");
    if stale(&lock, &marker) {
        say("installing the npm packages of package-lock.json (npm ci)");
        run(
            "npm ci",
            Command::new(&tools.npm)
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(dir),
        )?;
        std::fs::copy(&lock, &marker)?;
    }
    say("type-checking, bundling and componentizing (ComponentizeJS, no WASI)");
    let entry = format!("src/{}.ts", project.name);
    run(
        "building the TypeScript executor",
        Command::new(&tools.node)
            .arg("bookhost-sdk/build.mjs")
            .args(["--wit", "wit", "--out-dir"])
            .arg(staging)
            .arg("--cache-dir")
            .arg(project.state_dir().join("ts-cache"))
            .arg(&entry)
            .current_dir(dir),
    )?;
    read_output(&staging.join(format!("{}.wasm", project.name)))
}

fn build_python(
    project: &Project,
    staging: &Path,
    say: &dyn Fn(&str),
) -> Result<Vec<u8>, AuthoringError> {
    let python = toolchain::python()?;
    let dir = &project.dir;
    let venv = dir.join(".venv");
    let requirements = dir.join("requirements.txt");
    let marker = venv.join(".bookhost-installed-requirements");
    if stale(&requirements, &marker) {
        say("installing componentize-py into .venv (requirements.txt)");
        let _ = std::fs::remove_dir_all(&venv);
        run(
            "python3 -m venv .venv",
            Command::new(&python)
                .args(["-m", "venv", ".venv"])
                .current_dir(dir),
        )?;
        run(
            "pip install -r requirements.txt",
            Command::new(venv.join("bin/pip"))
                .args([
                    "install",
                    "-q",
                    "--disable-pip-version-check",
                    "-r",
                    "requirements.txt",
                ])
                .current_dir(dir),
        )?;
        std::fs::copy(&requirements, &marker)?;
    }
    say("componentizing src/app.py (componentize-py --stub-wasi)");
    let out = staging.join(format!("{}.wasm", project.name));
    run(
        "componentize-py",
        Command::new(venv.join("bin/componentize-py"))
            .args([
                "-d",
                "wit",
                "-w",
                "executor",
                "componentize",
                "--stub-wasi",
                "-p",
                "src",
                "app",
                "-o",
            ])
            .arg(&out)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .current_dir(dir),
    )?;
    read_output(&out)
}

fn build_rust(project: &Project, say: &dyn Fn(&str)) -> Result<Vec<u8>, AuthoringError> {
    let dir = &project.dir;
    let toolchain = toolchain::rust(dir)?;
    let mut cargo = match toolchain {
        RustToolchain::Rustup => {
            say("cargo build (rustup, wasm32-unknown-unknown)");
            let mut cargo = Command::new("cargo");
            cargo.args(["build", "--release", "--lib", "--target", WASM_TARGET]);
            cargo
        }
        RustToolchain::Debian => {
            say("cargo build (Debian rustc-web, std built from source)");
            let mut cargo = Command::new("/usr/bin/cargo");
            let path = std::env::var_os("PATH").unwrap_or_default();
            let mut paths = vec![PathBuf::from("/usr/bin")];
            paths.extend(std::env::split_paths(&path));
            cargo
                .args(["build", "--release", "--lib", "--target", WASM_TARGET])
                .arg("-Zbuild-std=std,panic_abort")
                .env(
                    "PATH",
                    std::env::join_paths(paths).map_err(anyhow::Error::from)?,
                )
                .env("RUSTC", "/usr/bin/rustc")
                .env("RUSTDOC", "/usr/bin/rustdoc")
                .env("RUSTC_BOOTSTRAP", "1")
                .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER", DEBIAN_WASM_LD);
            cargo
        }
    };
    run("cargo build", cargo.current_dir(dir))?;
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|d| if d.is_relative() { dir.join(d) } else { d })
        .unwrap_or_else(|| dir.join("target"));
    let module = target_dir
        .join(WASM_TARGET)
        .join("release")
        .join(format!("{}.wasm", project.name.as_str().replace('-', "_")));
    let module = read_output(&module)?;
    say("making the core module a component (wit-component)");
    let component = wit_component::ComponentEncoder::default()
        .module(&module)
        .and_then(|encoder| encoder.validate(true).encode())
        .map_err(|e| {
            AuthoringError::Other(anyhow::anyhow!(
                "{e:#}: is the crate built with bookhost-sdk, and its custom sections kept?"
            ))
        })?;
    Ok(component)
}
