//! The FlatBuffers body encoding (`AnyObject` root table, no identifier).
//!
//! Field ids follow the schema in `docs/spfs-format.md`; a union field takes
//! two ids (its type, then its value).

use flatbuffers::{FlatBufferBuilder, WIPOffset};

use super::super::digest::Digest;
use super::fb::{required, slot, Buf, FbResult, Table};
use super::{
    Annotation, AnnotationValue, Blob, Entry, EntryKind, Layer, Manifest, Object, ObjectKind,
    Platform, Tree,
};
use crate::sys::flatbuffers::DigestStruct;

use super::schema::{
    annotation, annotation_digest, annotation_string, annotation_value, any_object, blob, entry,
    entry_kind, layer, manifest, object, platform, tree,
};

fn union_type(kind: ObjectKind) -> u8 {
    match kind {
        ObjectKind::Platform => object::PLATFORM,
        ObjectKind::Layer => object::LAYER,
        ObjectKind::Manifest => object::MANIFEST,
        ObjectKind::Blob => object::BLOB,
    }
}

/// Decodes a FlatBuffers body whose header says `kind`.
pub(super) fn decode(kind: ObjectKind, body: &[u8]) -> FbResult<Object> {
    let root = Buf(body).root()?;
    let utype = root.u8(any_object::OBJECT_TYPE, 0)?;
    if utype != union_type(kind) {
        return Err(format!(
            "header says {} but the body holds object type {utype}",
            kind.name()
        ));
    }
    let obj = required(root.table(any_object::OBJECT)?, "AnyObject", "object")?;
    Ok(match kind {
        ObjectKind::Platform => Object::Platform(Platform {
            layers: required(obj.digests(platform::LAYERS)?, "Platform", "layers")?,
        }),
        ObjectKind::Blob => Object::Blob(Blob {
            size: obj.u64(blob::SIZE, 0)?,
            payload: required(obj.digest(blob::PAYLOAD)?, "Blob", "payload")?,
        }),
        ObjectKind::Layer => {
            let manifest = obj.digest(layer::MANIFEST)?;
            let list = required(obj.tables(layer::ANNOTATIONS)?, "Layer", "annotations")?;
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
            let list = required(obj.tables(manifest::TREES)?, "Manifest", "trees")?;
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
    let list = required(t.tables(tree::ENTRIES)?, "Tree", "entries")?;
    let mut entries = Vec::with_capacity(list.len());
    for i in 0..list.len() {
        let e = list.get(i)?;
        let kind = match e.u8(entry::KIND, entry_kind::BLOB)? {
            entry_kind::BLOB => EntryKind::Blob,
            entry_kind::TREE => EntryKind::Tree,
            entry_kind::MASK => EntryKind::Mask,
            other => return Err(format!("unknown entry kind {other}")),
        };
        entries.push(Entry {
            kind,
            object: required(e.digest(entry::OBJECT)?, "Entry", "object")?,
            mode: e.u32(entry::MODE, 0)?,
            size: e.u64(entry::SIZE, 0)?,
            name: required(e.str(entry::NAME)?, "Entry", "name")?.to_owned(),
        });
    }
    Ok(Tree { entries })
}

fn decode_annotation(t: &Table<'_>) -> FbResult<Annotation> {
    let key = required(t.str(annotation::KEY)?, "Annotation", "key")?.to_owned();
    let data = required(t.table(annotation::DATA)?, "Annotation", "data")?;
    let value = match t.u8(annotation::DATA_TYPE, 0)? {
        annotation_value::STRING => AnnotationValue::String(
            data.str(annotation_string::DATA)?
                .unwrap_or_default()
                .to_owned(),
        ),
        annotation_value::DIGEST => AnnotationValue::Digest(required(
            data.digest(annotation_digest::DIGEST)?,
            "AnnotationDigest",
            "digest",
        )?),
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
        b.push_slot::<u64>(slot(entry::SIZE), e.size, 0);
        b.push_slot_always(slot(entry::OBJECT), DigestStruct(*e.object.as_bytes()));
        b.push_slot_always(slot(entry::NAME), name);
        b.push_slot::<u32>(slot(entry::MODE), e.mode, 0);
        let kind = match e.kind {
            EntryKind::Blob => entry_kind::BLOB,
            EntryKind::Tree => entry_kind::TREE,
            EntryKind::Mask => entry_kind::MASK,
        };
        b.push_slot::<u8>(slot(entry::KIND), kind, entry_kind::BLOB);
        entries.push(b.end_table(t));
    }
    let entries = b.create_vector(&entries);
    let t = b.start_table();
    b.push_slot_always(slot(tree::ENTRIES), entries);
    b.end_table(t)
}

/// Appends the FlatBuffers body of `obj` to `out`.
pub(super) fn encode(obj: &Object, out: &mut Vec<u8>) {
    let mut b = FlatBufferBuilder::with_capacity(1024);
    let value = match obj {
        Object::Platform(p) => {
            let layers = digest_vector(&mut b, &p.layers);
            let t = b.start_table();
            b.push_slot_always(slot(platform::LAYERS), layers);
            b.end_table(t)
        }
        Object::Blob(blob) => {
            let t = b.start_table();
            b.push_slot::<u64>(slot(blob::SIZE), blob.size, 0);
            b.push_slot_always(slot(blob::PAYLOAD), DigestStruct(*blob.payload.as_bytes()));
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
                        b.push_slot_always(slot(annotation_string::DATA), s);
                        (annotation_value::STRING, b.end_table(t))
                    }
                    AnnotationValue::Digest(d) => {
                        let t = b.start_table();
                        b.push_slot_always(
                            slot(annotation_digest::DIGEST),
                            DigestStruct(*d.as_bytes()),
                        );
                        (annotation_value::DIGEST, b.end_table(t))
                    }
                };
                let t = b.start_table();
                b.push_slot_always(slot(annotation::KEY), key);
                b.push_slot_always(slot(annotation::DATA), data);
                b.push_slot::<u8>(slot(annotation::DATA_TYPE), vtype, 0);
                anns.push(b.end_table(t));
            }
            let anns = b.create_vector(&anns);
            let t = b.start_table();
            if let Some(m) = &l.manifest {
                b.push_slot_always(slot(layer::MANIFEST), DigestStruct(*m.as_bytes()));
            }
            b.push_slot_always(slot(layer::ANNOTATIONS), anns);
            b.end_table(t)
        }
        Object::Manifest(m) => {
            let trees: Vec<_> = m.trees.iter().map(|t| build_tree(&mut b, t)).collect();
            let trees = b.create_vector(&trees);
            let t = b.start_table();
            b.push_slot_always(slot(manifest::TREES), trees);
            b.end_table(t)
        }
    };
    let root = b.start_table();
    b.push_slot_always(slot(any_object::OBJECT), value);
    b.push_slot::<u8>(slot(any_object::OBJECT_TYPE), union_type(obj.kind()), 0);
    let root = b.end_table(root);
    b.finish_minimal(root);
    out.extend_from_slice(b.finished_data());
}
