//! Always-on (design note 4.3): the service started at login and kept
//! running by the system's service manager — a LaunchAgent on macOS
//! (`launchctl`), a systemd user unit and socket on Linux (`systemctl
//! --user`). Both own the control socket (socket activation), so a client
//! can connect while the service restarts.
//!
//! The logic is the same for both and is tested on Linux; only the files
//! written ([`launchd`], [`systemd`]) and the tool run differ. Every tool
//! failure becomes a one-line error carrying the tool's own message.

pub(crate) mod launchd;
pub(crate) mod systemd;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Which service manager.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// macOS: `~/Library/LaunchAgents`, `launchctl`.
    Launchd,
    /// Linux: `~/.config/systemd/user`, `systemctl --user`.
    Systemd,
}

/// Overrides the platform's kind (for the tests of the other one).
pub(crate) const KIND_ENV: &str = "SPFS_FUSE_AGENT_KIND";

impl Kind {
    /// The platform's service manager.
    pub(crate) fn for_platform() -> Kind {
        match std::env::var(KIND_ENV).as_deref() {
            Ok("launchd") => Kind::Launchd,
            Ok("systemd") => Kind::Systemd,
            _ if cfg!(target_os = "macos") => Kind::Launchd,
            _ => Kind::Systemd,
        }
    }
}

/// What the always-on service runs as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Spec {
    /// The `spfs-fuse-macos` binary (absolute).
    pub program: PathBuf,
    /// Where it mounts, if not the default.
    pub mountpoint: Option<PathBuf>,
    /// Its control socket (owned by the service manager).
    pub socket: PathBuf,
    /// Where its output goes.
    pub log: PathBuf,
    /// Environment it needs (`SPFS_STORAGE_ROOT` when set at install…).
    pub env: Vec<(String, String)>,
}

/// Variables passed on to the always-on service when set at install.
const PASSED_ENV: [&str; 5] = [
    "SPFS_STORAGE_ROOT",
    "SPFS_STORAGE__ROOT",
    "SPFS_FUSE_SCRATCH_ROOT",
    spfs_shared::settings::SENTRY_DSN_ENV,
    "RUST_LOG",
];

impl Spec {
    /// The spec for this binary, `socket` and `mountpoint` (`None`: the
    /// default), with the environment of this process.
    pub(crate) fn for_this_binary(
        socket: &Path,
        mountpoint: Option<&Path>,
    ) -> std::io::Result<Spec> {
        let program = std::env::current_exe()?.canonicalize()?;
        let env = PASSED_ENV
            .iter()
            .filter_map(|k| {
                std::env::var(k)
                    .ok()
                    .filter(|v| !v.is_empty())
                    .map(|v| ((*k).to_owned(), v))
            })
            .collect();
        Ok(Spec {
            program,
            mountpoint: mountpoint.map(Path::to_owned),
            socket: socket.to_owned(),
            log: spfs_shared::paths::log_path(),
            env,
        })
    }

    /// The service's arguments after the program.
    pub(crate) fn arguments(&self) -> Vec<String> {
        let mut args = vec!["service".to_owned(), "--always-on".to_owned()];
        if let Some(m) = &self.mountpoint {
            args.push("--mountpoint".to_owned());
            args.push(m.display().to_string());
        }
        args.push("--socket".to_owned());
        args.push(self.socket.display().to_string());
        args
    }
}

/// Why an agent command failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AgentError {
    /// The tool refused.
    #[error("{command} failed: {message}")]
    Tool {
        /// The command line run.
        command: String,
        /// What it said.
        message: String,
    },
    /// The tool could not be run at all.
    #[error("cannot run {tool}: {source} (is it on PATH?)")]
    Missing {
        /// The tool.
        tool: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be written or removed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The plist could not be made.
    #[error("cannot write the LaunchAgent property list: {0}")]
    Plist(String),
}

/// What a tool said when it succeeded.
struct Ran {
    ok: bool,
    text: String,
}

/// Runs `tool args`; a non-zero exit is returned, not an error.
fn run(tool: &str, args: &[&str]) -> Result<Ran, AgentError> {
    let out = Command::new(tool)
        .args(args)
        .output()
        .map_err(|source| AgentError::Missing {
            tool: tool.to_owned(),
            source,
        })?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok(Ran {
        ok: out.status.success(),
        text,
    })
}

/// Runs `tool args` and fails with its first line of output if it fails.
fn must(tool: &str, args: &[&str]) -> Result<String, AgentError> {
    let r = run(tool, args)?;
    if r.ok {
        return Ok(r.text);
    }
    let message = r
        .text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no output")
        .to_owned();
    Err(AgentError::Tool {
        command: format!("{tool} {}", args.join(" ")),
        message,
    })
}

