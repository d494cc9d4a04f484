use std::sync::Arc;
use std::time::SystemTime;

use fuser::{Errno, FileType};

use super::*;
use crate::repo::tags::TagAuthor;
use crate::repo::{commit, EnvSpec, FsRepository, RepositorySet};

struct Fixture {
    _tmp: tempfile::TempDir,
    ov: Overlay,
}

/// base: a.txt, dir/{b.txt, sub/c.txt}, link -> a.txt
fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("dir/sub")).unwrap();
    std::fs::write(src.join("a.txt"), b"lower a").unwrap();
    std::fs::write(src.join("dir/b.txt"), b"lower b").unwrap();
    std::fs::write(src.join("dir/sub/c.txt"), b"lower c").unwrap();
    std::os::unix::fs::symlink("a.txt", src.join("link")).unwrap();
    let repo = FsRepository::open_or_create(tmp.path().join("repo")).unwrap();
    let layer = commit::commit_dir(&repo, &src).unwrap().layer;
    let set = Arc::new(RepositorySet::new(repo, vec![], TagAuthor("t@h".into())));
    let stack = set
        .resolve_stack(&EnvSpec::parse(&layer.to_string()).unwrap())
        .unwrap();
    let view = View::build(&set.read_stack_manifests(&stack).unwrap()).unwrap();
    let scratch = Arc::new(Scratch::open(&tmp.path().join("scratch")).unwrap());
    let ov = Overlay::new(
        Arc::new(view),
        set,
        scratch,
        7,
        crate::sys::user::effective_ids(),
        SystemTime::now(),
    );
    Fixture { _tmp: tmp, ov }
}

const WHO: Caller = Caller {
    uid: 0,
    gid: 0,
    umask: 0o022,
};

fn names(ov: &Overlay, dir: Index) -> Vec<String> {
    ov.listing(dir)
        .unwrap()
        .into_iter()
        .map(|(_, _, n)| String::from_utf8(n.into_vec()).unwrap())
        .collect()
}

fn read(ov: &Overlay, idx: Index) -> Vec<u8> {
    use std::io::Read;
    let mut v = Vec::new();
    ov.open(idx, libc::O_RDONLY)
        .unwrap()
        .read_to_end(&mut v)
        .unwrap();
    v
}

