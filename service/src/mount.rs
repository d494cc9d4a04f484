//! Mounting the filesystem, and unmounting it cleanly even while files are
//! open: the mount is detached at once (no stale mount is left), then the
//! connection is ended so the session's threads stop.

use std::io;
use std::path::{Path, PathBuf};

use fuser::{BackgroundSession, Config, MountOption, SessionACL};

use crate::fs::SpfsFs;
use crate::sys;

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
        if sys::mount::is_fuse_mount(&mountpoint) {
            tracing::warn!(path = %mountpoint.display(), "removing a stale FUSE mount");
            sys::mount::detach(&mountpoint)?;
        }
        std::fs::create_dir_all(&mountpoint)?;
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName("spfs".into()),
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
        config.acl = if sys::user::is_root() {
            SessionACL::All
        } else {
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
