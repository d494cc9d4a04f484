//! How fast, and how small, is the merged view of a 25,000-entry stack?
//!
//! `merge`: building the view from decoded manifests (what a runtime does
//! when its stack changes). `from_repo`: reading, verifying and decoding the
//! manifests from an fs repository on disk, then merging (a cold start).

use criterion::{criterion_group, criterion_main, Criterion};
use spfs_benches::generated_stack;
use spfs_fuse_macos::repo::object::{Layer, Object};
use spfs_fuse_macos::repo::tags::TagAuthor;
use spfs_fuse_macos::repo::{EnvSpec, FsRepository, RepositorySet, View};

fn bench(c: &mut Criterion) {
    let manifests = generated_stack();
    let view = View::build(&manifests).unwrap();
    let entries = view.len();
    println!(
        "view of the generated stack: {entries} entries, {} heap bytes, {:.1} bytes per entry",
        view.heap_bytes(),
        view.heap_bytes() as f64 / entries as f64
    );

    let mut group = c.benchmark_group("view_build");
    group.sample_size(30);
    group.bench_function(format!("merge_{entries}_entries"), |b| {
        b.iter(|| View::build(std::hint::black_box(&manifests)).unwrap())
    });

    let dir = tempfile::tempdir().unwrap();
    let repo = FsRepository::open_or_create(dir.path().join("repo")).unwrap();
    let mut spec = Vec::new();
    for m in &manifests {
        let manifest = repo.write_object(&Object::Manifest(m.clone())).unwrap();
        let layer = repo
            .write_object(&Object::Layer(Layer {
                manifest: Some(manifest),
                annotations: vec![],
            }))
            .unwrap();
        spec.push(layer.to_string());
    }
    let set = RepositorySet::new(repo, vec![], TagAuthor("bench@host".into()));
    let spec = EnvSpec::parse(&spec.join("+")).unwrap();
    group.bench_function(format!("from_repo_{entries}_entries"), |b| {
        b.iter(|| {
            let stack = set.resolve_stack(&spec).unwrap();
            View::build(&set.read_stack_manifests(&stack).unwrap()).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