#[test]
fn lower_entries_show_through() {
    let f = fixture();
    assert_eq!(names(&f.ov, 0), ["a.txt", "dir", "link"]);
    let (dir, attr) = f.ov.lookup(0, b"dir").unwrap();
    assert_eq!(attr.kind, FileType::Directory);
    let (b, _) = f.ov.lookup(dir, b"b.txt").unwrap();
    assert_eq!(read(&f.ov, b), b"lower b");
    let (l, _) = f.ov.lookup(0, b"link").unwrap();
    assert_eq!(f.ov.readlink(l).unwrap(), b"a.txt");
    assert_eq!(f.ov.lookup(0, b"nope").unwrap_err(), Errno::ENOENT);
    // nothing was copied up by reading
    assert_eq!(
        std::fs::read_dir(f.ov.scratch().upper_path())
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn writing_a_lower_file_copies_it_up_once() {
    use std::os::unix::fs::FileExt;
    let f = fixture();
    let (dir, _) = f.ov.lookup(0, b"dir").unwrap();
    let (b, before) = f.ov.lookup(dir, b"b.txt").unwrap();
    let w = f.ov.open(b, libc::O_WRONLY | libc::O_APPEND).unwrap();
    // same node, same inode
    let (b2, _) = f.ov.lookup(dir, b"b.txt").unwrap();
    assert_eq!(b, b2);
    let upper = f.ov.scratch().upper_path().join("dir/b.txt");
    assert_eq!(std::fs::read(&upper).unwrap(), b"lower b");
    let after = f.ov.getattr(b).unwrap();
    assert_eq!(after.perm, before.perm);
    assert_eq!(after.mtime, before.mtime);
    assert_eq!(after.uid, before.uid);
    w.write_all_at(b"+", 7).unwrap();
    assert_eq!(read(&f.ov, b), b"lower b+");
    // truncating open copies no data
    let (a, _) = f.ov.lookup(0, b"a.txt").unwrap();
    f.ov.open(a, libc::O_WRONLY | libc::O_TRUNC).unwrap();
    assert_eq!(f.ov.getattr(a).unwrap().size, 0);
    assert_eq!(
        std::fs::read_dir(f.ov.scratch().root().join("work"))
            .unwrap()
            .count(),
        0,
        "nothing left in work"
    );
}

#[test]
fn delete_and_recreate() {
    let f = fixture();
    let (dir, _) = f.ov.lookup(0, b"dir").unwrap();
    f.ov.unlink(dir, b"b.txt").unwrap();
    assert_eq!(f.ov.lookup(dir, b"b.txt").unwrap_err(), Errno::ENOENT);
    assert!(f.ov.scratch().upper_path().join("dir/.wh.b.txt").exists());
    assert_eq!(names(&f.ov, dir), ["sub"]);
    assert_eq!(f.ov.rmdir(0, b"dir").unwrap_err(), Errno::ENOTEMPTY);
    let (sub, _) = f.ov.lookup(dir, b"sub").unwrap();
    f.ov.unlink(sub, b"c.txt").unwrap();
    f.ov.rmdir(dir, b"sub").unwrap();
    f.ov.rmdir(0, b"dir").unwrap();
    assert_eq!(names(&f.ov, 0), ["a.txt", "link"]);
    // re-created: opaque, the old content stays gone
    let d2 = f.ov.mkdir(0, b"dir", 0o755, WHO).unwrap();
    assert_ne!(d2.idx, dir);
    assert!(names(&f.ov, d2.idx).is_empty());
    assert!(f
        .ov
        .scratch()
        .upper_path()
        .join("dir/.wh..wh..opq")
        .exists());
    assert!(!f.ov.scratch().upper_path().join(".wh.dir").exists());
    assert_eq!(
        f.ov.mkdir(0, b".wh.x", 0o755, WHO).unwrap_err(),
        Errno::EINVAL
    );
}

#[test]
fn rename_files_and_directories() {
    let f = fixture();
    let (dir, _) = f.ov.lookup(0, b"dir").unwrap();
    let (a, _) = f.ov.lookup(0, b"a.txt").unwrap();
    f.ov.rename(0, b"a.txt", dir, b"moved.txt", 0).unwrap();
    assert_eq!(f.ov.lookup(0, b"a.txt").unwrap_err(), Errno::ENOENT);
    let (m, _) = f.ov.lookup(dir, b"moved.txt").unwrap();
    assert_eq!(m, a, "the node moves with the file");
    assert_eq!(read(&f.ov, m), b"lower a");
    // a directory with lower content: EXDEV
    assert_eq!(
        f.ov.rename(0, b"dir", 0, b"dir2", 0).unwrap_err(),
        Errno::EXDEV
    );
    // an upper-only directory renames
    f.ov.mkdir(0, b"new", 0o755, WHO).unwrap();
    f.ov.rename(0, b"new", 0, b"newer", 0).unwrap();
    assert_eq!(names(&f.ov, 0), ["dir", "link", "newer"]);
    assert_eq!(
        f.ov.rename(0, b"link", 0, b"dir", 0).unwrap_err(),
        Errno::EISDIR
    );
    assert_eq!(
        f.ov.rename(0, b"link", 0, b"newer", crate::sys::dir::RENAME_NOREPLACE)
            .unwrap_err(),
        Errno::EEXIST
    );
}

#[test]
fn concurrent_opens_copy_once_and_earlier_readers_keep_their_view() {
    use std::io::Read;
    use std::os::unix::fs::{FileExt, MetadataExt};
    let f = fixture();
    let (dir, _) = f.ov.lookup(0, b"dir").unwrap();
    let (b, _) = f.ov.lookup(dir, b"b.txt").unwrap();
    let mut reader = f.ov.open(b, libc::O_RDONLY).unwrap();
    let barrier = std::sync::Barrier::new(8);
    let inodes: Vec<u64> = std::thread::scope(|s| {
        let opens: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    let w = f.ov.open(b, libc::O_RDWR).unwrap();
                    w.metadata().unwrap().ino()
                })
            })
            .collect();
        opens.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // one copy: every writer got the same upper file
    assert!(inodes.iter().all(|&i| i == inodes[0]), "{inodes:?}");
    let w = f.ov.open(b, libc::O_WRONLY).unwrap();
    w.write_all_at(b"UPPER", 0).unwrap();
    assert_eq!(read(&f.ov, b), b"UPPER b");
    // the reader that opened the lower file before still reads it whole
    let mut old = Vec::new();
    reader.read_to_end(&mut old).unwrap();
    assert_eq!(old, b"lower b");
}

