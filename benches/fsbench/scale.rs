//! How cost grows: view build and memory with the size of a stack, memory
//! and speed with the number of runtimes, copy-up with a file's size,
//! commit with the number of changed files. Each figure that needs a
//! clean peak memory is measured in a child process of its own
//! (`fsbench child …`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use spfs_fuse_macos::repo::View;

use crate::peers::status_field;

/// One row of the growth tables.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Row {
    /// `view_build`, `runtimes_same_stack`, `copy_up`, `commit`…
    pub what: String,
    /// The size: entries, runtimes, bytes or files.
    pub n: u64,
    pub secs: f64,
    /// Bytes of memory: the view's own heap, the service's growth per
    /// runtime, or the peak of a commit.
    pub bytes: u64,
    /// A note for the table (`per entry`, `per runtime`…).
    pub note: String,
}

/// `fsbench child view N`: builds the view of a stack of about N entries.
pub fn child_view(entries: usize) -> Row {
    let manifests = spfs_benches::sized_stack(entries);
    let before = status_field(std::process::id(), "VmRSS:");
    let t = Instant::now();
    let view = View::build(&manifests).expect("the generated stack builds");
    let secs = t.elapsed().as_secs_f64();
    let rss = status_field(std::process::id(), "VmRSS:").saturating_sub(before);
    let n = view.len() as u64;
    Row {
        what: "view_build".into(),
        n,
        secs,
        bytes: view.heap_bytes() as u64,
        note: format!(
            "{:.0} B/entry in the view, {:.0} B/entry resident growth",
            view.heap_bytes() as f64 / n as f64,
            rss as f64 / n as f64
        ),
    }
}

/// `fsbench child commit N`: N changed files (100 B, 100 per directory)
/// committed as a layer over nothing, in a fresh repository.
pub fn child_commit(files: usize, dir: &Path) -> Row {
    use spfs_fuse_macos::repo::{commit, FsRepository};
    let repo = FsRepository::open_or_create(dir.join("repo")).expect("a repository");
    let upper = dir.join("upper");
    changed_files(&upper, files).expect("the changed files are written");
    let empty = View::build(&[]).expect("an empty view");
    let before = status_field(std::process::id(), "VmHWM:");
    let t = Instant::now();
    commit::commit_scratch(&repo, &upper, &empty).expect("commit");
    let secs = t.elapsed().as_secs_f64();
    let peak = status_field(std::process::id(), "VmHWM:");
    Row {
        what: "commit".into(),
        n: files as u64,
        secs,
        bytes: peak,
        note: format!(
            "{:.1} µs per file; peak resident {:.1} MiB (grew {:.1} MiB)",
            secs * 1e6 / files as f64,
            peak as f64 / 1048576.0,
            peak.saturating_sub(before) as f64 / 1048576.0
        ),
    }
}

/// `fsbench child clean N`: N files committed as a layer nothing tags,
/// made an hour old, then removed by a clean (planned and carried out):
/// the objects (a layer, a manifest, N blobs) and payloads per second.
pub fn child_clean(files: usize, dir: &Path) -> Row {
    use spfs_fuse_macos::repo::{clean, commit, FsRepository};
    let repo = FsRepository::open_or_create(dir.join("repo")).expect("a repository");
    let upper = dir.join("upper");
    changed_files(&upper, files).expect("the changed files are written");
    let empty = View::build(&[]).expect("an empty view");
    commit::commit_scratch(&repo, &upper, &empty).expect("commit");
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for sub in ["objects", "payloads"] {
        age_files(&repo.root().join(sub), hour_ago).expect("the files are aged");
    }
    let t = Instant::now();
    let plan = clean::plan(&repo, clean::GRACE).expect("a clean plan");
    let planned = t.elapsed().as_secs_f64();
    let done = clean::execute(&repo, &plan, clean::GRACE).expect("the clean");
    let secs = t.elapsed().as_secs_f64();
    let removed = done.objects.len() + done.payloads.len();
    assert_eq!(removed, plan.objects.len() + plan.payloads.len());
    assert!(plan.objects.len() > files, "every blob is removed");
    Row {
        what: "clean".into(),
        n: files as u64,
        secs,
        bytes: 0,
        note: format!(
            "{} objects + {} payloads: {:.0} files/s ({:.2} s of it planning)",
            plan.objects.len(),
            plan.payloads.len(),
            removed as f64 / secs,
            planned
        ),
    }
}

/// Sets the modification time of every file below `dir` to `when`.
fn age_files(dir: &Path, when: std::time::SystemTime) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            age_files(&e.path(), when)?;
        } else {
            std::fs::File::options()
                .write(true)
                .open(e.path())
                .or_else(|_| std::fs::File::open(e.path()))?
                .set_modified(when)?;
        }
    }
    Ok(())
}

/// `files` files of 100 bytes, 100 per directory, under `dir`.
pub fn changed_files(dir: &Path, files: usize) -> std::io::Result<()> {
    for f in 0..files {
        let d = dir.join(format!("d{:04}", f / 100));
        if f % 100 == 0 {
            std::fs::create_dir_all(&d)?;
        }
        std::fs::write(d.join(format!("f{:03}", f % 100)), format!("{f:0100}"))?;
    }
    Ok(())
}

/// Upstream's `spfs commit --path` of the same files, in a fresh
/// repository (timed from outside: one process start included).
pub fn upstream_commit(spfs: &Path, files: usize, dir: &Path) -> std::io::Result<Row> {
    let src = dir.join("upstream-src");
    changed_files(&src, files)?;
    let repo = dir.join("upstream-repo");
    let t = Instant::now();
    let out = Command::new(spfs)
        .args(["commit", "--path"])
        .arg(&src)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("SPFS_STORAGE_ROOT", &repo)
        .env("HOME", dir)
        .output()?;
    let secs = t.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "spfs commit --path failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(Row {
        what: "commit (upstream spfs)".into(),
        n: files as u64,
        secs,
        bytes: 0,
        note: format!("{:.1} µs per file", secs * 1e6 / files as f64),
    })
}

/// Runs `fsbench child ARGS` and reads its row.
pub fn in_child(exe: &Path, args: &[String]) -> std::io::Result<Row> {
    let out = Command::new(exe)
        .arg("child")
        .args(args)
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "fsbench child {args:?} failed: {}",
            out.status
        )));
    }
    serde_json::from_slice(&out.stdout).map_err(std::io::Error::other)
}

/// The growth rows as a markdown table.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from("| what | n | time | memory | note |\n|---|---:|---:|---:|---|\n");
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {:.3} s | {:.1} MiB | {} |\n",
            r.what,
            r.n,
            r.secs,
            r.bytes as f64 / 1048576.0,
            r.note
        ));
    }
    out
}
