//! The data set every peer serves: a stack of two layers written as plain
//! directories (overlayfs's lower-directory layout, whiteouts as character
//! devices 0/0), and the merged tree they stand for, written directly from
//! the same description — the ground truth no peer computed.
//!
//! ```text
//! base/  pkgNN/{bin,lib/a/b/c,share/doc}/…  many small files in deep dirs
//!        big/blob-0 … big/blob-K             a few large files
//! top/   changes some base files, adds others, masks files and one
//!        directory per package group
//! ```

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// How big the data set is.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub struct Size {
    /// Packages in the base layer.
    pub packages: usize,
    /// Small files per package.
    pub files: usize,
    /// Large files, and the bytes of each.
    pub large: usize,
    pub large_bytes: usize,
}

impl Size {
    /// The default: ~4,000 small files in ~500 directories, 2 × 64 MiB.
    pub const DEFAULT: Size = Size {
        packages: 40,
        files: 100,
        large: 2,
        large_bytes: 64 << 20,
    };
    /// For a quick look: a tenth of the files, 2 × 8 MiB.
    pub const QUICK: Size = Size {
        packages: 10,
        files: 40,
        large: 2,
        large_bytes: 8 << 20,
    };
}

/// One entry of a layer or of the merged tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Node {
    /// A directory.
    Dir,
    /// A file: its content is [`content`]`(seed, len)`.
    File { seed: usize, len: usize },
    /// Deleted below (a whiteout; only in the top layer).
    Mask,
}

/// A layer or tree: every path (relative, `/`-separated) and its node;
/// parents are listed explicitly.
pub type Tree = BTreeMap<String, Node>;

/// The bytes of a file of the data set.
pub fn content(seed: usize, len: usize) -> Vec<u8> {
    let mut x = (seed as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn add_dirs(t: &mut Tree, path: &str) {
    let mut at = String::new();
    for part in path.split('/') {
        if !at.is_empty() {
            at.push('/');
        }
        at.push_str(part);
        t.entry(at.clone()).or_insert(Node::Dir);
    }
}

fn small_path(p: usize, f: usize) -> String {
    match f % 4 {
        0 => format!("pkg{p:02}/bin/tool{f:03}"),
        1 => format!("pkg{p:02}/lib/a/b/c/mod{f:03}.py"),
        2 => format!("pkg{p:02}/share/doc/page{f:03}.txt"),
        _ => format!("pkg{p:02}/lib/a/data{f:03}.json"),
    }
}

/// The two layers, bottom first.
pub fn layers(size: Size, masks: bool) -> (Tree, Tree) {
    let mut base = Tree::new();
    for p in 0..size.packages {
        for f in 0..size.files {
            let path = small_path(p, f);
            add_dirs(&mut base, path.rsplit_once('/').unwrap().0);
            base.insert(
                path,
                Node::File {
                    seed: p * 1000 + f,
                    len: 200 + (p * 31 + f * 97) % 3800,
                },
            );
        }
    }
    for k in 0..size.large {
        add_dirs(&mut base, "big");
        base.insert(
            format!("big/blob-{k}"),
            Node::File {
                seed: 900_000 + k,
                len: size.large_bytes,
            },
        );
    }
    let mut top = Tree::new();
    for p in 0..size.packages {
        for f in 0..size.files {
            let path = small_path(p, f);
            let dir = path.rsplit_once('/').unwrap().0.to_owned();
            match f % 10 {
                // Changed.
                3 => {
                    add_dirs(&mut top, &dir);
                    top.insert(
                        path,
                        Node::File {
                            seed: 500_000 + p * 1000 + f,
                            len: 300,
                        },
                    );
                }
                // Deleted.
                7 if masks => {
                    add_dirs(&mut top, &dir);
                    top.insert(path, Node::Mask);
                }
                _ => {}
            }
        }
        // Added.
        add_dirs(&mut top, &format!("pkg{p:02}/extra"));
        for f in 0..size.files / 10 {
            top.insert(
                format!("pkg{p:02}/extra/new{f:03}"),
                Node::File {
                    seed: 700_000 + p * 1000 + f,
                    len: 1000,
                },
            );
        }
        // A whole directory deleted in every fourth package.
        if masks && p % 4 == 0 {
            add_dirs(&mut top, &format!("pkg{p:02}"));
            top.insert(format!("pkg{p:02}/share"), Node::Mask);
        }
    }
    (base, top)
}

/// `top` over `base`, as every peer must show it.
pub fn merge(base: &Tree, top: &Tree) -> Tree {
    let mut out = base.clone();
    for (path, node) in top {
        match node {
            Node::Mask => {
                let below = format!("{path}/");
                out.retain(|p, _| p != path && !p.starts_with(&below));
            }
            Node::Dir => {
                out.entry(path.clone()).or_insert(Node::Dir);
            }
            Node::File { .. } => {
                out.insert(path.clone(), *node);
            }
        }
    }
    out
}

/// Writes `tree` under `root` (masks as character devices 0/0: needs root).
pub fn write(tree: &Tree, root: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(root)?;
    for (path, node) in tree {
        let p = root.join(path);
        match node {
            Node::Dir => std::fs::create_dir_all(&p)?,
            Node::File { seed, len } => {
                std::fs::write(&p, content(*seed, *len))?;
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644))?;
            }
            Node::Mask => {
                let st = std::process::Command::new("mknod")
                    .arg(&p)
                    .args(["c", "0", "0"])
                    .status()?;
                if !st.success() {
                    return Err(std::io::Error::other(format!("mknod {}", p.display())));
                }
            }
        }
    }
    Ok(())
}

/// The small files of the merged tree, sorted (what `read_small` reads).
pub fn small_files(tree: &Tree) -> Vec<String> {
    tree.iter()
        .filter(|(p, n)| matches!(n, Node::File { .. }) && !p.starts_with("big/"))
        .map(|(p, _)| p.clone())
        .collect()
}

/// The large files of the merged tree.
pub fn large_files(tree: &Tree) -> Vec<String> {
    tree.keys()
        .filter(|p| p.starts_with("big/blob-"))
        .cloned()
        .collect()
}

/// Lower files the writable workloads change: every 20th small file.
pub fn to_change(tree: &Tree) -> Vec<String> {
    small_files(tree).into_iter().step_by(20).collect()
}

/// Names that exist in no layer, and the names the top layer deletes:
/// every one must be missing.
pub fn missing(top: &Tree, size: Size) -> Vec<String> {
    let mut out: Vec<String> = top
        .iter()
        .filter(|(_, n)| **n == Node::Mask)
        .map(|(p, _)| p.clone())
        .collect();
    for p in 0..size.packages {
        for f in 0..size.files {
            out.push(format!("pkg{p:02}/lib/a/b/c/absent{f:03}.py"));
        }
        out.push(format!("absent-top-{p}"));
    }
    out
}
