//! Inode numbers: `slot << 32 | (node index + 1)`, and 1 for the root.
//!
//! The root directory is the only inode shared by all runtimes; every other
//! inode belongs to exactly one view (one runtime, one generation of it), so
//! the kernel's caches of names, attributes and pages can never hand one
//! runtime's data to another.

use crate::repo::NodeId;

/// The root of the mount (FUSE_ROOT_ID).
pub const ROOT: u64 = 1;

/// The inode number of `node` in the view at `slot`.
pub fn encode(slot: u32, node: NodeId) -> u64 {
    if node == NodeId::ROOT {
        ROOT
    } else {
        (u64::from(slot) << 32) | (u64::from(node.0) + 1)
    }
}

/// (slot, node) of an inode number other than the root.
pub fn decode(ino: u64) -> Option<(u32, NodeId)> {
    let slot = (ino >> 32) as u32;
    let low = (ino & 0xffff_ffff) as u32;
    (slot != 0 && low != 0).then(|| (slot, NodeId(low - 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_root() {
        assert_eq!(encode(5, NodeId::ROOT), ROOT);
        for (slot, n) in [(1, 1), (7, 12345), (u32::MAX, u32::MAX - 1)] {
            assert_eq!(decode(encode(slot, NodeId(n))), Some((slot, NodeId(n))));
        }
        assert_ne!(
            encode(1, NodeId(3)),
            encode(2, NodeId(3)),
            "distinct per slot"
        );
        assert_eq!(decode(ROOT), None);
        assert_eq!(decode(0), None);
        assert_eq!(decode(5 << 32), None);
    }
}
