//! How an upper directory records deletions: aufs-style whiteout files, as
//! this project's scratch directories and durable edits hold them (macOS
//! cannot make the character devices overlayfs uses without root).
//!
//! ```text
//! d/.wh.name      `d/name` of a lower layer is deleted
//! d/.wh..wh..opq  `d` hides every lower entry (deleted, then re-created)
//! ```

/// Names starting with this are whiteouts; users may not create them.
pub const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// The marker of an opaque directory.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// True for names reserved by the whiteout format.
pub fn is_reserved(name: &[u8]) -> bool {
    name.starts_with(WHITEOUT_PREFIX)
}

/// The whiteout file name that deletes `name`.
pub fn whiteout_name(name: &[u8]) -> Vec<u8> {
    let mut w = WHITEOUT_PREFIX.to_vec();
    w.extend_from_slice(name);
    w
}

/// Rewrites overlayfs's whiteouts under `upper` (character devices 0/0,
/// as upstream's runtimes leave them in `durable_edits`) as `.wh.` files,
/// so a runtime upstream made can be run here; returns how many. Nothing
/// is followed through a symlink. Each device is replaced only after its
/// `.wh.` file exists, so an interruption loses no deletion.
pub fn convert_device_whiteouts(upper: &std::path::Path) -> std::io::Result<usize> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut converted = 0;
    let mut dirs = vec![upper.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let meta = std::fs::symlink_metadata(entry.path())?;
            let ft = meta.file_type();
            if ft.is_dir() {
                dirs.push(entry.path());
            } else if ft.is_char_device() && meta.rdev() == 0 {
                let name = entry.file_name();
                let wh = dir.join(std::ffi::OsStr::from_bytes(&whiteout_name(name.as_bytes())));
                std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(&wh)?;
                std::fs::remove_file(entry.path())?;
                converted += 1;
            }
        }
    }
    Ok(converted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_whiteouts_become_files() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("sub/keep"), b"x").unwrap();
        // Device nodes need root (as CI runs); the e2e tests convert
        // upstream's fixture the same way.
        for p in ["gone", "sub/gone"] {
            let st = std::process::Command::new("mknod")
                .arg(d.path().join(p))
                .args(["c", "0", "0"])
                .status()
                .unwrap();
            assert!(st.success(), "mknod needs root: run the tests as root");
        }
        let n = convert_device_whiteouts(d.path()).unwrap();
        assert_eq!(n, 2);
        assert!(d.path().join(".wh.gone").exists());
        assert!(d.path().join("sub/.wh.gone").exists());
        assert!(!d.path().join("gone").exists());
        assert!(d.path().join("sub/keep").exists());
    }

    #[test]
    fn reserved_names() {
        assert!(is_reserved(b".wh.x"));
        assert!(is_reserved(OPAQUE_MARKER.as_bytes()));
        assert!(!is_reserved(b".whx"));
        assert_eq!(whiteout_name(b"a"), b".wh.a");
    }
}
