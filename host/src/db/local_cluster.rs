//! A private PostgreSQL cluster run from the installed binaries: for tests
//! (throw-away, in a temp dir) and for development (reused data directory).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use sqlx::postgres::PgConnectOptions;

/// How to run the cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Port number (also names the Unix socket file).
    pub port: u16,
    /// Also listen on 127.0.0.1 (otherwise only the Unix socket).
    pub tcp: bool,
    /// Trade durability for speed (fsync off): for throw-away clusters.
    pub unsafe_fast: bool,
    /// Kill the server when the thread that started it exits (tests).
    pub die_with_parent: bool,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            port: 5432,
            tcp: false,
            unsafe_fast: true,
            die_with_parent: false,
        }
    }
}

/// A running PostgreSQL server; stopped (fast shutdown) on drop.
pub struct LocalCluster {
    root: PathBuf,
    port: u16,
    child: Option<Child>,
}

/// The directory of the installed PostgreSQL server binaries.
pub fn postgres_bin_dir() -> anyhow::Result<PathBuf> {
    if let Ok(dir) = std::env::var("BOOKHOST_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut candidates: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .collect();
    candidates.sort();
    if let Some((_, bin)) = candidates.pop() {
        return Ok(bin);
    }
    bail!(
        "no PostgreSQL server binaries found under /usr/lib/postgresql/*/bin; \
         install them (apt-get install postgresql postgresql-contrib) or set BOOKHOST_PG_BIN"
    )
}

/// The unprivileged account the server runs as when we are root.
struct ServerUser {
    uid: u32,
    gid: u32,
}

fn server_user() -> anyhow::Result<Option<ServerUser>> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let name = std::ffi::CString::new("postgres").expect("no NUL");
    // SAFETY: getpwnam returns a pointer to static storage or null; read at once.
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    if entry.is_null() {
        bail!("running as root, but there is no `postgres` user to run the server as (PostgreSQL refuses root)");
    }
    // SAFETY: non-null entry from getpwnam.
    let (uid, gid) = unsafe { ((*entry).pw_uid, (*entry).pw_gid) };
    Ok(Some(ServerUser { uid, gid }))
}

fn command_as(program: PathBuf, user: &Option<ServerUser>) -> Command {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(program);
    if let Some(user) = user {
        command.uid(user.uid).gid(user.gid);
    }
    command
}

fn chown_tree(path: &Path, user: &Option<ServerUser>) -> anyhow::Result<()> {
    if let Some(user) = user {
        std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
            .with_context(|| format!("chown {}", path.display()))?;
    }
    Ok(())
}

impl LocalCluster {
    /// Start a server on `root` (created if missing; initialized on first use).
    pub fn start(root: &Path, options: &ClusterOptions) -> anyhow::Result<Self> {
        let bin = postgres_bin_dir()?;
        let user = server_user()?;
        std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
        let root = root.canonicalize()?;
        chown_tree(&root, &user)?;
        let data = root.join("data");
        if !data.join("PG_VERSION").exists() {
            let output = command_as(bin.join("initdb"), &user)
                .args(["-D"])
                .arg(&data)
                .args([
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                    "--locale=C",
                ])
                .output()
                .context("running initdb")?;
            if !output.status.success() {
                bail!(
                    "initdb failed: {}{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                );
            }
        }
        let log = std::fs::File::create(root.join("postgres.log"))?;
        chown_tree(&root.join("postgres.log"), &user)?;
        let mut command = command_as(bin.join("postgres"), &user);
        command
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(&root)
            .args(["-p", &options.port.to_string()])
            .args([
                "-c",
                if options.tcp {
                    "listen_addresses=127.0.0.1"
                } else {
                    "listen_addresses="
                },
            ])
            .args(["-c", "max_connections=300", "-c", "shared_buffers=128MB"])
            .args(["-c", "max_pred_locks_per_transaction=256"])
            // Bounds what is left of lock-order deadlocks (DESIGN.md, trap 2).
            .args(["-c", "deadlock_timeout=100ms"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if options.unsafe_fast {
            command.args([
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]);
        }
        if options.die_with_parent {
            use std::os::unix::process::CommandExt;
            // A process group of its own: a Ctrl-C at the terminal reaches
            // bookhost, which stops the server after its last request and
            // audit record, not the server from under them.
            command.process_group(0);
            // SAFETY: prctl is async-signal-safe; it only sets a flag on the child.
            unsafe {
                command.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGQUIT);
                    Ok(())
                });
            }
        }
        let child = command.spawn().context("starting postgres")?;
        let mut cluster = Self {
            root: root.clone(),
            port: options.port,
            child: Some(child),
        };
        cluster.wait_ready(&bin)?;
        Ok(cluster)
    }

    fn wait_ready(&mut self, bin: &Path) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                let log =
                    std::fs::read_to_string(self.root.join("postgres.log")).unwrap_or_default();
                bail!("postgres exited with {status} while starting:\n{log}");
            }
            let ready = Command::new(bin.join("pg_isready"))
                .arg("-q")
                .arg("-h")
                .arg(&self.root)
                .args(["-p", &self.port.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "postgres did not become ready within 60 s (log: {})",
                    self.root.join("postgres.log").display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Connection options for the superuser over the Unix socket.
    pub fn connect_options(&self) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(&self.root)
            .port(self.port)
            .username("postgres")
            .database("postgres")
    }

    /// A `DATABASE_URL` for this server (Unix socket).
    pub fn database_url(&self) -> String {
        format!(
            "postgres://postgres@localhost:{}/postgres?host={}",
            self.port,
            self.root.display()
        )
    }

    /// The server's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Wait for the server to exit (it runs until a signal stops it).
    pub fn wait(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        let child = self.child.as_mut().context("already stopped")?;
        Ok(child.wait()?)
    }

    /// Fast shutdown: roll back open transactions, then exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: signalling our own child process.
            unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
            let _ = child.wait();
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.stop();
    }
}
