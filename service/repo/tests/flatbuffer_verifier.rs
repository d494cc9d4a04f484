//! Objects we write pass the `flatbuffers` crate's verifier under the spfs
//! schema, which is what upstream spfs runs before it reads an object. The
//! schema is described here independently of our own reader.

mod common;

use std::fs;

use common::*;
use flatbuffers::{
    ForwardsUOffset, InvalidFlatbuffer, Vector, Verifiable, Verifier, VerifierOptions,
};
use spfs_repo::object::{
    Annotation, AnnotationValue, DigestStrategy, EncodingFormat, Layer, Object,
};
use spfs_repo::Digest;

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
        "layers", 4, true
    )?);
table!(Blob, |t| t
    .visit_field::<u64>("size", 4, false)?
    .visit_field::<DigestS>("payload", 6, true)?);
table!(Entry, |t| t
    .visit_field::<u8>("kind", 4, false)?
    .visit_field::<DigestS>("object", 6, true)?
    .visit_field::<u32>("mode", 8, false)?
    .visit_field::<u64>("size", 10, false)?
    .visit_field::<ForwardsUOffset<&str>>("name", 12, true)?);
table!(Tree, |t| t.visit_field::<ForwardsUOffset<
    Vector<ForwardsUOffset<Entry>>,
>>("entries", 4, true)?);
table!(Manifest, |t| t.visit_field::<ForwardsUOffset<
    Vector<ForwardsUOffset<Tree>>,
>>("trees", 4, true)?);
table!(AnnotationString, |t| t
    .visit_field::<ForwardsUOffset<&str>>("data", 4, false)?);
table!(AnnotationDigest, |t| t
    .visit_field::<DigestS>("digest", 4, false)?);
table!(AnnotationT, |t| t
    .visit_field::<ForwardsUOffset<&str>>("key", 4, true)?
    .visit_union::<u8, _>(
        "data_type",
        6,
        "data",
        8,
        true,
        |key, v, pos| match key {
            1 => v.verify_union_variant::<ForwardsUOffset<AnnotationString>>("String", pos),
            2 => v.verify_union_variant::<ForwardsUOffset<AnnotationDigest>>("Digest", pos),
            _ => Ok(()),
        }
    )?);
table!(LayerT, |t| t
    .visit_field::<DigestS>("manifest", 4, false)?
    .visit_field::<ForwardsUOffset<Vector<ForwardsUOffset<AnnotationT>>>>(
        "annotations",
        6,
        true
    )?);
table!(AnyObject, |t| t.visit_union::<u8, _>(
    "object_type",
    4,
    "object",
    6,
    true,
    |key, v, pos| {
        match key {
            1 => v.verify_union_variant::<ForwardsUOffset<Platform>>("Platform", pos),
            2 => v.verify_union_variant::<ForwardsUOffset<LayerT>>("Layer", pos),
            3 => v.verify_union_variant::<ForwardsUOffset<Manifest>>("Manifest", pos),
            4 => v.verify_union_variant::<ForwardsUOffset<Blob>>("Blob", pos),
            _ => Ok(()),
        }
    }
)?);

fn verify(body: &[u8]) -> R {
    let opts = VerifierOptions::default();
    let mut v = Verifier::new(&opts, body);
    <ForwardsUOffset<AnyObject>>::run_verifier(&mut v, 0)
}

#[test]
fn upstream_objects_pass_this_verifier() {
    // Sanity check of the schema description above on upstream's own bytes.
    for shard in fs::read_dir(fixtures().join("repo/objects")).unwrap() {
        for f in fs::read_dir(shard.unwrap().path()).unwrap() {
            let bytes = fs::read(f.unwrap().path()).unwrap();
            verify(&bytes[17..]).unwrap();
        }
    }
}

#[test]
fn objects_we_write_pass_the_verifier() {
    let mut objects = Vec::new();
    for shard in fs::read_dir(fixtures().join("repo/objects")).unwrap() {
        for f in fs::read_dir(shard.unwrap().path()).unwrap() {
            let bytes = fs::read(f.unwrap().path()).unwrap();
            objects.push(Object::decode(&bytes).unwrap().1);
        }
    }
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
