//! Reading files a user can point anywhere (settings, spfs configs,
//! runspecs, runtime records, repository objects and tags) with a limit:
//! a file linked to `/dev/zero`, a FIFO or a 50 GB file is refused with a
//! message that names it and the limit, never read into memory whole and
//! never waited on.

use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The limit of small text files: settings, configs, runspecs, records.
pub const SMALL: u64 = 1024 * 1024;

/// Reads the regular file at `path`, at most `limit` bytes. Opened
/// non-blocking (a FIFO never holds the reader); anything but a regular
/// file, or a file longer than `limit`, is an error of kind
/// `InvalidData` whose message says which.
pub fn read(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file (a device, FIFO or directory)",
        ));
    }
    if meta.len() > limit {
        return Err(too_long(meta.len(), limit));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // The file may grow while it is read: never past the limit.
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_long(bytes.len() as u64, limit));
    }
    Ok(bytes)
}

/// [`read`] as UTF-8 text.
pub fn read_to_string(path: &Path, limit: u64) -> io::Result<String> {
    String::from_utf8(read(path, limit)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

fn too_long(len: u64, limit: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{len} bytes or more, larger than the {limit} bytes read at most"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_files_are_read_and_large_ones_refused_with_the_limit() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, b"hello").unwrap();
        assert_eq!(read(&p, 5).unwrap(), b"hello");
        let e = read(&p, 4).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("larger than the 4 bytes"), "{e}");
    }

    #[test]
    fn devices_fifos_and_directories_are_refused_at_once() {
        let e = read(Path::new("/dev/zero"), SMALL).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let e = read(&fifo, SMALL).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        assert!(read(d.path(), SMALL).is_err());
    }

    #[test]
    fn a_link_to_a_device_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let link = d.path().join("settings.json");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert!(read_to_string(&link, SMALL).is_err());
    }
}
