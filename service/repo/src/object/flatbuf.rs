//! The FlatBuffers body encoding (`AnyObject` root table, no identifier).
//!
//! Field ids follow the schema in `docs/spfs-format.md`; a union field takes
//! two ids (its type, then its value).

use flatbuffers::{FlatBufferBuilder, WIPOffset};

use super::super::digest::Digest;
use super::fb::{required, Buf, FbResult, Table};
use super::{
    Annotation, AnnotationValue, Blob, Entry, EntryKind, Layer, Manifest, Object, ObjectKind,
    Platform, Tree,
};
use crate::sys::flatbuffers::DigestStruct;

// Union type numbers of `Object` (they differ from header kinds).
const U_PLATFORM: u8 = 1;
const U_LAYER: u8 = 2;
const U_MANIFEST: u8 = 3;
const U_BLOB: u8 = 4;
// `EntryKind` enum values.
const E_BLOB: u8 = 0;
const E_TREE: u8 = 4;
const E_MASK: u8 = 5;
// `AnnotationValue` union type numbers.
const A_STRING: u8 = 1;
const A_DIGEST: u8 = 2;

/// Slot offset in the vtable of field `id`.
const fn slot(id: u16) -> u16 {
    4 + 2 * id
}

fn union_type(kind: ObjectKind) -> u8 {
    match kind {
        ObjectKind::Platform => U_PLATFORM,
        ObjectKind::Layer => U_LAYER,
        ObjectKind::Manifest => U_MANIFEST,
        ObjectKind::Blob => U_BLOB,
    }
}

/// Decodes a FlatBuffers body whose header says `kind`.
pub(super) fn decode(kind: ObjectKind, body: &[u8]) -> FbResult<Object> {
    let root = Buf(body).root()?;
    let utype = root.u8(0, 0)?;
    if utype != union_type(kind) {
        return Err(format!(
            "header says {} but the body holds object type {utype}",
            kind.name()
        ));
    }
    let obj = required(root.table(1)?, "AnyObject", "object")?;
    Ok(match kind {
        ObjectKind::Platform => Object::Platform(Platform {
            layers: required(obj.digests(0)?, "Platform", "layers")?,
        }),
        ObjectKind::Blob => Object::Blob(Blob {
            size: obj.u64(0, 0)?,
            payload: required(obj.digest(1)?, "Blob", "payload")?,
        }),
        ObjectKind::Layer => {
            let manifest = obj.digest(0)?;
            let list = required(obj.tables(1)?, "Layer", "annotations")?;
            let mut annotations = Vec::with_capacity(list.len());
            for i in 0..list.len() {
                annotations.push(decode_annotation(&list.get(i)?)?);
            }
            Object::Layer(Layer {
                manifest,
                annotations,
            })
        }
        ObjectKind::Manifest => {
            let list = required(obj.tables(0)?, "Manifest", "trees")?;
            if list.is_empty() {
                return Err("Manifest.trees is empty; a manifest needs a root tree".to_owned());
            }
            let mut trees = Vec::with_capacity(list.len());
            for i in 0..list.len() {
                trees.push(decode_tree(&list.get(i)?)?);
            }
            Object::Manifest(Manifest { trees })
        }
    })
}

fn decode_tree(t: &Table<'_>) -> FbResult<Tree> {
    let list = required(t.tables(0)?, "Tree", "entries")?;
    let mut entries = Vec::with_capacity(list.len());
    for i in 0..list.len() {
        let e = list.get(i)?;
        let kind = match e.u8(0, E_BLOB)? {
            E_BLOB => EntryKind::Blob,
            E_TREE => EntryKind::Tree,
            E_MASK => EntryKind::Mask,
            other => return Err(format!("unknown entry kind {other}")),
        };
        entries.push(Entry {
            kind,
            object: required(e.digest(1)?, "Entry", "object")?,
            mode: e.u32(2, 0)?,
            size: e.u64(3, 0)?,
            name: required(e.str(4)?, "Entry", "name")?.to_owned(),
        });
    }
    Ok(Tree { entries })
}

