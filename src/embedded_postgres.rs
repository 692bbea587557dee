//! The embedded default: a private PostgreSQL cluster under `./var/pg`, started
//! from the server binaries on this machine, reused on the next start and
//! stopped on exit. It listens only on a Unix socket in a directory that only
//! its owner can enter, so no other local user can reach it.

use std::fs;
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use sqlx::ConnectOptions;
use sqlx::postgres::PgConnectOptions;
use tokio::process::Command;

const DATABASE: &str = "switchboard";
const SUPERUSER: &str = "switchboard";
const PORT: u16 = 5432;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EmbeddedError(String);

/// A running private cluster.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    bin: PathBuf,
    data: PathBuf,
    socket_dir: PathBuf,
    owner: Option<Owner>,
}

/// PostgreSQL refuses to run as root: then the cluster belongs to this user.
#[derive(Debug, Clone)]
struct Owner {
    name: String,
    uid: u32,
    gid: u32,
}

impl EmbeddedPostgres {
    /// Initializes (first time) and starts the cluster under `root/var/pg`.
    pub async fn start(root: &Path) -> Result<Self, EmbeddedError> {
        let bin = find_binaries()?;
        let base = root.join("var").join("pg");
        let data = base.join("data");
        let socket_dir = base.join("run");
        let owner = if is_root() {
            Some(unprivileged_owner()?)
        } else {
            None
        };
        fs::create_dir_all(&socket_dir)
            .map_err(|e| EmbeddedError(format!("creating {}: {e}", socket_dir.display())))?;
        for dir in [&base, &socket_dir] {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| EmbeddedError(format!("securing {}: {e}", dir.display())))?;
            if let Some(o) = &owner {
                chown(dir, Some(o.uid), Some(o.gid)).map_err(|e| {
                    EmbeddedError(format!("giving {} to {}: {e}", dir.display(), o.name))
                })?;
            }
        }
        if let Some(o) = &owner {
            check_reachable(&base, o)?;
        }
        let cluster = Self {
            bin,
            data,
            socket_dir,
            owner,
        };
        if !cluster.data.join("PG_VERSION").exists() {
            cluster.init().await?;
        }
        cluster.write_settings()?;
        if !cluster.is_running().await {
            cluster.pg_ctl_start().await?;
        }
        cluster.ensure_database().await?;
        Ok(cluster)
    }

    pub fn connect_options(&self) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(&self.socket_dir)
            .port(PORT)
            .username(SUPERUSER)
            .database(DATABASE)
            .disable_statement_logging()
    }

    /// The cluster as a `DATABASE_URL` (its Unix socket; no password).
    pub fn url(&self) -> String {
        format!(
            "postgres://{SUPERUSER}@localhost:{PORT}/{DATABASE}?host={}",
            self.socket_dir.display()
        )
    }

    /// Stops the cluster, waiting for it to shut down cleanly.
    pub async fn stop(&self) {
        let mut cmd = self.command("pg_ctl");
        cmd.arg("stop")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "-s"]);
        match cmd.status().await {
            Ok(status) if status.success() => tracing::info!("embedded PostgreSQL stopped"),
            Ok(status) => tracing::warn!(%status, "pg_ctl stop did not succeed"),
            Err(e) => tracing::warn!(error = %e, "could not run pg_ctl stop"),
        }
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.stdin(Stdio::null())
            .env("LC_ALL", "C")
            .env_remove("PGDATA");
        if let Some(o) = &self.owner {
            cmd.uid(o.uid)
                .gid(o.gid)
                .env("HOME", &self.data)
                .current_dir("/");
        }
        // Its own process group: Ctrl-C in the terminal reaches us, and we stop
        // the cluster in order, instead of it dying under the running portal.
        cmd.process_group(0);
        cmd
    }

    async fn init(&self) -> Result<(), EmbeddedError> {
        tracing::info!(data = %self.data.display(), "creating the embedded PostgreSQL cluster");
        let mut cmd = self.command("initdb");
        cmd.arg("-D").arg(&self.data).args([
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--no-locale",
            "-E",
            "UTF8",
        ]);
        run(cmd, "initdb").await
    }

    /// Settings rewritten at every start, so a moved checkout still works.
    fn write_settings(&self) -> Result<(), EmbeddedError> {
        let conf = self.data.join("postgresql.conf");
        let include = "include_if_exists = 'switchboard.conf'";
        let text = fs::read_to_string(&conf)
            .map_err(|e| EmbeddedError(format!("reading {}: {e}", conf.display())))?;
        if !text.contains(include) {
            fs::write(&conf, format!("{text}\n{include}\n"))
                .map_err(|e| EmbeddedError(format!("writing {}: {e}", conf.display())))?;
        }
        let socket = self.socket_dir.display().to_string().replace('\'', "''");
        let ours = format!(
            "# Written by `switchboard up` at every start.\n\
             listen_addresses = ''\n\
             port = {PORT}\n\
             unix_socket_directories = '{socket}'\n\
             unix_socket_permissions = 0700\n\
             max_connections = 50\n\
             shared_buffers = 64MB\n"
        );
        let path = self.data.join("switchboard.conf");
        fs::write(&path, ours)
            .map_err(|e| EmbeddedError(format!("writing {}: {e}", path.display())))?;
        if let Some(o) = &self.owner {
            chown(&path, Some(o.uid), Some(o.gid)).map_err(|e| {
                EmbeddedError(format!("giving {} to {}: {e}", path.display(), o.name))
            })?;
        }
        Ok(())
    }

    async fn is_running(&self) -> bool {
        let mut cmd = self.command("pg_ctl");
        cmd.arg("status")
            .arg("-D")
            .arg(&self.data)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        matches!(cmd.status().await, Ok(s) if s.success())
    }

    async fn pg_ctl_start(&self) -> Result<(), EmbeddedError> {
        let log = self.data.join("server.log");
        let mut cmd = self.command("pg_ctl");
        cmd.arg("start")
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "-s"]);
        run(cmd, "pg_ctl start")
            .await
            .map_err(|e| EmbeddedError(format!("{e}\nThe server log is {}", log.display())))?;
        tracing::info!(socket = %self.socket_dir.display(), "embedded PostgreSQL running");
        Ok(())
    }

    async fn ensure_database(&self) -> Result<(), EmbeddedError> {
        let options = self.connect_options().database("postgres");
        let mut conn = options
            .connect()
            .await
            .map_err(|e| EmbeddedError(format!("connecting to the embedded cluster: {e}")))?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(DATABASE)
                .fetch_one(&mut conn)
                .await
                .map_err(|e| EmbeddedError(format!("looking for the database: {e}")))?;
        if !exists {
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {DATABASE}")))
                .execute(&mut conn)
                .await
                .map_err(|e| EmbeddedError(format!("creating the database: {e}")))?;
        }
        Ok(())
    }
}

