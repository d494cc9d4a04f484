//! Unmounting that works while files are open: detach the mount so no
//! process finds it any more, then end the FUSE connection so the session
//! stops even if a process still holds a file.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::*;

#[cfg(target_os = "macos")]
mod macos;
#[cfg(target_os = "macos")]
pub use macos::*;

use std::path::Path;

/// True if `path` is currently a mount point of a FUSE filesystem.
pub fn is_fuse_mount(path: &Path) -> bool {
    mounted_fuse_paths().iter().any(|p| p == path)
}
