//! The spfs object schema (`docs/spfs-format.md`, upstream's `.fbs`),
//! written once: each table's field ids (a union field takes two, its
//! type and then its value) and the numbers of its unions and enums. The
//! encoder, the decoder and the tests' verifier name fields only through
//! it (the vtable slot of a field is `fb::slot`).

/// `table AnyObject { object: Object (required) }`, the root.
pub(crate) mod any_object {
    pub(crate) const OBJECT_TYPE: u16 = 0;
    pub(crate) const OBJECT: u16 = 1;
}
/// `union Object`.
pub(crate) mod object {
    pub(crate) const PLATFORM: u8 = 1;
    pub(crate) const LAYER: u8 = 2;
    pub(crate) const MANIFEST: u8 = 3;
    pub(crate) const BLOB: u8 = 4;
}
/// `table Platform { layers: [Digest] (required) }`.
pub(crate) mod platform {
    pub(crate) const LAYERS: u16 = 0;
}
/// `table Layer { manifest: Digest; annotations: [Annotation] (required) }`.
pub(crate) mod layer {
    pub(crate) const MANIFEST: u16 = 0;
    pub(crate) const ANNOTATIONS: u16 = 1;
}
/// `table Manifest { trees: [Tree] (required) }`.
pub(crate) mod manifest {
    pub(crate) const TREES: u16 = 0;
}
/// `table Blob { size: u64; payload: Digest (required) }`.
pub(crate) mod blob {
    pub(crate) const SIZE: u16 = 0;
    pub(crate) const PAYLOAD: u16 = 1;
}
/// `table Tree { entries: [Entry] (required) }`.
pub(crate) mod tree {
    pub(crate) const ENTRIES: u16 = 0;
}
/// `table Entry { kind: EntryKind; object: Digest (required); mode:
/// u32; size: u64; name: string (required) }`.
pub(crate) mod entry {
    pub(crate) const KIND: u16 = 0;
    pub(crate) const OBJECT: u16 = 1;
    pub(crate) const MODE: u16 = 2;
    pub(crate) const SIZE: u16 = 3;
    pub(crate) const NAME: u16 = 4;
}
/// `enum EntryKind: u8`.
pub(crate) mod entry_kind {
    pub(crate) const BLOB: u8 = 0;
    pub(crate) const TREE: u8 = 4;
    pub(crate) const MASK: u8 = 5;
}
/// `table Annotation { key: string (required); data: AnnotationValue
/// (required) }`.
pub(crate) mod annotation {
    pub(crate) const KEY: u16 = 0;
    pub(crate) const DATA_TYPE: u16 = 1;
    pub(crate) const DATA: u16 = 2;
}
/// `union AnnotationValue`.
pub(crate) mod annotation_value {
    pub(crate) const STRING: u8 = 1;
    pub(crate) const DIGEST: u8 = 2;
}
/// `table AnnotationString { data: string }`.
pub(crate) mod annotation_string {
    pub(crate) const DATA: u16 = 0;
}
/// `table AnnotationDigest { digest: Digest }`.
pub(crate) mod annotation_digest {
    pub(crate) const DIGEST: u16 = 0;
}