#[test]
fn chmod_copies_up_metadata_and_keeps_content() {
    let f = fixture();
    let (dir, _) = f.ov.lookup(0, b"dir").unwrap();
    let (b, _) = f.ov.lookup(dir, b"b.txt").unwrap();
    let attr =
        f.ov.setattr(
            b,
            SetAttr {
                mode: Some(0o600),
                ..Default::default()
            },
            None,
        )
        .unwrap();
    assert_eq!(attr.perm, 0o600);
    assert_eq!(read(&f.ov, b), b"lower b");
    // the parent came up with it, still merged with the lower dir
    assert_eq!(names(&f.ov, dir), ["b.txt", "sub"]);
}

/// The entries of the upper directory (names, sorted).
fn upper_names(ov: &Overlay) -> Vec<String> {
    let mut n: Vec<String> = std::fs::read_dir(ov.scratch().upper_path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    n.sort();
    n
}

#[test]
fn renaming_one_name_of_a_hard_linked_file_moves_that_name_only() {
    let f = fixture();
    let (a, _) = f.ov.lookup(0, b"a.txt").unwrap();
    f.ov.link(a, 0, b"no_a").unwrap();
    // unionmount-testsuite's rename-hard-link: the link is renamed.
    f.ov.rename(0, b"no_a", 0, b"no_a-moved", 0).unwrap();
    assert_eq!(names(&f.ov, 0), ["a.txt", "dir", "link", "no_a-moved"]);
    assert_eq!(
        upper_names(&f.ov),
        ["a.txt", "no_a-moved"],
        "the wrong name moved"
    );
    let (a2, _) = f.ov.lookup(0, b"a.txt").unwrap();
    let (m, _) = f.ov.lookup(0, b"no_a-moved").unwrap();
    assert_eq!((a2, m), (a, a), "one file, one inode, two names");
    assert_eq!(read(&f.ov, a2), b"lower a");
    // rename-mass-5: names of the file rotate through a gap.
    f.ov.link(a, 0, b"ring1").unwrap();
    f.ov.rename(0, b"ring1", 0, b"ring2", 0).unwrap();
    f.ov.rename(0, b"a.txt", 0, b"ring1", 0).unwrap();
    assert_eq!(
        names(&f.ov, 0),
        ["dir", "link", "no_a-moved", "ring1", "ring2"]
    );
    assert_eq!(
        upper_names(&f.ov),
        [".wh.a.txt", "no_a-moved", "ring1", "ring2"]
    );
    // Renaming a name over another name of the same file does nothing.
    f.ov.rename(0, b"ring1", 0, b"ring2", 0).unwrap();
    assert_eq!(
        names(&f.ov, 0),
        ["dir", "link", "no_a-moved", "ring1", "ring2"]
    );
}

#[test]
fn a_layers_wh_names_are_content_read_and_deleted_never_whiteouts() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join(".wh.dir")).unwrap();
    std::fs::write(src.join(".wh.keep"), b"kept").unwrap();
    std::fs::write(src.join("keep"), b"plain").unwrap();
    let repo = FsRepository::open_or_create(tmp.path().join("repo")).unwrap();
    let layer = commit::commit_dir(&repo, &src).unwrap().layer;
    let set = Arc::new(RepositorySet::new(repo, vec![], TagAuthor("t@h".into())));
    let stack = set
        .resolve_stack(&EnvSpec::parse(&layer.to_string()).unwrap())
        .unwrap();
    let view = View::build(&set.read_stack_manifests(&stack).unwrap()).unwrap();
    let scratch = Arc::new(Scratch::open(&tmp.path().join("scratch")).unwrap());
    let ov = Overlay::new(
        Arc::new(view),
        set,
        scratch,
        7,
        crate::sys::user::effective_ids(),
        SystemTime::now(),
    );
    assert_eq!(names(&ov, 0), [".wh.dir", ".wh.keep", "keep"]);
    let (wh, _) = ov.lookup(0, b".wh.keep").unwrap();
    assert_eq!(read(&ov, wh), b"kept");
    // Changing it in place or moving it cannot be represented: refused
    // (mv copies and deletes on EXDEV); nothing is copied up.
    assert_eq!(ov.open(wh, libc::O_WRONLY).unwrap_err(), Errno::EPERM);
    assert_eq!(
        ov.rename(0, b".wh.keep", 0, b"moved", 0).unwrap_err(),
        Errno::EXDEV
    );
    let (d, _) = ov.lookup(0, b".wh.dir").unwrap();
    assert_eq!(
        ov.create(d, b"new", 0o644, 0, WHO).unwrap_err(),
        Errno::EPERM
    );
    assert!(upper_names(&ov).is_empty(), "{:?}", upper_names(&ov));
    assert_eq!(
        names(&ov, 0),
        [".wh.dir", ".wh.keep", "keep"],
        "keep is whited out"
    );
    // Deleted as any file: the other name stays.
    ov.unlink(0, b".wh.keep").unwrap();
    assert_eq!(ov.lookup(0, b".wh.keep").unwrap_err(), Errno::ENOENT);
    assert_eq!(names(&ov, 0), [".wh.dir", "keep"]);
    let (k, _) = ov.lookup(0, b"keep").unwrap();
    assert_eq!(read(&ov, k), b"plain");
}

