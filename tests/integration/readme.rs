//! The README's commands, run as written: the run command far enough to see
//! `bookhost dev` answer (and book with the curl it prints), and the test
//! command as the one `.ci/run` runs.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// The first fenced block after the README line that contains `marker`.
fn command_after(marker: &str) -> String {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let (_, after) = readme
        .split_once(marker)
        .unwrap_or_else(|| panic!("README has no {marker:?}"));
    let block = after.split("```").nth(1).expect("a fenced block follows");
    let command = block.split_once('\n').expect("a language tag line").1;
    command.trim().to_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the whole process group (cargo, bookhost, its PostgreSQL) on drop.
struct Group(std::process::Child);

impl Drop for Group {
    /// SIGTERM to the group, then wait until none of it is left (bookhost
    /// stops gracefully and stops its PostgreSQL), SIGKILL after 30 s.
    fn drop(&mut self) {
        let pid = self.0.id() as i32;
        // SAFETY: signalling a process group this test created.
        unsafe {
            libc::kill(-pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let _ = self.0.try_wait();
            // SAFETY: signal 0 only asks whether the group still exists.
            let gone = unsafe { libc::kill(-pid, 0) } != 0;
            if gone {
                return;
            }
            if Instant::now() > deadline {
                // SAFETY: as above.
                unsafe {
                    libc::kill(-pid, libc::SIGKILL);
                }
                let _ = self.0.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn the_readme_run_command_starts_bookhost_dev() {
    let command = command_after("The run command:");
    assert_eq!(command, "plugins/build.sh && cargo run -- dev");
    let scratch = std::env::temp_dir().join(format!("bookhost-readme-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&scratch).unwrap();
    // Only where its state goes and which ports it takes differ from a
    // newcomer's run: `bookhost dev` reads them from the environment.
    let child = Command::new("sh")
        .arg("-c")
        .arg(&command)
        .current_dir(root())
        .env("BOOKHOST_DEV_DATA_DIR", scratch.join("postgres"))
        .env("BOOKHOST_DEV_POSTGRES_PORT", free_port().to_string())
        .env("BOOKHOST_LISTEN", "127.0.0.1:0")
        .env("BOOKHOST_ARTIFACT_CACHE", scratch.join("artifacts"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut group = Group(child);
    let stdout = group.0.stdout.take().unwrap();
    let (lines, seen) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut printed = Vec::new();
    // Every curl printed, in order: a GET on one line, a POST on three
    // lines joined by backslashes.
    let mut curls: Vec<Vec<String>> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    while !printed
        .iter()
        .any(|l: &String| l.starts_with("The agent's tools:"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = seen
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("bookhost dev printed no tools line ({e}): {printed:#?}"));
        let trimmed = line.trim_start().to_owned();
        let continues = curls
            .last()
            .is_some_and(|c| c.last().is_some_and(|l| l.ends_with('\\')));
        if continues {
            curls.last_mut().unwrap().push(trimmed);
        } else if trimmed.starts_with("curl -s") {
            curls.push(vec![trimmed]);
        }
        printed.push(line);
    }
    let api = printed
        .iter()
        .find_map(|l| l.trim().strip_prefix("API:"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no API line: {printed:#?}"))
        .to_owned();
    let health = Command::new("curl")
        .args(["-s", &format!("{api}/healthz")])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&health.stdout).contains("ok"),
        "{health:?}"
    );

    // The curls it printed walk the demo business: availability, a hold,
    // the booking that takes it up, its reschedule, seats in the class
    // until it is full, and a massage left pending.
    assert_eq!(curls.len(), 6, "{printed:#?}");
    let run_curl = |curl: &[String], replace: &[(&str, &str)]| {
        let mut command = curl.join("\n");
        for (from, to) in replace {
            command = command.replace(from, to);
        }
        let output = Command::new("sh")
            .arg("-c")
            .arg(format!("{command} -w '\\n%{{http_code}}'"))
            .output()
            .unwrap();
        let text = String::from_utf8(output.stdout).unwrap();
        let (body, status) = text.rsplit_once('\n').unwrap();
        let json: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        (status.to_owned(), json)
    };
    let (status, slots) = run_curl(&curls[0], &[]);
    assert_eq!(status, "200", "{slots}");
    assert!(!slots["slots"].as_array().unwrap().is_empty(), "{slots}");
    let (status, hold) = run_curl(&curls[1], &[]);
    assert_eq!(status, "200", "{hold}");
    let hold_id = hold["result"]["hold"]["id"].as_str().unwrap().to_owned();
    let (status, booked) = run_curl(&curls[2], &[("HOLD_ID", &hold_id)]);
    assert_eq!(status, "200", "{booked}");
    let booking_id = booked["result"]["booking"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, moved) = run_curl(&curls[3], &[("BOOKING_ID", &booking_id)]);
    assert_eq!(status, "200", "{moved}");
    for seat in 1..=8 {
        let (status, body) = run_curl(&curls[4], &[]);
        assert_eq!(status, "200", "seat {seat}: {body}");
    }
    let (status, full) = run_curl(&curls[4], &[]);
    assert_eq!(status, "409", "{full}");
    assert_eq!(full["error"]["error"], "slot_taken", "{full}");
    let (status, pending) = run_curl(&curls[5], &[]);
    assert_eq!(status, "200", "{pending}");
    assert_eq!(pending["result"]["booking"]["status"], "pending");
    drop(group);
    let _ = std::fs::remove_dir_all(&scratch);
}

#[test]
fn ci_runs_the_readme_test_command() {
    let command = command_after("The test command");
    assert_eq!(
        command,
        "plugins/build.sh && cargo build --workspace && cargo test --workspace -- --show-output"
    );
    let ci = std::fs::read_to_string(root().join(".ci/run")).unwrap();
    assert!(
        ci.contains("readme_command \"The test command\""),
        ".ci/run must run the README's test command as written"
    );
}
