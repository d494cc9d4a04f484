//! Objects we write pass the `flatbuffers` crate's verifier under the spfs
//! schema, which is what upstream spfs runs before it reads an object. The
//! verifier's tables are built from the one schema definition
//! (`schema.rs`), and checked first on upstream's own objects.

use std::fs;
use std::path::PathBuf;

use flatbuffers::{
    ForwardsUOffset, InvalidFlatbuffer, Vector, Verifiable, Verifier, VerifierOptions,
};

use super::fb::slot;
use super::schema::{
    annotation, annotation_digest, annotation_string, annotation_value, any_object, blob, entry,
    layer, manifest, object, platform, tree,
};
use super::{Annotation, AnnotationValue, DigestStrategy, EncodingFormat, Layer, Object};
use crate::Digest;

type R = Result<(), InvalidFlatbuffer>;

#[repr(C)]
struct DigestS([u8; 32]);
impl flatbuffers::SimpleToVerifyInSlice for DigestS {}
impl Verifiable for DigestS {
    fn run_verifier(v: &mut Verifier, pos: usize) -> R {
        v.in_buffer::<Self>(pos)
    }
}

macro_rules! table {
    ($name:ident, |$t:ident| $body:expr) => {
        struct $name;
        impl Verifiable for $name {
            fn run_verifier(v: &mut Verifier, pos: usize) -> R {
                let $t = v.visit_table(pos)?;
                $body.finish();
                Ok(())
            }
        }
    };
}

table!(Platform, |t| t
    .visit_field::<ForwardsUOffset<Vector<DigestS>>>(
        "layers",
        slot(platform::LAYERS),
        true
    )?);
table!(Blob, |t| t
    .visit_field::<u64>("size", slot(blob::SIZE), false)?
    .visit_field::<DigestS>("payload", slot(blob::PAYLOAD), true)?);
table!(Entry, |t| t
    .visit_field::<u8>("kind", slot(entry::KIND), false)?
    .visit_field::<DigestS>("object", slot(entry::OBJECT), true)?
    .visit_field::<u32>("mode", slot(entry::MODE), false)?
    .visit_field::<u64>("size", slot(entry::SIZE), false)?
    .visit_field::<ForwardsUOffset<&str>>(
        "name",
        slot(entry::NAME),
        true
    )?);
table!(Tree, |t| t.visit_field::<ForwardsUOffset<
    Vector<ForwardsUOffset<Entry>>,
>>("entries", slot(tree::ENTRIES), true)?);
table!(Manifest, |t| t.visit_field::<ForwardsUOffset<
    Vector<ForwardsUOffset<Tree>>,
>>("trees", slot(manifest::TREES), true)?);
table!(AnnotationString, |t| t
    .visit_field::<ForwardsUOffset<&str>>(
        "data",
        slot(annotation_string::DATA),
        false
    )?);
table!(AnnotationDigest, |t| t.visit_field::<DigestS>(
    "digest",
    slot(annotation_digest::DIGEST),
    false
)?);
table!(AnnotationT, |t| t
    .visit_field::<ForwardsUOffset<&str>>("key", slot(annotation::KEY), true)?
    .visit_union::<u8, _>(
        "data_type",
        slot(annotation::DATA_TYPE),
        "data",
        slot(annotation::DATA),
        true,
        |key, v, pos| match key {
            annotation_value::STRING => {
                v.verify_union_variant::<ForwardsUOffset<AnnotationString>>("String", pos)
            }
            annotation_value::DIGEST => {
                v.verify_union_variant::<ForwardsUOffset<AnnotationDigest>>("Digest", pos)
            }
            _ => Ok(()),
        }
    )?);
table!(LayerT, |t| t
    .visit_field::<DigestS>("manifest", slot(layer::MANIFEST), false)?
    .visit_field::<ForwardsUOffset<Vector<ForwardsUOffset<AnnotationT>>>>(
        "annotations",
        slot(layer::ANNOTATIONS),
        true
    )?);
table!(AnyObject, |t| t.visit_union::<u8, _>(
    "object_type",
    slot(any_object::OBJECT_TYPE),
    "object",
    slot(any_object::OBJECT),
    true,
    |key, v, pos| match key {
        object::PLATFORM => v.verify_union_variant::<ForwardsUOffset<Platform>>("Platform", pos),
        object::LAYER => v.verify_union_variant::<ForwardsUOffset<LayerT>>("Layer", pos),
        object::MANIFEST => v.verify_union_variant::<ForwardsUOffset<Manifest>>("Manifest", pos),
        object::BLOB => v.verify_union_variant::<ForwardsUOffset<Blob>>("Blob", pos),
        _ => Ok(()),
    }
)?);

fn verify(body: &[u8]) -> R {
    let opts = VerifierOptions::default();
    let mut v = Verifier::new(&opts, body);
    <ForwardsUOffset<AnyObject>>::run_verifier(&mut v, 0)
}

/// The object files upstream spfs wrote (the project's own copy).
fn upstream_objects() -> Vec<Vec<u8>> {
    let objects =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/spfs-upstream/repo/objects");
    let mut files = Vec::new();
    for shard in fs::read_dir(objects).unwrap() {
        for f in fs::read_dir(shard.unwrap().path()).unwrap() {
            files.push(fs::read(f.unwrap().path()).unwrap());
        }
    }
    assert!(!files.is_empty());
    files
}

#[test]
fn upstream_objects_pass_the_verifier_of_our_schema() {
    for bytes in upstream_objects() {
        verify(&bytes[17..]).unwrap();
    }
}

#[test]
fn objects_we_write_pass_the_verifier() {
    let mut objects: Vec<Object> = upstream_objects()
        .iter()
        .map(|bytes| Object::decode(bytes).unwrap().1)
        .collect();
    objects.push(Object::Layer(Layer {
        manifest: None,
        annotations: vec![
            Annotation {
                key: "note".into(),
                value: AnnotationValue::String("hello".into()),
            },
            Annotation {
                key: "ref".into(),
                value: AnnotationValue::Digest(Digest::of(b"x")),
            },
        ],
    }));
    for obj in objects {
        let bytes = obj
            .encode(DigestStrategy::WithKindAndSalt, EncodingFormat::FlatBuffers)
            .unwrap();
        verify(&bytes[17..]).unwrap_or_else(|e| panic!("{:?}: {e}", obj.kind()));
        let (_, back) = Object::decode(&bytes).unwrap();
        assert_eq!(back, obj);
    }
}