async fn run(mut cmd: Command, what: &str) -> Result<(), EmbeddedError> {
    let output = cmd
        .output()
        .await
        .map_err(|e| EmbeddedError(format!("could not run {what}: {e}")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(EmbeddedError(format!(
            "{what} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim(),
            String::from_utf8_lossy(&output.stdout).trim()
        )))
    }
}

/// `initdb` and `pg_ctl` on PATH, else the newest `/usr/lib/postgresql/*/bin`.
fn find_binaries() -> Result<PathBuf, EmbeddedError> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(path) = std::env::var_os("PATH")
        && let Some(dir) = std::env::split_paths(&path).find(|d| has_both(d))
    {
        return Ok(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            has_both(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(|| {
        EmbeddedError(
            "no PostgreSQL server binaries (initdb, pg_ctl) were found on PATH or in \
             /usr/lib/postgresql/*/bin.\n  Install them (Debian/Ubuntu: `sudo apt-get install postgresql`), \
             or set DATABASE_URL to an existing server, e.g. \
             DATABASE_URL=postgres://user:password@localhost:5432/switchboard"
                .into(),
        )
    })
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The account to run the cluster as when we are root: Debian's `postgres` user
/// if the server package created it, else `nobody`.
fn unprivileged_owner() -> Result<Owner, EmbeddedError> {
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    for wanted in ["postgres", "nobody"] {
        for line in passwd.lines() {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() >= 4
                && fields[0] == wanted
                && let (Ok(uid), Ok(gid)) = (fields[2].parse(), fields[3].parse())
            {
                return Ok(Owner {
                    name: wanted.into(),
                    uid,
                    gid,
                });
            }
        }
    }
    Err(EmbeddedError(
        "PostgreSQL refuses to run as root, and neither a `postgres` nor a `nobody` user exists \
         to run it as. Run `switchboard up` as an ordinary user, or set DATABASE_URL."
            .into(),
    ))
}

/// The cluster's owner must be able to walk down to `var/pg`.
fn check_reachable(dir: &Path, owner: &Owner) -> Result<(), EmbeddedError> {
    for ancestor in dir.ancestors().skip(1) {
        let Ok(meta) = fs::metadata(ancestor) else {
            continue;
        };
        let mode = meta.permissions().mode();
        use std::os::unix::fs::MetadataExt;
        let can_enter = mode & 0o001 != 0
            || (meta.uid() == owner.uid && mode & 0o100 != 0)
            || (meta.gid() == owner.gid && mode & 0o010 != 0);
        if !can_enter {
            return Err(EmbeddedError(format!(
                "running as root, the embedded PostgreSQL runs as the user `{}`, who cannot enter {}.\n  \
                 Run `switchboard up` as an ordinary user, move the checkout somewhere readable \
                 (e.g. /srv or /opt), or set DATABASE_URL to an existing server.",
                owner.name,
                ancestor.display()
            )));
        }
    }
    Ok(())
}
