//! Reading the same bytes through the mount and straight from the payload
//! files, in the same run: 1,000 files of 16 KiB and one 64 MiB file, warm
//! page cache in both cases. Prints the ratio (mount / direct).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use spfs_benches::{measuring, median};
use spfs_fuse_macos::mount::Mounted;
use spfs_fuse_macos::repo::tags::TagAuthor;
use spfs_fuse_macos::repo::{commit, FsRepository, RepositorySet};

struct Setup {
    _tmp: tempfile::TempDir,
    _mounted: Mounted,
    through_mount: Vec<PathBuf>,
    direct: Vec<PathBuf>,
    big_mount: PathBuf,
    big_direct: PathBuf,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("small")).unwrap();
    for i in 0..1000 {
        let data: Vec<u8> = (0..16 * 1024).map(|b| (b * 7 + i) as u8).collect();
        std::fs::write(src.join(format!("small/f{i:04}")), data).unwrap();
    }
    let big: Vec<u8> = (0..64 * 1024 * 1024u64).map(|b| (b % 251) as u8).collect();
    std::fs::write(src.join("big.bin"), big).unwrap();
    let repo = FsRepository::open_or_create(tmp.path().join("repo")).unwrap();
    let layer = commit::commit_dir(&repo, &src).unwrap().layer;
    let set = Arc::new(RepositorySet::new(
        repo,
        vec![],
        TagAuthor("bench@host".into()),
    ));
    let mnt = tmp.path().join("mnt");
    let (mounted, rt, _) = spfs_benches::mount_runtime(set.clone(), vec![layer], &mnt);
    let tree = rt.tree();
    let view = tree.layers();
    let payload = |rel: &str| {
        let id = view.resolve_path(rel).unwrap();
        set.payload_path(&view.get(id).unwrap().payload().unwrap())
            .unwrap()
    };
    let direct: Vec<PathBuf> = (0..1000)
        .map(|i| payload(&format!("small/f{i:04}")))
        .collect();
    let big_direct = payload("big.bin");

    Setup {
        through_mount: (0..1000)
            .map(|i| mnt.join(format!("small/f{i:04}")))
            .collect(),
        direct,
        big_mount: mnt.join("big.bin"),
        big_direct,
        _mounted: mounted,
        _tmp: tmp,
    }
}

fn read_all(paths: &[PathBuf]) -> usize {
    paths.iter().map(|p| std::fs::read(p).unwrap().len()).sum()
}

fn read_one(p: &Path) -> usize {
    std::fs::read(p).unwrap().len()
}

fn bench(c: &mut Criterion) {
    let s = setup();
    // warm both page caches
    assert_eq!(read_all(&s.through_mount), read_all(&s.direct));
    assert_eq!(read_one(&s.big_mount), read_one(&s.big_direct));

    let mut g = c.benchmark_group("read_1000x16KiB");
    g.sample_size(20);
    g.bench_function("through_mount", |b| b.iter(|| read_all(&s.through_mount)));
    g.bench_function("direct", |b| b.iter(|| read_all(&s.direct)));
    g.finish();
    let mut g = c.benchmark_group("read_64MiB");
    g.sample_size(20);
    g.bench_function("through_mount", |b| b.iter(|| read_one(&s.big_mount)));
    g.bench_function("direct", |b| b.iter(|| read_one(&s.big_direct)));
    g.finish();

    if measuring() {
        let small_m = median(15, || {
            read_all(&s.through_mount);
        });
        let small_d = median(15, || {
            read_all(&s.direct);
        });
        let big_m = median(15, || {
            read_one(&s.big_mount);
        });
        let big_d = median(15, || {
            read_one(&s.big_direct);
        });
        println!(
            "ratio mount/direct: 1000 x 16 KiB {:.2}x ({:?} vs {:?}); 64 MiB {:.2}x ({:?} vs {:?})",
            small_m.as_secs_f64() / small_d.as_secs_f64(),
            small_m,
            small_d,
            big_m.as_secs_f64() / big_d.as_secs_f64(),
            big_m,
            big_d
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