/// Writes `bytes` to `path` atomically (temp file, sync, rename).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), AgentError> {
    let io = |action| {
        move |source| AgentError::Io {
            action,
            path: path.to_owned(),
            source,
        }
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io("create the directory of"))?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(io("write"))
}

/// Whether the agent is installed, loaded and running.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Status {
    /// The service manager.
    pub kind: Kind,
    /// Its definition files are in place.
    pub installed: bool,
    /// The service manager knows it.
    pub loaded: bool,
    /// The service's process, if it runs.
    pub pid: Option<u32>,
    /// The main definition file.
    pub file: PathBuf,
}

/// One service manager's agent.
pub(crate) struct Agent {
    kind: Kind,
}

impl Agent {
    /// The agent of `kind`.
    pub(crate) fn new(kind: Kind) -> Agent {
        Agent { kind }
    }

    /// The service manager.
    pub(crate) fn kind(&self) -> Kind {
        self.kind
    }

    /// The files `install` writes, with their content.
    pub(crate) fn files(&self, spec: &Spec) -> Result<Vec<(PathBuf, Vec<u8>)>, AgentError> {
        match self.kind {
            Kind::Launchd => Ok(vec![(launchd::plist_path(), launchd::plist(spec)?)]),
            Kind::Systemd => Ok(systemd::units(spec)),
        }
    }

    /// Writes the files and has the service manager start the service
    /// (replacing an older definition). Run it again: same result.
    pub(crate) fn install(&self, spec: &Spec) -> Result<(), AgentError> {
        if let Some(dir) = spec.socket.parent() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|source| AgentError::Io {
                    action: "create the directory of",
                    path: spec.socket.clone(),
                    source,
                })?;
        }
        let files = self.files(spec)?;
        match self.kind {
            Kind::Launchd => {
                if launchd::loaded()? {
                    launchd::bootout()?;
                }
                for (path, bytes) in &files {
                    write_atomic(path, bytes)?;
                }
                launchd::bootstrap()
            }
            Kind::Systemd => {
                for (path, bytes) in &files {
                    write_atomic(path, bytes)?;
                }
                systemd::enable()
            }
        }
    }

    /// Stops the service and removes the files. Run it again: nothing to do.
    pub(crate) fn uninstall(&self) -> Result<bool, AgentError> {
        let was = self.status()?;
        match self.kind {
            Kind::Launchd => {
                if was.loaded {
                    launchd::bootout()?;
                }
            }
            Kind::Systemd => {
                if was.loaded || was.installed {
                    systemd::disable()?;
                }
            }
        }
        let mut removed = false;
        for path in self.installed_files() {
            match std::fs::remove_file(&path) {
                Ok(()) => removed = true,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(AgentError::Io {
                        action: "remove",
                        path,
                        source,
                    })
                }
            }
        }
        if removed && self.kind == Kind::Systemd {
            systemd::reload()?;
        }
        Ok(was.installed || was.loaded)
    }

    fn installed_files(&self) -> Vec<PathBuf> {
        match self.kind {
            Kind::Launchd => vec![launchd::plist_path()],
            Kind::Systemd => systemd::unit_paths(),
        }
    }

    /// Installed or not, loaded or not, running pid.
    pub(crate) fn status(&self) -> Result<Status, AgentError> {
        let files = self.installed_files();
        let installed = files.iter().all(|p| p.exists());
        let (loaded, pid) = match self.kind {
            Kind::Launchd => launchd::state()?,
            Kind::Systemd => systemd::state()?,
        };
        Ok(Status {
            kind: self.kind,
            installed,
            loaded,
            pid,
            file: files.into_iter().next().unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        Spec {
            program: "/Applications/SPFS.app/Contents/MacOS/spfs-fuse-macos".into(),
            mountpoint: Some("/Users/me/spfs".into()),
            socket: "/Users/me/Library/Application Support/SPFS/control.sock".into(),
            log: "/Users/me/Library/Logs/spfs/service.log".into(),
            env: vec![("SPFS_STORAGE_ROOT".into(), "/Volumes/repo".into())],
        }
    }

    #[test]
    fn arguments_name_the_mount_and_socket() {
        assert_eq!(
            spec().arguments(),
            [
                "service",
                "--always-on",
                "--mountpoint",
                "/Users/me/spfs",
                "--socket",
                "/Users/me/Library/Application Support/SPFS/control.sock"
            ]
        );
        let mut default_mount = spec();
        default_mount.mountpoint = None;
        assert!(!default_mount
            .arguments()
            .contains(&"--mountpoint".to_owned()));
    }

    #[test]
    fn atomic_writes_leave_no_temp_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a/b.plist");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
    }
}
