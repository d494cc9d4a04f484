//! Lets the `flatbuffers` builder write spfs `Digest` structs.

/// The 32-byte `Digest` struct of the spfs schema (alignment 1).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub(crate) struct DigestStruct(pub [u8; 32]);

impl flatbuffers::Push for DigestStruct {
    type Output = DigestStruct;

    // SAFETY (of callers, per the trait): `dst` is at least `size()` = 32 bytes
    // long. The body itself is a safe, bounds-checked copy.
    #[inline]
    unsafe fn push(&self, dst: &mut [u8], _written_len: usize) {
        if let Some(dst) = dst.get_mut(..32) {
            dst.copy_from_slice(&self.0);
        }
    }
}