#[test]
fn a_commit_finds_each_nodes_layer_entry_also_when_a_child_has_a_lower_index() {
    let f = fixture();
    let nodes = &f.ov.nodes;
    let x = nodes.intern(0, b"x", None).unwrap();
    // "dir" as a new upper directory shows it: no lower entry yet.
    let dir = nodes.intern(0, b"dir", None).unwrap();
    nodes.detach(0, b"x");
    // The freed index goes to dir's child: a child before its parent.
    let sub = nodes.intern(dir, b"sub", None).unwrap();
    assert_eq!(sub, x);
    assert!(sub < dir);
    // The layers have dir/sub: after the rebase both nodes show them.
    nodes.rebase(&f.ov.layers.view);
    let lower_dir = f.ov.layers.view.lookup(NodeId::ROOT, b"dir").unwrap();
    assert_eq!(nodes.lower(dir), Some(lower_dir));
    assert_eq!(nodes.lower(sub), f.ov.layers.view.lookup(lower_dir, b"sub"));
    assert!(nodes.lower(sub).is_some());
}

/// The fixture's layers as a read-only runtime showed them, taken over by
/// an overlay (`spfs edit`).
fn adopted() -> Fixture {
    let f = fixture();
    let ov = Overlay::adopting(
        f.ov.layers.view.clone(),
        f.ov.repos().clone(),
        f.ov.scratch.clone(),
        7,
        crate::sys::user::effective_ids(),
        SystemTime::now(),
    );
    Fixture { _tmp: f._tmp, ov }
}

