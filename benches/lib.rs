//! Shared generators for the benchmarks.

use spfs_fuse_macos::repo::object::{Entry, EntryKind, Manifest, Tree};
use spfs_fuse_macos::repo::Digest;

fn file(name: String, seed: u64) -> Entry {
    let data = seed.to_le_bytes();
    Entry {
        name,
        kind: EntryKind::Blob,
        object: Digest::of(&data),
        mode: 0o100644,
        size: 100 + seed % 5000,
    }
}

fn dir_entry(name: String, tree: &Tree) -> Entry {
    Entry {
        name,
        kind: EntryKind::Tree,
        object: tree.digest(),
        mode: 0o040755,
        size: 0,
    }
}

/// One layer: `dirs` directories `pkgNNN/lib/` of `files` files each, plus a
/// `pkgNNN/bin/tool`. Returns the manifest.
fn layer(first_dir: usize, dirs: usize, files: usize, seed: u64, masks: &[String]) -> Manifest {
    let mut trees = vec![Tree::default()];
    let mut root_entries = Vec::new();
    for d in first_dir..first_dir + dirs {
        let lib = Tree {
            entries: (0..files)
                .map(|f| {
                    file(
                        format!("module_{f:04}.py"),
                        seed ^ ((d * 10_000 + f) as u64),
                    )
                })
                .collect(),
        };
        let bin = Tree {
            entries: vec![file("tool".into(), seed ^ d as u64)],
        };
        let pkg = Tree {
            entries: vec![dir_entry("lib".into(), &lib), dir_entry("bin".into(), &bin)],
        };
        root_entries.push(dir_entry(format!("pkg{d:03}"), &pkg));
        trees.push(pkg);
        trees.push(lib);
        trees.push(bin);
    }
    for m in masks {
        root_entries.push(Entry {
            name: m.clone(),
            kind: EntryKind::Mask,
            object: Digest::NULL,
            mode: 0o020000,
            size: 0,
        });
    }
    trees[0] = Tree {
        entries: root_entries,
    };
    Manifest { trees }
}

/// A three-layer stack whose merged view holds about 25,000 entries: a base
/// of 200 packages, an update that rewrites 40 of them and removes 5, and a
/// top layer that adds 45 more.
pub fn generated_stack() -> Vec<Manifest> {
    let base = layer(0, 200, 100, 1, &[]);
    let masks: Vec<String> = (195..200).map(|d| format!("pkg{d:03}")).collect();
    let update = layer(100, 40, 100, 2, &masks);
    let top = layer(200, 45, 100, 3, &[]);
    vec![base, update, top]
}

/// A two-layer stack whose merged view holds about `entries` entries
/// (packages of 100 files; the top layer rewrites a fifth of them).
pub fn sized_stack(entries: usize) -> Vec<Manifest> {
    // Each package: pkg, lib, bin, tool and 100 modules.
    let packages = (entries / 104).max(1);
    let base = layer(0, packages, 100, 1, &[]);
    let update = layer(0, packages / 5, 100, 2, &[]);
    vec![base, update]
}

/// Median wall time of `f` over `n` runs.
pub fn median(n: usize, mut f: impl FnMut()) -> std::time::Duration {
    let mut t: Vec<std::time::Duration> = (0..n)
        .map(|_| {
            let s = std::time::Instant::now();
            f();
            s.elapsed()
        })
        .collect();
    t.sort();
    t[n / 2]
}

/// True when run by `cargo bench` (not `cargo test --benches`, which runs
/// each bench once as a smoke test).
pub fn measuring() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Mounts the service's filesystem at `mnt` with one read-only runtime
/// whose root is this process, showing the stack of `layers` from `set`.
/// Returns the mount guard (unmounts on drop) and the runtime.
pub fn mount_runtime(
    set: std::sync::Arc<spfs_fuse_macos::repo::RepositorySet>,
    layers: Vec<Digest>,
    mnt: &std::path::Path,
) -> (
    spfs_fuse_macos::mount::Mounted,
    std::sync::Arc<spfs_fuse_macos::runtimes::Runtime>,
    std::sync::Arc<spfs_fuse_macos::runtimes::Runtimes>,
) {
    mount_runtime_with(set, layers, mnt, None)
}

/// Like [`mount_runtime`], editable when given a scratch directory.
pub fn mount_runtime_with(
    set: std::sync::Arc<spfs_fuse_macos::repo::RepositorySet>,
    layers: Vec<Digest>,
    mnt: &std::path::Path,
    scratch: Option<std::sync::Arc<spfs_fuse_macos::scratch::Scratch>>,
) -> (
    spfs_fuse_macos::mount::Mounted,
    std::sync::Arc<spfs_fuse_macos::runtimes::Runtime>,
    std::sync::Arc<spfs_fuse_macos::runtimes::Runtimes>,
) {
    use spfs_fuse_macos::runtimes::{NewRuntime, Runtimes};
    let spec = layers
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("+");
    let stack = set
        .resolve_stack(&spfs_fuse_macos::repo::EnvSpec::parse(&spec).unwrap())
        .unwrap();
    let view =
        spfs_fuse_macos::repo::View::build(&set.read_stack_manifests(&stack).unwrap()).unwrap();
    let runtimes = std::sync::Arc::new(Runtimes::including_own_process());
    let mounted = spfs_fuse_macos::mount::Mounted::mount(
        spfs_fuse_macos::fs::SpfsFs::new(runtimes.clone(), (0, 0)),
        mnt,
        2,
        &[],
    )
    .unwrap();
    let (uid, gid) = spfs_fuse_macos::sys::user::effective_ids();
    let rt = runtimes
        .start(NewRuntime {
            name: "bench".into(),
            uid,
            gid,
            root_pid: std::process::id(),
            spec,
            stack: stack.into_iter().map(|s| s.digest).collect(),
            view: std::sync::Arc::new(view),
            repos: set,
            scratch,
            token: spfs_fuse_macos::runtimes::new_token(),
            created: None,
            spec_layers: None,
            record_dir: None,
            durable: false,
            repo_record: None,
        })
        .unwrap();
    (mounted, rt, runtimes)
}

#[cfg(test)]
mod tests {
    use spfs_fuse_macos::repo::View;

    #[test]
    fn sized_stacks_are_the_size_asked() {
        let n = View::build(&super::sized_stack(10_000)).unwrap().len();
        assert!((9_000..=11_000).contains(&n), "{n} entries");
    }

    #[test]
    fn generated_stack_is_about_25k_entries_and_small() {
        let view = View::build(&super::generated_stack()).unwrap();
        let n = view.len();
        assert!((24_000..=26_000).contains(&n), "{n} entries");
        let per = view.heap_bytes() as f64 / n as f64;
        assert!(per < 300.0, "{per:.1} bytes per entry");
    }
}
