//! The files of a new project, embedded in the binary: the templates under `host/templates/`, and the WIT, SDKs and pinned toolchains of this repository, so a project builds against exactly what this host runs.

use super::Language;

/// One file of a new project.
pub struct TemplateFile {
    pub path: String,
    pub contents: String,
}

const WIT: &str = include_str!("../../../wit/bookhost.wit");
const PROJECT_FILE: &str = include_str!("../../templates/common/bookhost.toml");

const TS_SDK: &str = include_str!("../../../plugins/sdk-ts/src/index.ts");
const TS_BUILD: &str = include_str!("../../../plugins/sdk-ts/build.mjs");
const TS_SDK_TSCONFIG: &str = include_str!("../../../plugins/sdk-ts/tsconfig.json");
const TS_SDK_PACKAGE: &str = include_str!("../../../plugins/sdk-ts/package.json");
const TS_SDK_LOCK: &str = include_str!("../../../plugins/sdk-ts/package-lock.json");
const TS_EXECUTOR: &str = include_str!("../../templates/ts/src/executor.ts");
const TS_TEST: &str = include_str!("../../templates/ts/test/executor.test.mjs");
const TS_TSCONFIG: &str = include_str!("../../templates/ts/tsconfig.json");
const TS_README: &str = include_str!("../../templates/ts/README.md");
const TS_GITIGNORE: &str = include_str!("../../templates/ts/gitignore");

const PY_SDK: &str = include_str!("../../../plugins/sdk-py/bookhost.py");
const PY_REQUIREMENTS: &str = include_str!("../../../plugins/sdk-py/requirements.txt");
const PY_APP: &str = include_str!("../../templates/python/src/app.py");
const PY_TEST: &str = include_str!("../../templates/python/tests/test_app.py");
const PY_README: &str = include_str!("../../templates/python/README.md");
const PY_GITIGNORE: &str = include_str!("../../templates/python/gitignore");

const RUST_SDK: [(&str, &str); 8] = [
    ("lib.rs", include_str!("../../../plugins/sdk/src/lib.rs")),
    (
        "errors.rs",
        include_str!("../../../plugins/sdk/src/errors.rs"),
    ),
    (
        "input.rs",
        include_str!("../../../plugins/sdk/src/input.rs"),
    ),
    ("row.rs", include_str!("../../../plugins/sdk/src/row.rs")),
    ("run.rs", include_str!("../../../plugins/sdk/src/run.rs")),
    (
        "slots.rs",
        include_str!("../../../plugins/sdk/src/slots.rs"),
    ),
    ("time.rs", include_str!("../../../plugins/sdk/src/time.rs")),
    (
        "values.rs",
        include_str!("../../../plugins/sdk/src/values.rs"),
    ),
];
const RUST_WORKSPACE: &str = include_str!("../../../plugins/Cargo.toml");
const RUST_LOCK: &str = include_str!("../../../plugins/Cargo.lock");
const RUST_MANIFEST: &str = include_str!("../../templates/rust/Cargo.toml");
const RUST_LIB: &str = include_str!("../../templates/rust/src/lib.rs");
const RUST_TEST: &str = include_str!("../../templates/rust/tests/invoke.rs");
const RUST_README: &str = include_str!("../../templates/rust/README.md");
const RUST_GITIGNORE: &str = include_str!("../../templates/rust/gitignore");

