//! The workloads, as the worker process runs them inside a peer's view.
//! Each returns what it saw as a digest (a wrong answer is never a fast
//! one: the runner compares it with the plain directory's), and is timed
//! alone.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::dataset::{self, Size, Tree};

/// Reading workloads (every peer).
pub const READ: [&str; 5] = [
    "walk",
    "read_small",
    "seq_read",
    "rand_read",
    "stat_missing",
];
/// Writing workloads (writable views), run in this order on one fresh view.
pub const WRITE: [&str; 4] = ["create", "copyup_append", "rename", "unlink"];

/// One workload's time and what it saw.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Outcome {
    pub workload: String,
    pub secs: f64,
    pub result: String,
}

/// What the worker needs to know of the data set.
pub struct Plan {
    pub merged: Tree,
    pub top: Tree,
    pub size: Size,
}

fn hex(h: Sha256) -> String {
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Every entry below `root`, each `lstat`ed by absolute path.
pub fn walk(root: &Path) -> std::io::Result<String> {
    let mut lines = Vec::new();
    let mut dirs = vec![root.to_owned()];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir)? {
            let path = e?.path();
            let m = std::fs::symlink_metadata(&path)?;
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .display()
                .to_string();
            let kind = if m.is_dir() { "d" } else { "f" };
            let size = if m.is_dir() { 0 } else { m.len() };
            lines.push(format!("{rel} {kind} {size}"));
            if m.is_dir() {
                dirs.push(path);
            }
        }
    }
    lines.sort();
    let mut h = Sha256::new();
    for l in lines {
        h.update(l.as_bytes());
        h.update(b"\n");
    }
    Ok(hex(h))
}

fn read_files(root: &Path, files: &[String]) -> std::io::Result<String> {
    let mut h = Sha256::new();
    let mut buf = Vec::new();
    for f in files {
        buf.clear();
        File::open(root.join(f))?.read_to_end(&mut buf)?;
        h.update(&buf);
    }
    Ok(hex(h))
}

fn seq_read(root: &Path, files: &[String]) -> std::io::Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    for f in files {
        let mut file = File::open(root.join(f))?;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    }
    Ok(hex(h))
}

/// 2,000 reads of 4 KiB at scattered offsets of the first large file.
fn rand_read(root: &Path, files: &[String], len: usize) -> std::io::Result<String> {
    let mut h = Sha256::new();
    let file = File::open(root.join(&files[0]))?;
    let mut buf = vec![0u8; 4096];
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for _ in 0..2000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let off = x % (len.saturating_sub(4096).max(1) as u64);
        let n = file.read_at(&mut buf, off)?;
        h.update(&buf[..n]);
    }
    Ok(hex(h))
}

fn stat_missing(root: &Path, names: &[String]) -> std::io::Result<String> {
    let missing = names
        .iter()
        .filter(|n| std::fs::symlink_metadata(root.join(n)).is_err())
        .count();
    Ok(format!("{missing} of {} missing", names.len()))
}

/// 1,000 new files of 4 KiB in 10 new directories.
fn create(root: &Path) -> std::io::Result<String> {
    let data = vec![7u8; 4096];
    for d in 0..10 {
        let dir = root.join(format!("created/d{d}"));
        std::fs::create_dir_all(&dir)?;
        for f in 0..100 {
            File::create(dir.join(format!("f{f:03}")))?.write_all(&data)?;
        }
    }
    walk(&root.join("created"))
}

/// Appends a line to lower files (each copied up first), reads them back.
fn copyup_append(root: &Path, files: &[String]) -> std::io::Result<String> {
    for f in files {
        std::fs::OpenOptions::new()
            .append(true)
            .open(root.join(f))?
            .write_all(b"appended\n")?;
    }
    read_files(root, files)
}

fn rename(root: &Path, files: &[String]) -> std::io::Result<String> {
    for f in files {
        std::fs::rename(root.join(f), root.join(format!("{f}.renamed")))?;
    }
    let renamed: Vec<String> = files.iter().map(|f| format!("{f}.renamed")).collect();
    read_files(root, &renamed)
}

fn unlink(root: &Path, files: &[String]) -> std::io::Result<String> {
    for f in files {
        std::fs::remove_file(root.join(f))?;
    }
    stat_missing(root, files)
}

/// Drops the kernel's page, dentry and inode caches (root only).
pub fn drop_caches() -> std::io::Result<()> {
    std::process::Command::new("sync").status()?;
    std::fs::write("/proc/sys/vm/drop_caches", "3")
}

/// Runs `names` in order on `root`; `cold`: caches dropped before each.
/// A warm run reads each once untimed first.
pub fn run(plan: &Plan, root: &Path, names: &[&str], cold: bool) -> std::io::Result<Vec<Outcome>> {
    let small = dataset::small_files(&plan.merged);
    let large = dataset::large_files(&plan.merged);
    let missing = dataset::missing(&plan.top, plan.size);
    let change = dataset::to_change(&plan.merged);
    // Three disjoint groups for the writing workloads.
    let group = |k: usize| -> Vec<String> { change.iter().skip(k).step_by(3).cloned().collect() };
    let (append, renamed, unlinked) = (group(0), group(1), group(2));
    let one = |name: &str| -> std::io::Result<String> {
        match name {
            "walk" => walk(root),
            "read_small" => read_files(root, &small),
            "seq_read" => seq_read(root, &large),
            "rand_read" => rand_read(root, &large, plan.size.large_bytes),
            "stat_missing" => stat_missing(root, &missing),
            "create" => create(root),
            "copyup_append" => copyup_append(root, &append),
            "rename" => rename(root, &renamed),
            "unlink" => unlink(root, &unlinked),
            other => Err(std::io::Error::other(format!("no workload '{other}'"))),
        }
    };
    let mut out = Vec::new();
    for name in names {
        let reads = READ.contains(name);
        if cold {
            drop_caches()?;
        } else if reads {
            one(name)?;
        }
        let t = Instant::now();
        let result = one(name)?;
        let secs = t.elapsed().as_secs_f64();
        out.push(Outcome {
            workload: (*name).to_owned(),
            secs,
            result,
        });
    }
    Ok(out)
}
