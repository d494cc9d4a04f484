//! Copy-up: bringing a lower entry into the upper directory before it is
//! changed. The copy is built in the scratch's work directory — content
//! (cloned where the filesystem can), mode, owner, times — and renamed into
//! place, so a crash at any moment leaves either no copy or a whole one.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use fuser::Errno;

use super::{io_errno, Index, Location, Overlay};
use crate::repo::{NodeId, NodeKind};
use crate::scratch::remove_all;
use crate::sys;
use crate::sys::file::SetTime;

/// Whether a copy-up brings the file's content along.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    /// The whole file.
    Keep,
    /// An empty file (it is about to be truncated: nothing to copy).
    Truncate,
}

impl Overlay {
    /// Makes sure node `idx` exists in the upper directory, copying it (and
    /// its missing parent directories) up. Returns its upper path.
    pub fn copy_up(&self, idx: Index, content: Content) -> Result<PathBuf, Errno> {
        if let Location::Upper(p, _) = self.locate(idx)? {
            return Ok(p);
        }
        let _one_at_a_time = self.copying.lock().unwrap_or_else(|p| p.into_inner());
        self.copy_up_locked(idx, content)
    }

    fn copy_up_locked(&self, idx: Index, content: Content) -> Result<PathBuf, Errno> {
        // Another opener may have copied it while we waited.
        let lower = match self.locate(idx)? {
            Location::Upper(p, _) => return Ok(p),
            Location::Lower(l) => l,
        };
        if idx != 0 {
            self.copy_up_locked(self.parent(idx), Content::Keep)?;
        }
        let dst = self.upper_path(idx)?;
        let stage = self.scratch.stage_path();
        let made = self.stage(lower, &stage, content);
        let placed = made.and_then(|()| std::fs::rename(&stage, &dst).map_err(io_errno));
        if placed.is_err() {
            let _ = remove_all(&stage);
        }
        placed?;
        self.scratch.touched();
        Ok(dst)
    }

    /// Builds the copy of lower entry `id` at `stage`.
    fn stage(&self, id: NodeId, stage: &Path, content: Content) -> Result<(), Errno> {
        let n = self.lower.get(id).ok_or(Errno::ESTALE)?;
        let payload = || {
            n.payload().ok_or(Errno::EIO).and_then(|d| {
                self.repos
                    .payload_path(&d)
                    .map_err(|e| Errno::from_i32(e.errno()))
            })
        };
        match n.kind() {
            NodeKind::Dir => {
                std::fs::create_dir(stage).map_err(io_errno)?;
                std::fs::set_permissions(stage, PermissionsExt::from_mode(n.permissions()))
                    .map_err(io_errno)?;
            }
            NodeKind::Symlink => {
                let target = std::fs::read(payload()?).map_err(io_errno)?;
                std::os::unix::fs::symlink(OsStr::from_bytes(&target), stage).map_err(io_errno)?;
            }
            NodeKind::File => {
                let file = match content {
                    Content::Keep => {
                        sys::file::clone_or_copy(&payload()?, stage)
                            .map_err(io_errno)?
                            .0
                    }
                    Content::Truncate => std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(stage)
                        .map_err(io_errno)?,
                };
                file.set_permissions(PermissionsExt::from_mode(n.permissions()))
                    .map_err(io_errno)?;
            }
        }
        self.own(stage)?;
        sys::file::set_times(stage, SetTime::At(self.time), SetTime::At(self.time))
            .map_err(io_errno)
    }

    /// Gives `path` to the runtime's owner (when the service may).
    pub(super) fn own(&self, path: &Path) -> Result<(), Errno> {
        self.chown(path, self.uid, self.gid)
    }

    /// Gives `path` to `uid:gid` when the service runs as root; otherwise
    /// everything the service makes is already the user's.
    pub(super) fn chown(&self, path: &Path, uid: u32, gid: u32) -> Result<(), Errno> {
        if sys::user::is_root() {
            std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(io_errno)?;
        }
        Ok(())
    }
}
