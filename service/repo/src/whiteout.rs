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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_names() {
        assert!(is_reserved(b".wh.x"));
        assert!(is_reserved(OPAQUE_MARKER.as_bytes()));
        assert!(!is_reserved(b".whx"));
        assert_eq!(whiteout_name(b"a"), b".wh.a");
    }
}