#[test]
fn an_adopted_view_keeps_every_inode_the_read_only_runtime_gave_out() {
    let f = adopted();
    let view = f.ov.layers.view.clone();
    let id = |p: &str| view.resolve_path(p).unwrap().0;
    // Asked for by inode alone (a shell's working directory, an open
    // file), never looked up in the overlay: the same file.
    let c = id("dir/sub/c.txt");
    assert!(f.ov.contains(c));
    assert_eq!(read(&f.ov, c), b"lower c");
    assert_eq!(
        f.ov.getattr(id("dir/sub")).unwrap().kind,
        FileType::Directory
    );
    // Found by name: the view's numbers, in lookups and listings.
    let (dir, _) = f.ov.lookup(0, b"dir").unwrap();
    assert_eq!(dir, id("dir"));
    let listed: Vec<Index> =
        f.ov.listing(dir)
            .unwrap()
            .into_iter()
            .map(|(i, _, _)| i)
            .collect();
    assert_eq!(listed, [id("dir/b.txt"), id("dir/sub")]);
    // An edit through an inode of the read-only view lands at its path;
    // a new name gets a number past the view's.
    let sub = id("dir/sub");
    let (made, _) = f.ov.create(sub, b"new", 0o644, 0, WHO).unwrap();
    assert!(made.idx as usize >= view.len());
    assert_eq!(names(&f.ov, sub), ["c.txt", "new"]);
    assert!(f.ov.scratch().upper_path().join("dir/sub/new").exists());
    // Not a node of the view, nor made: stale.
    assert!(!f.ov.contains(made.idx + 1));
}

#[test]
fn an_adopted_file_deleted_and_made_again_is_a_new_inode_and_the_old_stays_held() {
    let f = adopted();
    let a = f.ov.layers.view.resolve_path("a.txt").unwrap().0;
    assert_eq!(f.ov.lookup(0, b"a.txt").unwrap().0, a);
    f.ov.unlink(0, b"a.txt").unwrap();
    let (again, _) = f.ov.create(0, b"a.txt", 0o644, 0, WHO).unwrap();
    assert_ne!(again.idx, a);
    // The kernel may still hold the old inode from before the edit: it is
    // never freed, so its number is never another file's.
    f.ov.forget(a, 1_000);
    assert!(f.ov.contains(a));
    let (other, _) = f.ov.create(0, b"b.txt", 0o644, 0, WHO).unwrap();
    assert_ne!(other.idx, a);
}

#[test]
fn an_adopted_inode_first_asked_for_after_a_commit_is_found_in_the_new_layers() {
    let f = adopted();
    let view = f.ov.layers.view.clone();
    let c = view.resolve_path("dir/sub/c.txt").unwrap().0;
    // The runtime moves to another view (a commit) before the kernel asks
    // for the inode again: it is looked up there by its path.
    let moved = f.ov.rebased(Arc::new(View::empty()));
    assert!(moved.contains(c), "still named, by its path");
    assert_eq!(moved.getattr(c).unwrap_err(), Errno::ENOENT);
    let back = moved.rebased(view.clone());
    assert!(back.contains(view.resolve_path("dir/b.txt").unwrap().0));
    assert_eq!(read(&back, c), b"lower c");
}

#[test]
fn a_move_to_another_stack_tells_which_nodes_changed_and_retires_adoption() {
    let f = adopted();
    let old = f.ov.layers.view.clone();
    let id = |p: &str| old.resolve_path(p).unwrap().0;
    let (dir, _) = f.ov.lookup(0, b"dir").unwrap();
    let (a, _) = f.ov.lookup(0, b"a.txt").unwrap();
    let lowers = f.ov.node_lowers();
    assert!(lowers.contains(&(dir, Some(NodeId(id("dir"))))));
    f.ov.stop_adopting();
    // Against the same layers nothing changed; against none, everything.
    for (idx, was) in &lowers {
        assert_eq!(
            f.ov.lower_change(&old, *was, f.ov.lower_of(*idx)),
            LowerChange::Same
        );
    }
    let empty = f.ov.rebased(Arc::new(View::empty()));
    assert_eq!(
        empty.lower_change(&old, Some(NodeId(id("a.txt"))), empty.lower_of(a)),
        LowerChange::Replaced
    );
    // A node of the old view never asked for is stale now.
    assert!(!empty.contains(id("dir/sub/c.txt")));
    assert!(empty.detach_node(a).is_some());
    assert!(empty.detach_node(a).is_none(), "once");
}
