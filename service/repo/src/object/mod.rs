//! Graph objects (blobs, manifests, layers, platforms): their in-memory
//! model, the 17-byte header, both body encodings and both digest strategies.
//!
//! Digests never depend on the body encoding: they are computed from the
//! legacy encoding (see `digest`), salted with the kind for strategy 1.

mod fb;
mod flatbuf;
mod legacy;
mod schema;

use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::error::{Error, Result};

/// Salt prepended (with the header kind byte) to digests of strategy 1.
pub const DIGEST_SALT: &[u8] = b"spfs digest da8d8e62-9459-11ee-adab-00155dcb338b\0";

/// How object digests are computed; stored in each object header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DigestStrategy {
    /// sha256 of the legacy encoding; kept for old repositories.
    Legacy,
    /// sha256 of salt + kind + legacy encoding (upstream's default).
    #[default]
    WithKindAndSalt,
}

/// How object bodies are stored; stored in each object header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum EncodingFormat {
    /// Big-endian integers and NUL-terminated strings.
    Legacy,
    /// A FlatBuffers `AnyObject` table (upstream's default).
    #[default]
    FlatBuffers,
}

/// File-type bits of the `st_mode` values stored in entries. They are part
/// of the format (the same on Linux and macOS), so they are spelled out here
/// rather than taken from the platform's `mode_t`.
pub mod mode {
    /// Mask of the file-type bits.
    pub const S_IFMT: u32 = 0o170000;
    /// Directory.
    pub const S_IFDIR: u32 = 0o040000;
    /// Regular file.
    pub const S_IFREG: u32 = 0o100000;
    /// Symbolic link.
    pub const S_IFLNK: u32 = 0o120000;
    /// Character device (overlay whiteouts).
    pub const S_IFCHR: u32 = 0o020000;
}

/// The kinds of graph object, numbered as in the object header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    /// A payload's stand-in.
    Blob = 0,
    /// A directory hierarchy.
    Manifest = 1,
    /// A manifest and annotations.
    Layer = 2,
    /// A stack of layers.
    Platform = 3,
}

impl ObjectKind {
    fn from_header_byte(b: u8) -> Option<Self> {
        Some(match b {
            0 => Self::Blob,
            1 => Self::Manifest,
            2 => Self::Layer,
            3 => Self::Platform,
            _ => return None,
        })
    }

    /// Lower-case name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Blob => "blob",
            Self::Manifest => "manifest",
            Self::Layer => "layer",
            Self::Platform => "platform",
        }
    }
}

/// Why received object bytes were not accepted.
#[derive(Debug)]
pub enum ReceivedError {
    /// They decode to an object with this other digest.
    Mismatch(Digest),
    /// They do not decode.
    Undecodable(String),
}

/// The fixed header at the start of every object file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// How the object's digest is computed.
    pub strategy: DigestStrategy,
    /// How its body is encoded.
    pub encoding: EncodingFormat,
    /// What it is.
    pub kind: ObjectKind,
}

impl Header {
    /// Magic bytes that open every object file.
    pub const PREFIX: &'static [u8; 9] = b"--SPFS--\n";
    /// Header length in bytes.
    pub const SIZE: usize = 17;

    /// Splits an object file into its header and body.
    pub fn parse(bytes: &[u8]) -> Result<(Header, &[u8]), String> {
        if bytes.len() < Self::SIZE {
            return Err(format!(
                "file is {} bytes, shorter than the {}-byte object header",
                bytes.len(),
                Self::SIZE
            ));
        }
        let Some((head, body)) = bytes.split_first_chunk::<{ Self::SIZE }>() else {
            return Err("the object header is cut short".to_owned());
        };
        let [p0, p1, p2, p3, p4, p5, p6, p7, p8, strategy, encoding, _, _, _, _, _, kind] = *head;
        if [p0, p1, p2, p3, p4, p5, p6, p7, p8] != *Self::PREFIX {
            return Err("missing the '--SPFS--' header".to_owned());
        }
        let strategy = match strategy {
            0 => DigestStrategy::Legacy,
            1 => DigestStrategy::WithKindAndSalt,
            b => return Err(format!("unknown digest strategy {b} in header")),
        };
        let encoding = match encoding {
            0 => EncodingFormat::Legacy,
            1 => EncodingFormat::FlatBuffers,
            b => return Err(format!("unknown encoding format {b} in header")),
        };
        let kind = ObjectKind::from_header_byte(kind)
            .ok_or_else(|| format!("unknown object kind {kind} in header"))?;
        Ok((
            Header {
                strategy,
                encoding,
                kind,
            },
            body,
        ))
    }

