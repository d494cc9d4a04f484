//! `statvfs`, for the `statfs` replies.

/// Size and free space of a filesystem, as `statfs` replies want them.
#[derive(Clone, Copy, Debug)]
#[allow(missing_docs)] // statvfs's own fields
pub struct FsStats {
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub bsize: u32,
    pub namelen: u32,
    pub frsize: u32,
}

/// Size and free space of the filesystem holding `path`.
pub fn statvfs(path: &std::path::Path) -> Option<FsStats> {
    rustix::fs::statvfs(path).ok().map(|s| FsStats::from(&s))
}

impl From<&rustix::fs::StatVfs> for FsStats {
    #[allow(clippy::unnecessary_cast)] // field widths differ between platforms
    fn from(s: &rustix::fs::StatVfs) -> Self {
        FsStats {
            blocks: s.f_blocks as u64,
            bfree: s.f_bfree as u64,
            bavail: s.f_bavail as u64,
            files: s.f_files as u64,
            ffree: s.f_ffree as u64,
            bsize: s.f_bsize as u32,
            namelen: s.f_namemax as u32,
            frsize: s.f_frsize as u32,
        }
    }
}

/// The width of the terminal standard output is, if it is one.
pub fn stdout_columns() -> Option<usize> {
    let size = rustix::termios::tcgetwinsize(std::io::stdout()).ok()?;
    (size.ws_col > 0).then_some(usize::from(size.ws_col))
}
