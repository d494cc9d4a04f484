use super::*;
use crate::digest::Digest;

fn sample_manifest() -> Manifest {
    let file = |name: &str, data: &[u8]| Entry {
        name: name.into(),
        kind: EntryKind::Blob,
        object: Digest::of(data),
        mode: 0o100644,
        size: data.len() as u64,
    };
    let sub = Tree {
        entries: vec![file("b.txt", b"b")],
    };
    let root = Tree {
        entries: vec![
            Entry {
                name: "dir".into(),
                kind: EntryKind::Tree,
                object: sub.digest(),
                mode: 0o040755,
                size: 0,
            },
            file("a.txt", b"a"),
            Entry {
                name: "gone".into(),
                kind: EntryKind::Mask,
                object: Digest::NULL,
                mode: 0o020644,
                size: 0,
            },
        ],
    };
    Manifest {
        trees: vec![root, sub],
    }
}

fn all_kinds() -> Vec<Object> {
    vec![
        Object::Blob(Blob {
            payload: Digest::of(b"data"),
            size: 4,
        }),
        Object::Manifest(sample_manifest()),
        Object::Layer(Layer {
            manifest: Some(Digest::of(b"m")),
            annotations: vec![],
        }),
        Object::Platform(Platform {
            layers: vec![Digest::of(b"1"), Digest::of(b"2")],
        }),
    ]
}

fn by_name(mut o: Object) -> Object {
    if let Object::Manifest(m) = &mut o {
        for t in &mut m.trees {
            t.entries.sort_by(|a, b| a.name.cmp(&b.name));
        }
    }
    o
}

#[test]
fn every_kind_round_trips_in_both_encodings() {
    for obj in all_kinds() {
        for enc in [EncodingFormat::Legacy, EncodingFormat::FlatBuffers] {
            for strat in [DigestStrategy::Legacy, DigestStrategy::WithKindAndSalt] {
                let bytes = obj.encode(strat, enc).unwrap();
                let (h, back) = Object::decode(&bytes).unwrap();
                assert_eq!(h.strategy, strat);
                assert_eq!(h.encoding, enc);
                // legacy bodies keep entries sorted by name
                assert_eq!(by_name(back), by_name(obj.clone()));
                assert_eq!(h, Header::parse(&bytes).unwrap().0);
            }
        }
    }
}

#[test]
fn digests_do_not_depend_on_encoding_but_do_on_strategy() {
    let m = Object::Manifest(sample_manifest());
    assert_ne!(
        m.digest(DigestStrategy::Legacy),
        m.digest(DigestStrategy::WithKindAndSalt)
    );
    // a blob is always its payload's digest
    let b = Object::Blob(Blob {
        payload: Digest::of(b"x"),
        size: 1,
    });
    assert_eq!(b.digest(DigestStrategy::Legacy), Digest::of(b"x"));
    assert_eq!(b.digest(DigestStrategy::WithKindAndSalt), Digest::of(b"x"));
    // an empty legacy platform digests like eight zero bytes; the salt fixes that
    let p = Object::Platform(Platform::default());
    assert_eq!(p.digest(DigestStrategy::Legacy), Digest::of(&[0u8; 8]));
    assert_ne!(
        p.digest(DigestStrategy::WithKindAndSalt),
        Digest::of(&[0u8; 8])
    );
}

#[test]
fn annotated_layers_need_flatbuffers() {
    let l = Object::Layer(Layer {
        manifest: None,
        annotations: vec![Annotation {
            key: "k".into(),
            value: AnnotationValue::String("v".into()),
        }],
    });
    let err = l
        .encode(DigestStrategy::Legacy, EncodingFormat::Legacy)
        .unwrap_err();
    assert!(err.to_string().contains("FlatBuffers"), "{err}");
    l.encode(DigestStrategy::Legacy, EncodingFormat::FlatBuffers)
        .unwrap();
}

#[test]
fn bad_headers_are_clear_errors() {
    let good = all_kinds()[0]
        .encode(DigestStrategy::WithKindAndSalt, EncodingFormat::FlatBuffers)
        .unwrap();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![], "shorter than the 17-byte"),
        (good[..16].to_vec(), "shorter than the 17-byte"),
        (
            [b"--SPFX--\n".as_slice(), &good[9..]].concat(),
            "missing the '--SPFS--'",
        ),
        (
            {
                let mut b = good.clone();
                b[9] = 7;
                b
            },
            "unknown digest strategy 7",
        ),
        (
            {
                let mut b = good.clone();
                b[10] = 9;
                b
            },
            "unknown encoding format 9",
        ),
        (
            {
                let mut b = good.clone();
                b[16] = 4;
                b
            },
            "unknown object kind 4",
        ),
        // header says manifest, body holds a blob
        (
            {
                let mut b = good.clone();
                b[16] = 1;
                b
            },
            "header says manifest",
        ),
    ];
    for (bytes, needle) in cases {
        let err = Object::decode(&bytes).unwrap_err();
        assert!(err.contains(needle), "{needle}: {err}");
    }
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    for obj in all_kinds() {
        for enc in [EncodingFormat::Legacy, EncodingFormat::FlatBuffers] {
            let bytes = obj.encode(DigestStrategy::WithKindAndSalt, enc).unwrap();
            for cut in 0..bytes.len() {
                // Cutting only unreferenced alignment padding may still
                // decode; a cut must never yield a different object.
                if let Ok((_, o)) = Object::decode(&bytes[..cut]) {
                    assert_eq!(by_name(o), by_name(obj.clone()), "{enc:?} cut at {cut}");
                }
            }
        }
    }
}

/// A tiny deterministic PRNG (xorshift) so the mutation test is repeatable.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_mutations_never_panic() {
    let mut rng = Rng(0x9e3779b97f4a7c15);
    for obj in all_kinds() {
        for enc in [EncodingFormat::Legacy, EncodingFormat::FlatBuffers] {
            let bytes = obj.encode(DigestStrategy::WithKindAndSalt, enc).unwrap();
            for _ in 0..3000 {
                let mut b = bytes.clone();
                for _ in 0..1 + rng.below(4) {
                    match rng.below(4) {
                        0 => {
                            let i = rng.below(b.len());
                            b[i] ^= 1 << rng.below(8);
                        }
                        1 => {
                            let i = rng.below(b.len());
                            b[i] = [0, 0xff, 0x7f, 0x80][rng.below(4)];
                        }
                        2 => {
                            let i = 17 + rng.below(b.len().saturating_sub(17).max(1));
                            b.truncate(i);
                        }
                        _ => {
                            let i = rng.below(b.len());
                            b.insert(i, rng.next() as u8);
                        }
                    }
                    if b.is_empty() {
                        break;
                    }
                }
                crate::fuzz_object(&b);
            }
        }
    }
}

#[test]
fn tree_digest_ignores_entry_order() {
    let mut m = sample_manifest();
    let before = m.trees[0].digest();
    m.trees[0].entries.reverse();
    assert_eq!(m.trees[0].digest(), before);
    m.trees[0].sort();
    let kinds: Vec<_> = m.trees[0].entries.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [EntryKind::Tree, EntryKind::Blob, EntryKind::Mask]);
}