    /// The 17 header bytes.
    pub fn to_bytes(self) -> [u8; Self::SIZE] {
        let mut out = [0u8; Self::SIZE];
        out[..9].copy_from_slice(Self::PREFIX);
        out[9] = self.strategy as u8;
        out[10] = self.encoding as u8;
        out[16] = self.kind as u8;
        out
    }
}

/// The kind of a manifest entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntryKind {
    /// A directory; `object` is the digest of its tree.
    Tree,
    /// A file or symlink; `object` is the payload digest.
    Blob,
    /// A deletion of the same path in lower layers.
    Mask,
}

impl EntryKind {
    fn legacy_name(self) -> &'static str {
        match self {
            Self::Tree => "tree",
            Self::Blob => "file",
            Self::Mask => "mask",
        }
    }
}

/// One named entry of a tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The entry's name in its directory.
    pub name: String,
    /// Directory, file or mask.
    pub kind: EntryKind,
    /// Payload digest (blob), tree digest (tree) or NULL (mask).
    pub object: Digest,
    /// Full `st_mode`, type bits included.
    pub mode: u32,
    /// Byte size for blobs; as stored for others (it enters tree digests).
    pub size: u64,
}

impl Entry {
    /// True for a symlink blob.
    pub fn is_symlink(&self) -> bool {
        self.mode & mode::S_IFMT == mode::S_IFLNK
    }
}

/// One directory level of a manifest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tree {
    /// The directory's entries.
    pub entries: Vec<Entry>,
}

impl Tree {
    /// The tree's digest: sha256 of its legacy encoding, never salted.
    pub fn digest(&self) -> Digest {
        let mut buf = Vec::with_capacity(8 + self.entries.len() * 64);
        legacy::encode_tree(self, &mut buf);
        Digest::of(&buf)
    }

    /// Sorts entries as upstream stores them: directories, then files, then
    /// masks, each by name.
    pub fn sort(&mut self) {
        self.entries
            .sort_by(|a, b| a.kind.cmp(&b.kind).then_with(|| a.name.cmp(&b.name)));
    }
}

/// A full directory hierarchy: `trees[0]` is the root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// The root first, then every other directory.
    pub trees: Vec<Tree>,
}

impl Manifest {
    /// Each tree's position in `trees`, by its digest (how a tree entry
    /// names the directory it is).
    pub fn tree_index(&self) -> std::collections::HashMap<Digest, usize> {
        self.trees
            .iter()
            .enumerate()
            .map(|(i, t)| (t.digest(), i))
            .collect()
    }
}

impl Default for Manifest {
    fn default() -> Self {
        Self {
            trees: vec![Tree::default()],
        }
    }
}

/// The value of a layer annotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnnotationValue {
    /// A string stored inline.
    String(String),
    /// A blob holding the value.
    Digest(Digest),
}

/// A key/value note attached to a layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Annotation {
    /// The key.
    pub key: String,
    /// The value.
    pub value: AnnotationValue,
}

/// A manifest plus annotations; the unit users commit and stack.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layer {
    /// Its manifest; `None` for an annotation-only layer.
    pub manifest: Option<Digest>,
    /// Notes attached to it.
    pub annotations: Vec<Annotation>,
}

/// A named stack of layers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Platform {
    /// Bottom-up: `layers[0]` is the lowest.
    pub layers: Vec<Digest>,
}

