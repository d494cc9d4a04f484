//! Fixture helpers shared by the integration tests of `spfs-repo` and of
//! the service (which includes this file with `#[path]`).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use spfs_repo::tags::TagAuthor;
use spfs_repo::{FsRepository, RepositorySet};

/// The repositories upstream spfs wrote, and the views it showed
/// (`service/repo/tests/fixtures/spfs-upstream`, or `$SPFS_FIXTURES`).
pub fn fixtures() -> PathBuf {
    if let Some(p) = std::env::var_os("SPFS_FIXTURES") {
        return PathBuf::from(p);
    }
    // Found from whichever workspace crate runs the test.
    let rel = Path::new("service/repo/tests/fixtures/spfs-upstream");
    let found = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|dir| dir.join(rel))
        .find(|p| p.join("README.md").exists());
    let p = found.unwrap_or_else(|| {
        panic!(
            "upstream fixtures not found at {} (set SPFS_FIXTURES)",
            rel.display()
        )
    });
    p.canonicalize().unwrap()
}

/// The two fixture repositories, by directory name.
pub const REPOS: [&str; 2] = ["repo", "repo-legacy"];

/// A read-only set over one fixture repository.
pub fn fixture_set(name: &str) -> RepositorySet {
    let primary = FsRepository::open(fixtures().join(name)).unwrap();
    RepositorySet::new(primary, vec![], TagAuthor("test@host".into()))
}

/// Copies a directory tree (files, dirs, symlinks) to `dest`.
pub fn copy_tree(src: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dest.join(e.file_name());
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            copy_tree(&e.path(), &to);
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(e.path()).unwrap(), &to).unwrap();
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
}

/// A writable copy of a fixture repository in a temp dir.
pub fn fixture_copy(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join(name);
    copy_tree(&fixtures().join(name), &root);
    (dir, root)
}

/// Lower-case hex of sha256.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `expected/*.tsv` files holding merged views: (ref, path).
pub fn expected_views() -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(fixtures().join("expected")).unwrap() {
        let path = e.unwrap().path();
        let stem = path.file_stem().unwrap().to_str().unwrap().to_owned();
        if stem.starts_with("layer-digests-") {
            continue;
        }
        out.push((stem.replace("__", "/").replace("_plus_", "+"), path));
    }
    out.sort();
    assert!(
        out.len() >= 8,
        "expected at least 8 recorded views, found {}",
        out.len()
    );
    out
}

/// `expected/layer-digests-<repo>.tsv`: (tag, digest).
pub fn expected_layer_digests(repo: &str) -> Vec<(String, String)> {
    let text =
        std::fs::read_to_string(fixtures().join(format!("expected/layer-digests-{repo}.tsv")))
            .unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (a, b) = l.split_once('\t').unwrap();
            (a.to_owned(), b.to_owned())
        })
        .collect()
}

/// Every file under `root` with its contents.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}
