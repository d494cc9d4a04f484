//! The legacy binary encoding: big-endian u64 integers, NUL-terminated
//! strings. It is the body format of old repositories and, for every
//! repository, the input of object digests.

use super::super::digest::{Digest, DIGEST_SIZE};
use super::{
    Annotation, AnnotationValue, Blob, Entry, EntryKind, Layer, Manifest, Object, ObjectKind,
    Platform, Tree,
};

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

fn encode_entry(e: &Entry, out: &mut Vec<u8>) {
    out.extend_from_slice(e.object.as_bytes());
    put_str(out, e.kind.legacy_name());
    put_u64(out, e.mode as u64);
    put_u64(out, e.size);
    put_str(out, &e.name);
}

/// Entry count, then entries sorted bytewise by name.
pub(super) fn encode_tree(tree: &Tree, out: &mut Vec<u8>) {
    put_u64(out, tree.entries.len() as u64);
    let mut sorted: Vec<&Entry> = tree.entries.iter().collect();
    sorted.sort_unstable_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    for e in sorted {
        encode_entry(e, out);
    }
}

/// Root tree, then the number of other trees, then each of them in order.
pub(super) fn encode_manifest(m: &Manifest, out: &mut Vec<u8>) {
    // A manifest without trees encodes as one with an empty root.
    let empty = Tree::default();
    let (root, rest) = m.trees.split_first().unwrap_or((&empty, &[]));
    encode_tree(root, out);
    put_u64(out, rest.len() as u64);
    for t in rest {
        encode_tree(t, out);
    }
}

/// Layer count, then layers top-down (the reverse of the stored order).
pub(super) fn encode_platform(p: &Platform, out: &mut Vec<u8>) {
    put_u64(out, p.layers.len() as u64);
    for d in p.layers.iter().rev() {
        out.extend_from_slice(d.as_bytes());
    }
}

/// The layer's digest input: its manifest, then its annotations.
pub(super) fn encode_layer_for_digest(l: &Layer, out: &mut Vec<u8>) {
    if let Some(m) = &l.manifest {
        out.extend_from_slice(m.as_bytes());
    }
    for a in &l.annotations {
        put_str(out, &a.key);
        match &a.value {
            AnnotationValue::String(s) => {
                out.push(1);
                put_str(out, s);
            }
            AnnotationValue::Digest(d) => {
                out.push(2);
                out.extend_from_slice(d.as_bytes());
            }
        }
    }
}

/// The legacy body of any object.
pub(super) fn encode_body(obj: &Object, out: &mut Vec<u8>) -> Result<(), String> {
    match obj {
        Object::Blob(b) => {
            out.extend_from_slice(b.payload.as_bytes());
            put_u64(out, b.size);
        }
        Object::Manifest(m) => encode_manifest(m, out),
        Object::Platform(p) => encode_platform(p, out),
        Object::Layer(l) => match (&l.manifest, l.annotations.is_empty()) {
            (Some(m), true) => out.extend_from_slice(m.as_bytes()),
            _ => {
                return Err(
                    "the legacy encoding can only store a layer with a manifest and no annotations; use the FlatBuffers encoding"
                        .to_owned(),
                )
            }
        },
    }
    Ok(())
}

/// A bounds-checked cursor over a legacy body.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n);
        match end.and_then(|end| Some((end, self.bytes.get(self.pos..end)?))) {
            Some((end, s)) => {
                self.pos = end;
                Ok(s)
            }
            None => Err(format!(
                "legacy body is truncated: {what} at byte {} needs {n} bytes, {} remain",
                self.pos,
                self.bytes.len().saturating_sub(self.pos)
            )),
        }
    }
    fn u64(&mut self, what: &str) -> Result<u64, String> {
        let b = self.take(8, what)?;
        let a = b.try_into().map_err(|_| format!("{what} is not 8 bytes"))?;
        Ok(u64::from_be_bytes(a))
    }
    fn digest(&mut self, what: &str) -> Result<Digest, String> {
        let b = self.take(DIGEST_SIZE, what)?;
        Digest::from_slice(b).ok_or_else(|| format!("{what} is not a digest"))
    }
    fn string(&mut self, what: &str) -> Result<&'a str, String> {
        let rest = self.bytes.get(self.pos..).unwrap_or_default();
        let len = rest.iter().position(|b| *b == 0).ok_or_else(|| {
            format!(
                "legacy body is truncated: {what} at byte {} has no NUL terminator",
                self.pos
            )
        })?;
        let s = std::str::from_utf8(rest.get(..len).unwrap_or_default())
            .map_err(|_| format!("{what} at byte {} is not UTF-8", self.pos))?;
        self.pos += len + 1;
        Ok(s)
    }
    /// A count, refused if it could not possibly fit in what remains.
    fn count(&mut self, what: &str, min_item: usize) -> Result<usize, String> {
        let n = self.u64(what)?;
        let remaining = (self.bytes.len() - self.pos) as u64;
        if n.saturating_mul(min_item as u64) > remaining {
            return Err(format!(
                "{what} of {n} does not fit in the {remaining} remaining bytes"
            ));
        }
        Ok(n as usize)
    }
}

// Smallest possible encoded entry: digest, "tree\0", mode, size, "\0".
const MIN_ENTRY: usize = DIGEST_SIZE + 5 + 8 + 8 + 1;

fn decode_tree(r: &mut Reader<'_>) -> Result<Tree, String> {
    let n = r.count("tree entry count", MIN_ENTRY)?;
    let mut entries = Vec::with_capacity(n);
    for _ in 0..n {
        let object = r.digest("entry digest")?;
        let kind = match r.string("entry kind")? {
            "tree" => EntryKind::Tree,
            "file" => EntryKind::Blob,
            "mask" => EntryKind::Mask,
            other => return Err(format!("unknown entry kind '{other}'")),
        };
        let mode = r.u64("entry mode")?;
        let mode = u32::try_from(mode).map_err(|_| format!("entry mode {mode} is too large"))?;
        let size = r.u64("entry size")?;
        let name = r.string("entry name")?.to_owned();
        entries.push(Entry {
            name,
            kind,
            object,
            mode,
            size,
        });
    }
    Ok(Tree { entries })
}

/// Decodes a legacy body of the given kind.
pub(super) fn decode(kind: ObjectKind, body: &[u8]) -> Result<Object, String> {
    let mut r = Reader {
        bytes: body,
        pos: 0,
    };
    Ok(match kind {
        ObjectKind::Blob => Object::Blob(Blob {
            payload: r.digest("blob payload")?,
            size: r.u64("blob size")?,
        }),
        ObjectKind::Layer => Object::Layer(Layer {
            manifest: Some(r.digest("layer manifest")?),
            annotations: Vec::<Annotation>::new(),
        }),
        ObjectKind::Platform => {
            let n = r.count("platform layer count", DIGEST_SIZE)?;
            let mut layers = (0..n)
                .map(|_| r.digest("platform layer"))
                .collect::<Result<Vec<_>, _>>()?;
            layers.reverse(); // stored top-down, kept bottom-up
            Object::Platform(Platform { layers })
        }
        ObjectKind::Manifest => {
            let mut trees = vec![decode_tree(&mut r)?];
            let n = r.count("manifest tree count", 8)?;
            for _ in 0..n {
                trees.push(decode_tree(&mut r)?);
            }
            Object::Manifest(Manifest { trees })
        }
    })
}
