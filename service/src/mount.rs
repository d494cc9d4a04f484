//! Mounting the filesystem, and unmounting it cleanly even while files are
//! open: the mount is detached at once (no stale mount is left), then the
//! connection is ended so the session's threads stop.

use std::io;
use std::path::{Path, PathBuf};

use fuser::{BackgroundSession, Config, MountOption, SessionACL};

use crate::fs::SpfsFs;
use crate::sys;

/// Whether users may mount with `allow_other` (Linux: `user_allow_other`
/// in /etc/fuse.conf). Without it the kernel keeps every other uid out of
/// the mount, members of a runtime that switched uid included. On macOS
/// `allow_other` needs membership of macFUSE's admin group; a per-user
/// service does not ask for it (see docs/macos.md).
fn user_allow_other() -> bool {
    cfg!(target_os = "linux")
        && std::fs::read_to_string("/etc/fuse.conf").is_ok_and(|conf| {
            conf.lines()
                .any(|l| l.split('#').next().unwrap_or("").trim() == "user_allow_other")
        })
}

/// The mount's source name is this and the serving process's pid.
const FSNAME_PREFIX: &str = "spfs:";

/// What is mounted at a mountpoint already.
#[derive(Debug, PartialEq, Eq)]
pub enum Existing {
    /// No FUSE mount.
    Nothing,
    /// A FUSE mount whose server is gone (it answers ENOTCONN, or ENXIO on
    /// macOS): safe to clear. Its source (`fsname`), which names it.
    Dead(String),
    /// A FUSE mount that answers (or does not answer in time): another
    /// service's, and its pid when it is one of ours.
    Serving(Option<u32>),
}

/// How long a mount has to answer before it counts as busy, not dead.
const PROBE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether `mountpoint` holds a FUSE mount, and whether anyone serves it.
/// A mount that answers is never cleared: it may be another service's.
pub fn probe(mountpoint: &Path) -> Existing {
    let Some(source) = sys::mount::fuse_mount_source(mountpoint) else {
        return Existing::Nothing;
    };
    let pid = source
        .strip_prefix(FSNAME_PREFIX)
        .and_then(|p| p.parse::<u32>().ok());
    // Ours, and its service is gone (a recycled pid only makes the
    // listing below decide).
    if pid.is_some_and(|p| sys::process::proc_info(p).is_none()) {
        return Existing::Dead(source);
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let path = mountpoint.to_owned();
    // A listing always reaches the server (a stat may be answered from the
    // kernel's cache); a hung server would hang it: ask from a thread.
    std::thread::spawn(move || {
        let _ = tx.send(std::fs::read_dir(&path).map(drop));
    });
    match rx.recv_timeout(PROBE_WAIT) {
        Ok(Err(e)) if e.raw_os_error() == Some(sys::mount::DEAD_MOUNT_ERRNO) => {
            Existing::Dead(source)
        }
        _ => Existing::Serving(pid),
    }
}

/// Clears a dead FUSE mount at `mountpoint` (a service killed with
/// SIGKILL leaves one): `Ok(true)` if there was one and it is gone.
pub fn clear_dead(mountpoint: &Path) -> io::Result<bool> {
    let Existing::Dead(source) = probe(mountpoint) else {
        return Ok(false);
    };
    detach_dead(mountpoint, &source)?;
    Ok(true)
}

/// Detaches the dead mount `source` at `mountpoint` if it is still the
/// mount there: a service starting at the same moment (a client's
/// `status` while it starts) may have cleared it and mounted its own,
/// which is never detached. A mount already gone is success.
fn detach_dead(mountpoint: &Path, source: &str) -> io::Result<()> {
    if sys::mount::fuse_mount_source(mountpoint).as_deref() != Some(source) {
        return Ok(());
    }
    match sys::mount::detach(mountpoint) {
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOENT)) => Ok(()),
        r => r,
    }
}

/// A mounted filesystem; unmounted when dropped.
pub struct Mounted {
    session: Option<BackgroundSession>,
    mountpoint: PathBuf,
    connection: Option<u64>,
}

impl Mounted {
    /// Mounts `fs` at `mountpoint` with `threads` request threads and the
    /// backend's `extra` options (see `backend::Backend::mount_options`),
    /// after clearing a stale mount a crashed service may have left there.
    pub fn mount(
        fs: SpfsFs,
        mountpoint: &Path,
        threads: usize,
        extra: &[String],
    ) -> io::Result<Self> {
        let mountpoint = mountpoint.to_owned();
        match probe(&mountpoint) {
            Existing::Nothing => {}
            Existing::Dead(source) => {
                tracing::warn!(path = %mountpoint.display(), "removing the dead FUSE mount a service that is gone left behind");
                detach_dead(&mountpoint, &source)?;
            }
            Existing::Serving(pid) => {
                let who = pid.map_or_else(String::new, |p| format!(" (pid {p})"));
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("a service is already serving {}{who}; stop it first ('spfs-fuse-macos shutdown' with its --socket) or choose another --mountpoint", mountpoint.display()),
                ));
            }
        }
        std::fs::create_dir_all(&mountpoint)?;
        let mut config = Config::default();
        config.mount_options = vec![
            // The serving pid, so that another service can say who serves.
            MountOption::FSName(format!("{FSNAME_PREFIX}{}", std::process::id())),
            MountOption::Subtype("spfs".into()),
            MountOption::NoDev,
            MountOption::NoSuid,
            // The kernel checks permissions against the attributes each
            // runtime's inodes carry (editable runtimes rely on it).
            MountOption::DefaultPermissions,
        ];
        config
            .mount_options
            .extend(extra.iter().map(|o| MountOption::CUSTOM(o.clone())));
        // Other users reach the mount, and see an empty /spfs: runtimes are
        // only shown to their own user.
        config.acl = if sys::user::is_root() || user_allow_other() {
            SessionACL::All
        } else {
            tracing::info!("only this user's processes can enter the mount: a runtime's member that switches to another uid (su, a build user) sees nothing; add 'user_allow_other' to /etc/fuse.conf to let them in");
            SessionACL::Owner
        };
        config.n_threads = Some(if cfg!(target_os = "linux") {
            threads.max(1)
        } else {
            1
        });
        config.clone_fd = cfg!(target_os = "linux");
        let session = fuser::Session::new(fs, &mountpoint, &config)?.spawn()?;
        let connection = sys::mount::connection_of(&mountpoint);
        Ok(Self {
            session: Some(session),
            mountpoint,
            connection,
        })
    }

    /// Sends notifications to the kernel's caches of this mount.
    pub fn notifier(&self) -> Option<fuser::Notifier> {
        self.session.as_ref().map(BackgroundSession::notifier)
    }

    /// Whether the FUSE session has ended: the mount was unmounted or its
    /// connection aborted from outside (the service can no longer serve).
    pub fn session_ended(&self) -> bool {
        self.session.as_ref().is_none_or(|s| s.guard.is_finished())
    }

    /// Where it is mounted.
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Unmounts and waits for the session to stop.
    pub fn unmount(mut self) -> io::Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> io::Result<()> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        let detached = match sys::mount::detach(&self.mountpoint) {
            // EINVAL: someone unmounted it already.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()),
            other => other,
        };
        if let Some(id) = self.connection {
            if let Err(e) = sys::mount::abort_connection(id) {
                tracing::debug!(error = %e, "could not abort the FUSE connection");
            }
        }
        let joined = session.join();
        detached?;
        if let Err(e) = joined {
            tracing::debug!(error = %e, "FUSE session ended with an error");
        }
        Ok(())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::error!(error = %e, path = %self.mountpoint.display(), "unmount failed");
        }
    }
}
