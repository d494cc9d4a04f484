//! On-demand start: the time from `run REF -- true` until the command has
//! run, with the service stopped (the CLI starts it: double fork, mount,
//! control socket, ready) and with it running, side by side. The release
//! binary is what is timed (`cargo build --release` is run first).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};

fn binary() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let st = Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "spfs-fuse-macos",
            "--bin",
            "spfs-fuse-macos",
        ])
        .current_dir(&root)
        .status()
        .unwrap();
    assert!(st.success());
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    target.join("release/spfs-fuse-macos")
}

struct Setup {
    bin: PathBuf,
    dir: tempfile::TempDir,
    repo: PathBuf,
}

impl Setup {
    fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("SPFS_STORAGE_ROOT", &self.repo)
            .env("SPFS_FUSE_MOUNTPOINT", self.dir.path().join("spfs"))
            .env("SPFS_FUSE_SOCKET", self.dir.path().join("run/control.sock"))
            .stdout(Stdio::null());
        c
    }

    /// `run fixture/base -- true`, timed.
    fn run(&self) -> Duration {
        let start = Instant::now();
        let st = self
            .command()
            .args(["run", "fixture/base", "--", "true"])
            .status()
            .unwrap();
        let t = start.elapsed();
        assert!(st.success());
        t
    }

    fn shutdown(&self) {
        let st = self.command().arg("shutdown").status().unwrap();
        assert!(st.success());
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = self.command().arg("shutdown").status();
    }
}

fn bench(c: &mut Criterion) {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../service/repo/tests/fixtures/spfs-upstream/repo");
    // Runtimes are recorded in their repository: run on a copy.
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let copied = std::process::Command::new("cp")
        .arg("-R")
        .arg(&fixtures)
        .arg(&repo)
        .status()
        .unwrap();
    assert!(copied.success(), "cannot copy {}", fixtures.display());
    let s = Setup {
        bin: binary(),
        dir,
        repo,
    };
    let mut g = c.benchmark_group("run_true");
    g.sample_size(20);
    g.bench_function("service_stopped", |b| {
        b.iter_custom(|n| {
            let mut total = Duration::ZERO;
            for _ in 0..n {
                s.shutdown();
                total += s.run();
            }
            total
        })
    });
    g.bench_function("service_running", |b| {
        s.run();
        b.iter_custom(|n| (0..n).map(|_| s.run()).sum())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