/// Every file of a new `language` project named `name`.
pub fn files(name: &str, language: Language) -> Vec<TemplateFile> {
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{language}}", language.as_str())
    };
    let file = |path: &str, contents: String| TemplateFile {
        path: path.to_owned(),
        contents,
    };
    let mut files = vec![
        file("bookhost.toml", fill(PROJECT_FILE)),
        file("wit/bookhost.wit", WIT.to_owned()),
    ];
    match language {
        Language::Ts => files.extend([
            file(&format!("src/{name}.ts"), fill(TS_EXECUTOR)),
            file(&format!("test/{name}.test.mjs"), fill(TS_TEST)),
            file("tsconfig.json", TS_TSCONFIG.to_owned()),
            file("package.json", ts_package(name)),
            file("package-lock.json", ts_lock(name)),
            file("bookhost-sdk/src/index.ts", TS_SDK.to_owned()),
            file("bookhost-sdk/build.mjs", TS_BUILD.to_owned()),
            file("bookhost-sdk/tsconfig.json", TS_SDK_TSCONFIG.to_owned()),
            file("README.md", fill(TS_README)),
            file(".gitignore", TS_GITIGNORE.to_owned()),
        ]),
        Language::Python => files.extend([
            file("src/app.py", fill(PY_APP)),
            file("src/bookhost.py", PY_SDK.to_owned()),
            file("tests/test_app.py", fill(PY_TEST)),
            // A package, so `python3 -m unittest` discovers it.
            file("tests/__init__.py", String::new()),
            file("requirements.txt", PY_REQUIREMENTS.to_owned()),
            file("README.md", fill(PY_README)),
            file(".gitignore", PY_GITIGNORE.to_owned()),
        ]),
        Language::Rust => {
            files.extend([
                file("Cargo.toml", fill(RUST_MANIFEST)),
                file("Cargo.lock", RUST_LOCK.to_owned()),
                file("src/lib.rs", fill(RUST_LIB)),
                file("tests/invoke.rs", fill(RUST_TEST)),
                file("bookhost-sdk/Cargo.toml", rust_sdk_manifest()),
                file("README.md", fill(RUST_README)),
                file(".gitignore", RUST_GITIGNORE.to_owned()),
            ]);
            for (source, text) in RUST_SDK {
                // In this repository the SDK is plugins/sdk and the WIT is
                // two folders up; in a project, one.
                let text = text.replace("path: \"../../wit\"", "path: \"../wit\"");
                files.push(file(&format!("bookhost-sdk/src/{source}"), text));
            }
        }
    }
    files
}

/// The SDK's npm packages, as the project's own (the lock file must agree).
fn ts_package(name: &str) -> String {
    let sdk: serde_json::Value = serde_json::from_str(TS_SDK_PACKAGE).expect("valid package.json");
    let package = serde_json::json!({
        "name": name,
        "version": "0.1.0",
        "private": true,
        "type": "module",
        "description": "A bookhost executor",
        "scripts": { "build": "bookhost build", "test": "node --test test/" },
        "devDependencies": sdk["devDependencies"],
    });
    serde_json::to_string_pretty(&package).expect("serializable") + "\n"
}

/// The SDK's lock file, renamed to the project: `npm ci` installs exactly
/// the versions this repository builds with.
fn ts_lock(name: &str) -> String {
    let mut lock: serde_json::Value = serde_json::from_str(TS_SDK_LOCK).expect("valid lock file");
    lock["name"] = name.into();
    let root = &mut lock["packages"][""];
    root["name"] = name.into();
    if let Some(root) = root.as_object_mut() {
        root.remove("bin");
        root.remove("license");
    }
    serde_json::to_string_pretty(&lock).expect("serializable") + "\n"
}

/// The SDK crate's manifest, with the dependency versions of this
/// repository's plugins workspace.
fn rust_sdk_manifest() -> String {
    let dependency = |crate_name: &str| {
        RUST_WORKSPACE
            .lines()
            .find(|line| line.starts_with(&format!("{crate_name} =")))
            .unwrap_or_else(|| panic!("plugins/Cargo.toml pins {crate_name}"))
            .to_owned()
    };
    format!(
        "[package]\nname = \"bookhost-sdk\"\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n\n\
         [lib]\ncrate-type = [\"rlib\"]\n\n[dependencies]\n{}\n{}\n{}\n",
        dependency("wit-bindgen"),
        dependency("serde_json"),
        dependency("chrono"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_gets_its_files_with_the_name_filled_in() {
        for language in [Language::Rust, Language::Ts, Language::Python] {
            let files = files("book-table", language);
            assert!(files.iter().any(|f| f.path == "wit/bookhost.wit"));
            for f in &files {
                assert!(
                    !f.contents.contains("{{"),
                    "{}: a placeholder is left",
                    f.path
                );
            }
            let project = &files[0];
            assert!(project.contents.contains("name = \"book-table\""));
        }
    }

    #[test]
    fn the_ts_lock_file_agrees_with_the_package() {
        let package: serde_json::Value = serde_json::from_str(&ts_package("x")).unwrap();
        let lock: serde_json::Value = serde_json::from_str(&ts_lock("x")).unwrap();
        assert_eq!(
            package["devDependencies"],
            lock["packages"][""]["devDependencies"]
        );
        assert_eq!(lock["packages"][""]["name"], "x");
    }

    #[test]
    fn the_rust_sdk_points_at_the_projects_wit() {
        let files = files("x", Language::Rust);
        let lib = files
            .iter()
            .find(|f| f.path == "bookhost-sdk/src/lib.rs")
            .unwrap();
        assert!(lib.contents.contains("path: \"../wit\""));
        let manifest = files
            .iter()
            .find(|f| f.path == "bookhost-sdk/Cargo.toml")
            .unwrap();
        assert!(manifest.contents.contains("wit-bindgen = "));
    }
}
