//! The authoring loop outside this repository: `bookhost new` in a temporary folder, `bookhost build`, the project's own first test, an upload over HTTP, and the naive executor still unable to double-book under 64 concurrent calls.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bookhost_tests::executors::*;
use bookhost_tests::http::server;
use bookhost_tests::*;
use serde_json::json;

/// A new empty folder outside the repository.
fn outside_the_repository(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bookhost-{what}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `program` in `dir`, as a newcomer's shell would run it: without the
/// clippy wrapper `.ci/run` lints this repository's crates with (a project
/// outside the repository is not one of them, and Debian's cargo cannot
/// run that driver).
fn command(dir: &Path, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new(program);
    command
        .current_dir(dir)
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CLIPPY_ARGS");
    command
}

fn run(dir: &Path, program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Output {
    command(dir, program)
        .args(args)
        .env("BOOKHOST", bookhost_binary())
        .output()
        .unwrap()
}

fn succeeded(what: &str, output: Output) -> String {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(
        output.status.success(),
        "{what}: {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// `bookhost new NAME --lang LANG` in `parent`, then `bookhost build`;
/// returns the project folder.
fn new_and_build(parent: &Path, name: &str, lang: &str) -> PathBuf {
    let created = succeeded(
        "bookhost new",
        run(parent, bookhost_binary(), &["new", name, "--lang", lang]),
    );
    assert!(created.contains(&format!("created {name}")), "{created}");
    let project = parent.join(name);
    let built = succeeded(
        "bookhost build",
        run(&project, bookhost_binary(), &["build"]),
    );
    assert!(
        built.contains(&format!("{name}.wasm")) && built.contains("insert:bookings"),
        "{built}"
    );
    project
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_typescript_executor_from_bookhost_new_to_an_upload() {
    let parent = outside_the_repository("authoring-ts");
    let project = new_and_build(&parent, "book-table", "ts");
    let component = project.join("dist/book-table.wasm");
    let bytes = std::fs::read(&component).unwrap();
    assert_eq!(
        bookhost::runtime::imports::foreign_imports(&bytes).unwrap(),
        Vec::<String>::new()
    );

    // The project's own first test (node --test), through `bookhost invoke --local`.
    let npm = run(&project, "npm", &["test"]);
    let tested = succeeded("npm test", npm);
    assert!(tested.contains("# pass 2"), "{tested}");

    // Upload over HTTP with the CLI, as docs/AUTHORING.md says.
    let server = server().await;
    let tenant = server.tenant_with(&[CREATE_SERVICE]).await;
    let base = server.base().to_owned();
    let component_path = component.to_str().unwrap().to_owned();
    let key = tenant.key.clone();
    let uploaded = tokio::task::spawn_blocking({
        let project = project.clone();
        move || {
            run(
                &project,
                bookhost_binary(),
                &[
                    "executor",
                    "--server",
                    &base,
                    "--key",
                    &key,
                    "upload",
                    "book-table",
                    &component_path,
                ],
            )
        }
    })
    .await
    .unwrap();
    succeeded("bookhost executor upload", uploaded);

    let service = server
        .invoke(
            &tenant.key,
            CREATE_SERVICE,
            &json!({"name": "Table for two", "duration_minutes": 90}),
        )
        .await
        .expect(200)["result"]["service"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // 64 concurrent naive check-then-insert calls for one slot: one booking.
    let body = |i: usize| {
        json!({"service_id": service, "customer": format!("guest-{i}"), "start": "2031-06-01T19:00:00Z"})
            .to_string()
    };
    let answers = server
        .invoke_concurrently(&tenant.key, "book-table", (0..64).map(|i| (body(i), None)))
        .await;
    let ok = answers.iter().filter(|a| a.status == 200).count();
    let taken = answers
        .iter()
        .filter(|a| a.status == 409 && a.json()["error"]["error"] == "slot_taken")
        .count();
    assert_eq!(
        (ok, taken),
        (1, 63),
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    assert_eq!(server.rows("bookings", &tenant).await, 1);
    std::fs::remove_dir_all(&parent).unwrap();
}

#[test]
fn a_python_executor_builds_and_passes_its_first_test() {
    let parent = outside_the_repository("authoring-py");
    let project = new_and_build(&parent, "book-py", "python");
    let tested = run(&project, "python3", &["-m", "unittest", "-v"]);
    let stderr = String::from_utf8_lossy(&tested.stderr).into_owned();
    assert!(
        tested.status.success() && stderr.contains("Ran 2 tests"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&parent).unwrap();
}

#[test]
fn a_rust_executor_builds_and_passes_its_first_test() {
    let parent = outside_the_repository("authoring-rs");
    // One target dir across runs (std for wasm is built from source here).
    let target = PathBuf::from(env!("BOOKHOST_TEST_ARTIFACTS"))
        .with_file_name("bookhost-test-scaffold-target");
    let with_target = |program: PathBuf, args: &[&str], dir: &Path| {
        command(dir, program)
            .args(args)
            .env("CARGO_TARGET_DIR", &target)
            .env("BOOKHOST", bookhost_binary())
            .output()
            .unwrap()
    };
    succeeded(
        "bookhost new",
        with_target(
            bookhost_binary(),
            &["new", "book-rs", "--lang", "rust"],
            &parent,
        ),
    );
    let project = parent.join("book-rs");
    succeeded(
        "bookhost build",
        with_target(bookhost_binary(), &["build"], &project),
    );
    let tested = succeeded(
        "cargo test",
        with_target("cargo".into(), &["test"], &project),
    );
    assert!(tested.contains("2 passed"), "{tested}");
    std::fs::remove_dir_all(&parent).unwrap();
}

#[test]
fn bad_requests_say_what_to_do() {
    let parent = outside_the_repository("authoring-errors");
    let error_of = |dir: &Path, args: &[&str], path: Option<&str>| {
        let mut bookhost = command(dir, bookhost_binary());
        bookhost.args(args);
        if let Some(path) = path {
            bookhost.env("PATH", path);
        }
        let output = bookhost.output().unwrap();
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    assert!(
        error_of(&parent, &["new", "Not_A_Name"], None).contains("is invalid: use 1 to 64 of a-z")
    );
    assert!(error_of(&parent, &["build"], None).contains("no bookhost.toml in"));
    assert!(
        error_of(&parent, &["invoke", "--local", "--input", "{}"], None)
            .contains("no bookhost.toml in")
    );

    succeeded(
        "bookhost new",
        run(
            &parent,
            bookhost_binary(),
            &["new", "twice", "--lang", "ts"],
        ),
    );
    assert!(error_of(&parent, &["new", "twice"], None).contains("exists and is not empty"));
    let project = parent.join("twice");
    assert!(
        error_of(&project, &["invoke", "--local", "--input", "{}"], None)
            .contains("run `bookhost build` first")
    );
    // No Node.js on PATH: the build says what is missing and how to get it.
    let missing = error_of(&project, &["build"], Some("/nonexistent"));
    assert!(
        missing.contains("node (Node.js) is missing")
            && missing.contains("apt-get install nodejs npm"),
        "{missing}"
    );
    // A project file the build cannot use is refused before any build.
    let file = project.join("bookhost.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replace("language = \"ts\"", "language = \"cobol\""),
    )
    .unwrap();
    assert!(error_of(&project, &["build"], None).contains("is not a valid project file"));
    assert!(!project.join("dist").exists(), "nothing was built");
    std::fs::remove_dir_all(&parent).unwrap();
}

/// Every language's first test books the example data's Haircut by its id.
#[test]
fn the_first_tests_name_the_example_data() {
    let haircut = bookhost::authoring::EXAMPLE_DATA.haircut;
    for template in [
        include_str!("../../host/templates/ts/test/executor.test.mjs"),
        include_str!("../../host/templates/python/tests/test_app.py"),
        include_str!("../../host/templates/rust/tests/invoke.rs"),
    ] {
        assert!(template.contains(haircut));
        assert!(template.contains("2030-01-07T10:15:00Z"), "the taken slot");
    }
}
