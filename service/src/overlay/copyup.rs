//! Copy-up: bringing a lower entry into the upper directory before it is
//! changed. The copy is built in the scratch's work directory — content
//! (cloned where the filesystem can), mode, owner, times — and renamed into
//! place, so a crash at any moment leaves either no copy or a whole one.

use fuser::Errno;

use super::{io_errno, Index, Location, Overlay, Upper};
use crate::repo::{NodeId, NodeKind};
use crate::scratch;
use crate::sys;
use crate::sys::dir::{Dir, OpenHow, SetTime};

/// Whether a copy-up brings the file's content along.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    /// The whole file.
    Keep,
    /// An empty file (it is about to be truncated: nothing to copy).
    Truncate,
}

impl Overlay {
    /// Makes sure node `idx` (not the root) exists in the upper directory,
    /// copying it (and its missing parent directories) up. Returns its
    /// upper entry.
    pub fn copy_up(&self, idx: Index, content: Content) -> Result<Upper, Errno> {
        if let Location::Upper(u) = self.locate(idx)? {
            return Ok(u);
        }
        let _one_at_a_time = self.copying.lock();
        self.copy_up_locked(idx, content)
    }

    /// Makes sure directory node `idx` exists in the upper directory (the
    /// root always does) and opens it.
    pub fn copy_up_dir(&self, idx: Index) -> Result<Dir, Errno> {
        if idx == 0 {
            return self.scratch.upper().try_clone().map_err(io_errno);
        }
        let u = self.copy_up(idx, Content::Keep)?;
        if !u.meta.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        u.dir.sub([&u.name[..]]).map_err(io_errno)
    }

    fn copy_up_locked(&self, idx: Index, content: Content) -> Result<Upper, Errno> {
        // Another opener may have copied it while we waited.
        let lower = match self.locate(idx)? {
            Location::Upper(u) => return Ok(u),
            Location::Lower(l) => l,
        };
        let (parent, name) = self.nodes.parent_and_name(idx)?.ok_or(Errno::EINVAL)?;
        if scratch::is_reserved(&name) {
            // A layer's `.wh.x` is content (read and deleted as any
            // file), but in the scratch that name would be a whiteout of
            // `x`: it cannot be changed in place.
            return Err(Errno::EPERM);
        }
        let dir = if parent == 0 {
            self.scratch.upper().try_clone().map_err(io_errno)?
        } else {
            let p = match self.locate(parent)? {
                Location::Upper(u) => u,
                Location::Lower(_) => self.copy_up_locked(parent, Content::Keep)?,
            };
            p.dir.sub([&p.name[..]]).map_err(io_errno)?
        };
        let work = self.scratch.work();
        let stage = self.scratch.stage_name();
        let placed = self
            .stage(lower, work, &stage, content)
            .and_then(|()| work.rename(&stage, &dir, &name, 0).map_err(io_errno));
        if let Err(e) = placed {
            let _ = work.remove_all(&stage);
            // A full disk or quota is the user's to fix; anything else is ours.
            if e == Errno::ENOSPC || e == Errno::EDQUOT {
                tracing::warn!(runtime_slot = self.slot, errno = ?e, "copy-up failed: the scratch is full");
            } else {
                tracing::error!(runtime_slot = self.slot, errno = ?e, "copy-up failed");
            }
            return Err(e);
        }
        self.scratch.touched();
        let meta = dir.stat(&name).map_err(io_errno)?;
        Ok(Upper { dir, name, meta })
    }

    /// Builds the copy of lower entry `id` as `stage` in `work`.
    fn stage(&self, id: NodeId, work: &Dir, stage: &[u8], content: Content) -> Result<(), Errno> {
        let n = self.layers.view.get(id).ok_or(Errno::ESTALE)?;
        let perm = n.permissions();
        match n.kind() {
            NodeKind::Dir => {
                work.mkdir(stage, 0o700).map_err(io_errno)?;
                // Owner first: a chown clears set-id bits.
                self.own(work, stage)?;
                work.chmod(stage, perm).map_err(io_errno)?;
            }
            NodeKind::Symlink => {
                let target = self.read_lower_link(id)?;
                work.symlink(&target, stage).map_err(io_errno)?;
                self.own(work, stage)?;
            }
            NodeKind::File => {
                let file = match content {
                    Content::Keep => {
                        work.clone_from(&self.open_payload(id)?, stage)
                            .map_err(io_errno)?
                            .0
                    }
                    Content::Truncate => work
                        .open_file(
                            stage,
                            OpenHow {
                                write: true,
                                create_new: Some(0o600),
                                ..OpenHow::default()
                            },
                        )
                        .map_err(io_errno)?,
                };
                use std::os::unix::fs::PermissionsExt;
                self.own(work, stage)?;
                file.set_permissions(std::fs::Permissions::from_mode(perm))
                    .map_err(io_errno)?;
            }
        }
        work.set_times(
            stage,
            SetTime::At(self.layers.time),
            SetTime::At(self.layers.time),
        )
        .map_err(io_errno)
    }

    /// Gives `name` in `dir` to the runtime's owner (when the service may).
    pub(super) fn own(&self, dir: &Dir, name: &[u8]) -> Result<(), Errno> {
        self.chown(dir, name, self.layers.owner.0, self.layers.owner.1)
    }

    /// Gives `name` in `dir` to `uid:gid` when the service runs as root;
    /// otherwise everything the service makes is already the user's.
    pub(super) fn chown(&self, dir: &Dir, name: &[u8], uid: u32, gid: u32) -> Result<(), Errno> {
        if sys::user::is_root() {
            dir.chown(name, Some(uid), Some(gid)).map_err(io_errno)?;
        }
        Ok(())
    }
}