fn decode_annotation(t: &Table<'_>) -> FbResult<Annotation> {
    let key = required(t.str(0)?, "Annotation", "key")?.to_owned();
    let data = required(t.table(2)?, "Annotation", "data")?;
    let value = match t.u8(1, 0)? {
        A_STRING => AnnotationValue::String(data.str(0)?.unwrap_or_default().to_owned()),
        A_DIGEST => {
            AnnotationValue::Digest(required(data.digest(0)?, "AnnotationDigest", "digest")?)
        }
        other => return Err(format!("unknown annotation value type {other}")),
    };
    Ok(Annotation { key, value })
}

fn digest_vector<'f>(
    b: &mut FlatBufferBuilder<'f>,
    digests: &[Digest],
) -> WIPOffset<flatbuffers::Vector<'f, DigestStruct>> {
    let items: Vec<DigestStruct> = digests
        .iter()
        .map(|d| DigestStruct(*d.as_bytes()))
        .collect();
    b.create_vector(&items)
}

fn build_tree<'f>(
    b: &mut FlatBufferBuilder<'f>,
    tree: &Tree,
) -> WIPOffset<flatbuffers::TableFinishedWIPOffset> {
    let mut entries = Vec::with_capacity(tree.entries.len());
    for e in &tree.entries {
        let name = b.create_string(&e.name);
        let t = b.start_table();
        b.push_slot::<u64>(slot(3), e.size, 0);
        b.push_slot_always(slot(1), DigestStruct(*e.object.as_bytes()));
        b.push_slot_always(slot(4), name);
        b.push_slot::<u32>(slot(2), e.mode, 0);
        let kind = match e.kind {
            EntryKind::Blob => E_BLOB,
            EntryKind::Tree => E_TREE,
            EntryKind::Mask => E_MASK,
        };
        b.push_slot::<u8>(slot(0), kind, E_BLOB);
        entries.push(b.end_table(t));
    }
    let entries = b.create_vector(&entries);
    let t = b.start_table();
    b.push_slot_always(slot(0), entries);
    b.end_table(t)
}

/// Appends the FlatBuffers body of `obj` to `out`.
pub(super) fn encode(obj: &Object, out: &mut Vec<u8>) {
    let mut b = FlatBufferBuilder::with_capacity(1024);
    let value = match obj {
        Object::Platform(p) => {
            let layers = digest_vector(&mut b, &p.layers);
            let t = b.start_table();
            b.push_slot_always(slot(0), layers);
            b.end_table(t)
        }
        Object::Blob(blob) => {
            let t = b.start_table();
            b.push_slot::<u64>(slot(0), blob.size, 0);
            b.push_slot_always(slot(1), DigestStruct(*blob.payload.as_bytes()));
            b.end_table(t)
        }
        Object::Layer(l) => {
            let mut anns = Vec::with_capacity(l.annotations.len());
            for a in &l.annotations {
                let key = b.create_string(&a.key);
                let (vtype, data) = match &a.value {
                    AnnotationValue::String(s) => {
                        let s = b.create_string(s);
                        let t = b.start_table();
                        b.push_slot_always(slot(0), s);
                        (A_STRING, b.end_table(t))
                    }
                    AnnotationValue::Digest(d) => {
                        let t = b.start_table();
                        b.push_slot_always(slot(0), DigestStruct(*d.as_bytes()));
                        (A_DIGEST, b.end_table(t))
                    }
                };
                let t = b.start_table();
                b.push_slot_always(slot(0), key);
                b.push_slot_always(slot(2), data);
                b.push_slot::<u8>(slot(1), vtype, 0);
                anns.push(b.end_table(t));
            }
            let anns = b.create_vector(&anns);
            let t = b.start_table();
            if let Some(m) = &l.manifest {
                b.push_slot_always(slot(0), DigestStruct(*m.as_bytes()));
            }
            b.push_slot_always(slot(1), anns);
            b.end_table(t)
        }
        Object::Manifest(m) => {
            let trees: Vec<_> = m.trees.iter().map(|t| build_tree(&mut b, t)).collect();
            let trees = b.create_vector(&trees);
            let t = b.start_table();
            b.push_slot_always(slot(0), trees);
            b.end_table(t)
        }
    };
    let root = b.start_table();
    b.push_slot_always(slot(1), value);
    b.push_slot::<u8>(slot(0), union_type(obj.kind()), 0);
    let root = b.end_table(root);
    b.finish_minimal(root);
    out.extend_from_slice(b.finished_data());
}
