//! Editable runtimes against the plain filesystem, in the same run, on the
//! same filesystem (the scratch directory and the plain target share one
//! temp dir):
//!
//! - `copy_up_64MiB` / `copy_up_1GiB`: opening a lower-layer file for
//!   writing (which copies it up: clone where possible, else
//!   copy_file_range) versus `cp` of the same payload file;
//! - `create_5000`: creating 5,000 small files (open, write 100 bytes,
//!   close) in a new directory of the runtime versus in a plain directory;
//!   once in the temp dir (the disk) and once in `/dev/shm` (tmpfs), where
//!   no disk noise hides the cost of the FUSE round trips.
//!
//! Prints the ratios (runtime / plain) of medians of interleaved runs, so
//! both sides see the same state of the disk. `cargo test --benches` runs
//! each once with a small file instead of 1 GiB.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use spfs_benches::measuring;
use spfs_fuse_macos::mount::Mounted;
use spfs_fuse_macos::repo::tags::TagAuthor;
use spfs_fuse_macos::repo::{commit, FsRepository, RepositorySet};
use spfs_fuse_macos::runtimes::{Runtime, Runtimes};
use spfs_fuse_macos::scratch::Scratch;

const MIB: u64 = 1 << 20;

struct Setup {
    tmp: tempfile::TempDir,
    mnt: PathBuf,
    scratch: Arc<Scratch>,
    runtimes: Arc<Runtimes>,
    rt: Arc<Runtime>,
    set: Arc<RepositorySet>,
    _mounted: Mounted,
}

/// A repository whose one layer holds `files` (name, MiB), an editable
/// runtime of it mounted at `<tmp>/mnt` with this process as its root.
fn setup(files: &[(&str, u64)], base: &Path) -> Setup {
    let tmp = tempfile::tempdir_in(base).unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    for (name, mib) in files {
        let mut f = std::io::BufWriter::new(std::fs::File::create(src.join(name)).unwrap());
        for i in 0..*mib {
            let chunk: Vec<u8> = (0..MIB).map(|b| (b * 31 + i * 7) as u8).collect();
            f.write_all(&chunk).unwrap();
        }
        f.flush().unwrap();
    }
    let repo = FsRepository::open_or_create(tmp.path().join("repo")).unwrap();
    let layer = commit::commit_dir(&repo, &src).unwrap().layer;
    std::fs::remove_dir_all(&src).unwrap();
    let set = Arc::new(RepositorySet::new(
        repo,
        vec![],
        TagAuthor("bench@host".into()),
    ));
    let scratch = Arc::new(Scratch::open(&tmp.path().join("scratch")).unwrap());
    let mnt = tmp.path().join("mnt");
    let (mounted, rt, runtimes) =
        spfs_benches::mount_runtime_with(set.clone(), vec![layer], &mnt, Some(scratch.clone()));
    Setup {
        tmp,
        mnt,
        scratch,
        runtimes,
        rt,
        set,
        _mounted: mounted,
    }
}

impl Setup {
    /// Discards the edits, as `reset` does (a new inode generation).
    fn reset(&self) {
        let ed = self.rt.editable().unwrap();
        self.runtimes
            .reset(&self.rt, ed, |scratch| scratch.clear())
            .unwrap();
    }

    fn payload(&self, rel: &str) -> PathBuf {
        let tree = self.rt.tree();
        let view = tree.layers();
        let id = view.resolve_path(rel).unwrap();
        self.set
            .payload_path(&view.get(id).unwrap().payload().unwrap())
            .unwrap()
    }

    /// Time to open `rel` for writing (a copy-up), edits reset before.
    fn copy_up(&self, rel: &str) -> Duration {
        self.reset();
        let p = self.mnt.join(rel);
        let start = Instant::now();
        let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        drop(f);
        let t = start.elapsed();
        assert!(self.scratch.upper_path().join(rel).exists(), "no copy-up");
        t
    }

