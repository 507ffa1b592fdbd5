//! Names every executor `plugins/build.sh` builds (the crates of `plugins/`
//! whose library is a `cdylib`, the TypeScript entries `plugins/ts/*.ts`, the
//! Python apps `plugins/py/*/app.py`) as a constant, and generates
//! `foreach_executor!`, so a test module can require one test per executor
//! (Wasmtime's `crates/test-programs/artifacts/build.rs` does the same).
//! Also names a folder under the target dir for the tests' compiled
//! artifacts (`BOOKHOST_TEST_ARTIFACTS`).

use std::path::PathBuf;

fn main() {
    let plugins = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../plugins");
    // A crate added or removed is one of the plugins workspace's members.
    // (Not the whole folder: building the executors changes files in it.)
    println!(
        "cargo:rerun-if-changed={}",
        plugins.join("Cargo.toml").display()
    );
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&plugins).unwrap().flatten() {
        let manifest = entry.path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        println!("cargo:rerun-if-changed={}", manifest.display());
        let is_executor = text.lines().any(|line| {
            let line: String = line.chars().filter(|c| !c.is_whitespace()).collect();
            line == "crate-type=[\"cdylib\"]"
        });
        if !is_executor {
            continue;
        }
        let name = text
            .lines()
            .find_map(|line| {
                let (key, value) = line.split_once('=')?;
                (key.trim() == "name").then(|| value.trim().trim_matches('"').to_owned())
            })
            .unwrap_or_else(|| panic!("{} has no package name", manifest.display()));
        names.push(name);
    }
    // TypeScript executors: one entry file each, named after it.
    let ts = plugins.join("ts");
    println!("cargo:rerun-if-changed={}", ts.display());
    for entry in std::fs::read_dir(&ts).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "ts") {
            names.push(path.file_stem().unwrap().to_string_lossy().into_owned());
        }
    }
    // Python executors: one folder each with its app.py.
    let py = plugins.join("py");
    println!("cargo:rerun-if-changed={}", py.display());
    for entry in std::fs::read_dir(&py).into_iter().flatten().flatten() {
        if entry.path().join("app.py").is_file() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    assert!(
        !names.is_empty(),
        "no executor crates under {}",
        plugins.display()
    );
    let mut code = String::new();
    for name in &names {
        let constant = name.to_uppercase().replace('-', "_");
        code += &format!(
            "/// The executor built from `plugins/{name}`.\npub const {constant}: &str = {name:?};\n"
        );
    }
    code += &format!(
        "/// Every executor built from `plugins/`.\npub const ALL: &[&str] = &{names:?};\n"
    );
    code += "/// Calls `$mac!(name)` with each executor's name in snake case.\n";
    code += "#[macro_export]\nmacro_rules! foreach_executor {\n    ($mac:ident) => {\n";
    for name in &names {
        code += &format!("        $mac!({});\n", name.replace('-', "_"));
    }
    code += "    };\n}\n";
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    std::fs::write(out_dir.join("executors.rs"), code).unwrap();
    // OUT_DIR is <target>/<profile>/build/<crate>-<hash>/out.
    let profile_dir = out_dir.ancestors().nth(3).unwrap();
    println!(
        "cargo:rustc-env=BOOKHOST_TEST_ARTIFACTS={}",
        profile_dir.join("bookhost-test-artifacts").display()
    );
}
