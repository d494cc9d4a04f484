//! The service's read-only view against fuse-overlayfs on the same data, in
//! the same run, warm caches: a two-layer stack of 20,200 files (200
//! packages of 100 files plus a top layer rewriting 1,000 of them).
//!
//! - `walk`: every directory listed and every entry `lstat`ed by absolute
//!   path (the worst case: each path resolution starts at the mount root);
//! - `find`: the same walk by `find -ls`, which works relative to each
//!   directory (`openat`/`fstatat`), as most tree walkers do;
//! - `read_all`: every file opened and read;
//! - `stat_missing`: 20,000 `stat`s of names that exist in no layer.
//!
//! fuse-overlayfs gets the layer directories themselves as `lowerdir`s; the
//! service gets the same directories committed to an fs repository.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use spfs_benches::{measuring, median};
use spfs_fuse_macos::mount::Mounted;
use spfs_fuse_macos::repo::tags::TagAuthor;
use spfs_fuse_macos::repo::{commit, FsRepository, RepositorySet};

const PACKAGES: usize = 200;
const FILES: usize = 100;

/// fuse-overlayfs mounted at a path; unmounted (lazily if busy) on drop.
struct Overlay(PathBuf);

impl Overlay {
    fn mount(lower: &[&Path], mnt: &Path) -> Overlay {
        std::fs::create_dir_all(mnt).unwrap();
        let lowerdir = lower
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":");
        let status = Command::new("fuse-overlayfs")
            .arg("-o")
            .arg(format!("lowerdir={lowerdir}"))
            .arg(mnt)
            .status()
            .expect("fuse-overlayfs is installed by scripts/setup");
        assert!(status.success(), "fuse-overlayfs failed: {status}");
        Overlay(mnt.to_owned())
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

fn write_layer(root: &Path, packages: std::ops::Range<usize>, files: usize, seed: usize) {
    for p in packages {
        let dir = root.join(format!("pkg{p:03}/lib"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..files {
            let len = 512 + (p * 131 + f * 17 + seed) % 3584;
            let data: Vec<u8> = (0..len).map(|i| (i + f + seed) as u8).collect();
            std::fs::write(dir.join(format!("module_{f:03}.py")), data).unwrap();
        }
    }
}

/// Every path below `root`, directories first (as `find` lists them).
fn walk(root: &Path) -> usize {
    let mut n = 0;
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            n += 1;
            if meta.is_dir() {
                stack.push(path);
            }
        }
    }
    n
}

/// `find ROOT -ls`, a runtime member since it is this process's child.
fn find(root: &Path) -> usize {
    let out = Command::new("find").arg(root).arg("-ls").output().unwrap();
    assert!(out.status.success());
    out.stdout.iter().filter(|&&b| b == b'\n').count()
}

fn read_all(files: &[PathBuf]) -> usize {
    files.iter().map(|p| std::fs::read(p).unwrap().len()).sum()
}

fn stat_missing(missing: &[PathBuf]) -> usize {
    missing
        .iter()
        .filter(|p| std::fs::symlink_metadata(p).is_err())
        .count()
}

struct Side {
    root: PathBuf,
    files: Vec<PathBuf>,
    missing: Vec<PathBuf>,
}

impl Side {
    fn new(root: PathBuf) -> Side {
        let mut files = Vec::new();
        let mut missing = Vec::new();
        for p in 0..PACKAGES {
            for f in 0..FILES {
                files.push(root.join(format!("pkg{p:03}/lib/module_{f:03}.py")));
                missing.push(root.join(format!("pkg{p:03}/lib/missing_{f:03}.py")));
            }
        }
        Side {
            root,
            files,
            missing,
        }
    }
}

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    let top = tmp.path().join("top");
    write_layer(&base, 0..PACKAGES, FILES, 1);
    write_layer(&top, 0..10, FILES, 2);
    let repo = FsRepository::open_or_create(tmp.path().join("repo")).unwrap();
    let base_layer = commit::commit_dir(&repo, &base).unwrap().layer;
    let top_layer = commit::commit_dir(&repo, &top).unwrap().layer;
    let set = Arc::new(RepositorySet::new(
        repo,
        vec![],
        TagAuthor("bench@host".into()),
    ));

    let spfs_mnt = tmp.path().join("spfs");
    let (_mounted, _rt, _): (Mounted, _, _) =
        spfs_benches::mount_runtime(set, vec![base_layer, top_layer], &spfs_mnt);
    let ovl_mnt = tmp.path().join("overlay");
    let _overlay = Overlay::mount(&[&top, &base], &ovl_mnt);

    let spfs = Side::new(spfs_mnt);
    let ovl = Side::new(ovl_mnt);
    // Same data on both sides, and warm caches.
    assert_eq!(walk(&spfs.root), walk(&ovl.root));
    assert_eq!(walk(&spfs.root), PACKAGES * (FILES + 2));
    assert_eq!(find(&spfs.root), find(&ovl.root));
    assert_eq!(read_all(&spfs.files), read_all(&ovl.files));
    assert_eq!(stat_missing(&spfs.missing), spfs.missing.len());
    assert_eq!(stat_missing(&ovl.missing), ovl.missing.len());

    for (name, side) in [("spfs", &spfs), ("fuse-overlayfs", &ovl)] {
        let mut g = c.benchmark_group(format!("{name}_20200_files"));
        g.sample_size(10);
        g.bench_function("walk", |b| b.iter(|| walk(&side.root)));
        g.bench_function("find", |b| b.iter(|| find(&side.root)));
        g.bench_function("read_all", |b| b.iter(|| read_all(&side.files)));
        g.bench_function("stat_missing", |b| b.iter(|| stat_missing(&side.missing)));
        g.finish();
    }

    if measuring() {
        type Workload = fn(&Side) -> usize;
        let workloads: [(&str, Workload); 4] = [
            ("walk", |s| walk(&s.root)),
            ("find", |s| find(&s.root)),
            ("read_all", |s| read_all(&s.files)),
            ("stat_missing", |s| stat_missing(&s.missing)),
        ];
        for (name, f) in workloads {
            let a = median(9, || {
                f(&spfs);
            });
            let b = median(9, || {
                f(&ovl);
            });
            println!(
                "ratio spfs/fuse-overlayfs {name}: {:.2}x ({a:?} vs {b:?})",
                a.as_secs_f64() / b.as_secs_f64()
            );
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