    /// Time to `cp` the payload of `rel` to a plain file beside the scratch.
    fn cp(&self, rel: &str) -> Duration {
        let dst = self.tmp.path().join("cp-target");
        let _ = std::fs::remove_file(&dst);
        let src = self.payload(rel);
        let start = Instant::now();
        let st = Command::new("cp").arg(&src).arg(&dst).status().unwrap();
        let t = start.elapsed();
        assert!(st.success());
        std::fs::remove_file(&dst).unwrap();
        t
    }
}

/// Time to create `n` files of 100 bytes in `dir` (created, must not exist).
fn create_files(dir: &Path, n: usize) -> Duration {
    let data = [b'x'; 100];
    let start = Instant::now();
    std::fs::create_dir(dir).unwrap();
    for i in 0..n {
        let mut f = std::fs::File::create(dir.join(format!("f{i:05}.txt"))).unwrap();
        f.write_all(&data).unwrap();
    }
    start.elapsed()
}

fn total(iters: u64, mut f: impl FnMut() -> Duration) -> Duration {
    (0..iters).map(|_| f()).sum()
}

/// Medians of `n` interleaved runs of `a` and `b`, and their ratio.
fn paired(n: usize, a: impl Fn() -> Duration, b: impl Fn() -> Duration) -> (Duration, Duration) {
    let (mut ta, mut tb): (Vec<Duration>, Vec<Duration>) = (0..n).map(|_| (a(), b())).unzip();
    ta.sort();
    tb.sort();
    (ta[n / 2], tb[n / 2])
}

fn print_ratio(what: &str, (a, b): (Duration, Duration), names: (&str, &str)) {
    println!(
        "ratio {what}: {:.2}x ({} {a:?} vs {} {b:?})",
        a.as_secs_f64() / b.as_secs_f64(),
        names.0,
        names.1
    );
}

/// Creating 5,000 files in the runtime of `s` and in a plain directory
/// beside its scratch: the criterion group `name`, then the ratio.
fn bench_creates(c: &mut Criterion, s: &Setup, name: &str) {
    let plain_root = s.tmp.path().join("plain");
    std::fs::create_dir_all(&plain_root).unwrap();
    let runtime_create = || {
        s.reset();
        create_files(&s.mnt.join("new"), 5000)
    };
    let plain_create = || {
        let d = plain_root.join("new");
        let _ = std::fs::remove_dir_all(&d);
        create_files(&d, 5000)
    };
    let mut g = c.benchmark_group(name);
    g.sample_size(10);
    g.bench_function("runtime", |b| b.iter_custom(|n| total(n, runtime_create)));
    g.bench_function("plain_dir", |b| b.iter_custom(|n| total(n, plain_create)));
    g.finish();
    if measuring() {
        print_ratio(
            name,
            paired(9, runtime_create, plain_create),
            ("runtime", "plain dir"),
        );
    }
}

fn bench(c: &mut Criterion) {
    let big_mib = if measuring() { 1024 } else { 4 };
    let s = setup(
        &[("f64.bin", 64), ("big.bin", big_mib)],
        &std::env::temp_dir(),
    );
    let big_name = if measuring() {
        "copy_up_1GiB"
    } else {
        "copy_up_small"
    };

    for (group, rel, samples) in [("copy_up_64MiB", "f64.bin", 20), (big_name, "big.bin", 10)] {
        // warm the payload in the page cache for both sides
        std::fs::read(s.payload(rel)).unwrap();
        let mut g = c.benchmark_group(group);
        g.sample_size(samples);
        g.bench_function("runtime", |b| {
            b.iter_custom(|n| total(n, || s.copy_up(rel)))
        });
        g.bench_function("cp", |b| b.iter_custom(|n| total(n, || s.cp(rel))));
        g.finish();
        if measuring() {
            let n = if rel == "big.bin" { 5 } else { 9 };
            print_ratio(
                group,
                paired(n, || s.copy_up(rel), || s.cp(rel)),
                ("runtime", "cp"),
            );
        }
    }
    bench_creates(c, &s, "create_5000");
    drop(s);

    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        let s = setup(&[("f64.bin", 1)], shm);
        bench_creates(c, &s, "create_5000_tmpfs");
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