/// The object that stands for a payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blob {
    /// The payload's digest.
    pub payload: Digest,
    /// The payload's size in bytes.
    pub size: u64,
}

/// Any graph object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Object {
    /// A payload's stand-in.
    Blob(Blob),
    /// A directory hierarchy.
    Manifest(Manifest),
    /// A manifest and annotations.
    Layer(Layer),
    /// A stack of layers.
    Platform(Platform),
}

impl Object {
    /// The object's kind.
    pub fn kind(&self) -> ObjectKind {
        match self {
            Object::Blob(_) => ObjectKind::Blob,
            Object::Manifest(_) => ObjectKind::Manifest,
            Object::Layer(_) => ObjectKind::Layer,
            Object::Platform(_) => ObjectKind::Platform,
        }
    }

    /// The object's digest under `strategy`. A blob's digest is its payload's.
    pub fn digest(&self, strategy: DigestStrategy) -> Digest {
        if let Object::Blob(b) = self {
            return b.payload;
        }
        let mut buf = Vec::with_capacity(256);
        if strategy == DigestStrategy::WithKindAndSalt {
            buf.extend_from_slice(DIGEST_SALT);
            buf.push(self.kind() as u8);
        }
        match self {
            Object::Blob(_) => unreachable!("returned above"),
            Object::Manifest(m) => legacy::encode_manifest(m, &mut buf),
            Object::Layer(l) => legacy::encode_layer_for_digest(l, &mut buf),
            Object::Platform(p) => legacy::encode_platform(p, &mut buf),
        }
        Digest::of(&buf)
    }

    /// Header plus body, ready to be written to an object file.
    pub fn encode(&self, strategy: DigestStrategy, encoding: EncodingFormat) -> Result<Vec<u8>> {
        let header = Header {
            strategy,
            encoding,
            kind: self.kind(),
        };
        let mut out = header.to_bytes().to_vec();
        match encoding {
            EncodingFormat::FlatBuffers => flatbuf::encode(self, &mut out),
            EncodingFormat::Legacy => legacy::encode_body(self, &mut out).map_err(Error::Decode)?,
        }
        Ok(out)
    }

    /// Decodes an object file received from elsewhere as object `expected`:
    /// returns the bytes to store and the object. Upstream's gRPC sends
    /// flatbuffers bodies whatever their header says, so a header saying
    /// legacy is tried both ways; only a reading whose digest is
    /// `expected` is accepted (its header corrected in the bytes
    /// returned). `Err` holds what went wrong: the digest found, or why
    /// nothing decoded.
    pub fn decode_received(
        bytes: &[u8],
        expected: &Digest,
    ) -> Result<(Vec<u8>, Object), ReceivedError> {
        let (header, _) = Header::parse(bytes).map_err(ReceivedError::Undecodable)?;
        let mut readings = Vec::with_capacity(2);
        if header.encoding == EncodingFormat::Legacy {
            let mut relabelled = bytes.to_vec();
            // The encoding byte of the header `Header::parse` read.
            if let Some(b) = relabelled.get_mut(10) {
                *b = EncodingFormat::FlatBuffers as u8;
            }
            readings.push(relabelled);
        }
        readings.push(bytes.to_vec());
        let mut first_error = None;
        let mut found = None;
        for reading in readings {
            match Object::decode(&reading) {
                Ok((h, object)) => {
                    let actual = object.digest(h.strategy);
                    if actual == *expected {
                        return Ok((reading, object));
                    }
                    found.get_or_insert(actual);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(match found {
            Some(actual) => ReceivedError::Mismatch(actual),
            None => ReceivedError::Undecodable(first_error.unwrap_or_default()),
        })
    }

    /// Decodes a whole object file (header and body).
    pub fn decode(bytes: &[u8]) -> Result<(Header, Object), String> {
        let (header, body) = Header::parse(bytes)?;
        let object = match header.encoding {
            EncodingFormat::FlatBuffers => flatbuf::decode(header.kind, body)?,
            EncodingFormat::Legacy => legacy::decode(header.kind, body)?,
        };
        Ok((header, object))
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod verifier_tests;
