//! Each operation against both trees (a read-only view and an editable
//! overlay) with a plain caller [`Context`]: no kernel, no mount.

use std::ffi::OsStr;
use std::sync::Arc;
use std::time::Duration;

use fuser::{AccessFlags, Errno, FileType, INodeNo};

use super::*;
use crate::overlay::SetAttr;
use crate::repo::tags::TagAuthor;
use crate::repo::{commit, EnvSpec, FsRepository, RepositorySet, View};
use crate::runtimes::{new_token, NewRuntime, Runtimes};
use crate::scratch::Scratch;

const ROOT: INodeNo = INodeNo(inode::ROOT);

struct Fixture {
    ops: Ops,
    /// This process, as the runtime's user: inside the runtime unless
    /// the fixture was made `outside` it.
    cx: Context,
    /// A caller inside the runtime (its root process).
    member: Context,
    /// A process that roots the runtime when this one may not.
    _root: Option<Child>,
    _tmp: tempfile::TempDir,
}

/// A child process killed when the test ends, however it ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    ReadOnly,
    Editable,
}

const BOTH: [Kind; 2] = [Kind::ReadOnly, Kind::Editable];

/// One layer: a.txt (0644), run.sh (0755), dir/b.txt, link -> a.txt;
/// a runtime of it rooted at this process (or, with `outside`, at a child
/// process, so this one is outside every runtime).
fn fixture(kind: Kind, outside: bool) -> Fixture {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("dir")).unwrap();
    std::fs::write(src.join("a.txt"), b"lower a").unwrap();
    std::fs::set_permissions(src.join("a.txt"), std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(src.join("run.sh"), b"#!/bin/sh\n").unwrap();
    std::fs::set_permissions(src.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(src.join("dir/b.txt"), b"lower b").unwrap();
    std::os::unix::fs::symlink("a.txt", src.join("link")).unwrap();
    let repo = FsRepository::open_or_create(tmp.path().join("repo")).unwrap();
    let layer = commit::commit_dir(&repo, &src).unwrap().layer;
    let set = Arc::new(RepositorySet::new(repo, vec![], TagAuthor("t@h".into())));
    let spec = layer.to_string();
    let stack = set.resolve_stack(&EnvSpec::parse(&spec).unwrap()).unwrap();
    let view = Arc::new(View::build(&set.read_stack_manifests(&stack).unwrap()).unwrap());
    let scratch = (kind == Kind::Editable)
        .then(|| Arc::new(Scratch::open(&tmp.path().join("scratch")).unwrap()));
    let (runtimes, root, root_pid) = if outside {
        let child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let pid = child.id();
        (Runtimes::new(), Some(Child(child)), pid)
    } else {
        (Runtimes::including_own_process(), None, std::process::id())
    };
    let (uid, gid) = crate::sys::user::effective_ids();
    runtimes
        .start(NewRuntime {
            name: "ops-test".into(),
            uid,
            gid,
            root_pid,
            spec,
            stack: stack.iter().map(|i| i.digest).collect(),
            view,
            repos: set,
            scratch,
            token: new_token(),
            created: None,
            spec_layers: None,
            record_dir: None,
            durable: false,
            repo_record: None,
        })
        .unwrap();
    Fixture {
        ops: Ops::new(Arc::new(runtimes), (uid, gid)),
        cx: Context {
            uid,
            gid,
            pid: std::process::id(),
        },
        member: Context {
            uid,
            gid,
            pid: root_pid,
        },
        _root: root,
        _tmp: tmp,
    }
}

impl Fixture {
    fn lookup(&self, parent: INodeNo, name: &str) -> Result<Entry, Errno> {
        self.ops.lookup(&self.cx, parent, OsStr::new(name))
    }

    fn ino(&self, parent: INodeNo, name: &str) -> INodeNo {
        let e = self.lookup(parent, name).unwrap();
        assert_ne!(e.attr.ino.0, 0, "{name} is missing");
        e.attr.ino
    }

    fn open(&self, ino: INodeNo, flags: i32) -> Result<Opened, Errno> {
        match self.ops.open(&self.cx, ino, flags)? {
            Ok(o) => Ok(o),
            // Only payloads of a remote, or large ones, are finished later.
            Err(pending) => pending.finish(),
        }
    }

    fn read_all(&self, ino: INodeNo) -> Vec<u8> {
        let o = self.open(ino, libc::O_RDONLY).unwrap();
        let data = self.ops.read(ino, o.fh, 0, 1 << 16).unwrap();
        self.ops.release(ino, o.fh).unwrap();
        data
    }

    fn names(&self, dir: INodeNo) -> Vec<String> {
        let o = self.ops.opendir(&self.cx, dir).unwrap();
        let listing = self.ops.readdir(dir, o.fh, 0, false).unwrap();
        self.ops.releasedir(dir, o.fh).unwrap();
        listing
            .rows
            .into_iter()
            .map(|r| String::from_utf8(r.name).unwrap())
            .collect()
    }
}

#[test]
fn names_attributes_and_targets_are_the_layers_on_both_trees() {
    for kind in BOTH {
        let f = fixture(kind, false);
        let a = f.lookup(ROOT, "a.txt").unwrap();
        assert_eq!(a.attr.kind, FileType::RegularFile, "{kind:?}");
        assert_eq!(a.attr.size, 7, "{kind:?}");
        assert_eq!(a.attr.perm, 0o644, "{kind:?}");
        assert_eq!((a.attr.uid, a.attr.gid), (f.cx.uid, f.cx.gid), "{kind:?}");
        // Names in the root are never kept: another runtime has another root.
        assert_eq!(a.entry_ttl, TTL_ROOT_ENTRY, "{kind:?}");
        assert_eq!(f.ops.getattr(&f.cx, a.attr.ino, None).unwrap().size, 7);
        let dir = f.lookup(ROOT, "dir").unwrap();
        assert_eq!(dir.attr.kind, FileType::Directory, "{kind:?}");
        let b = f.lookup(dir.attr.ino, "b.txt").unwrap();
        assert_eq!(b.entry_ttl, TTL_VIEW, "{kind:?}");
        let link = f.ino(ROOT, "link");
        assert_eq!(f.ops.readlink(&f.cx, link).unwrap(), b"a.txt", "{kind:?}");
        assert_eq!(
            f.ops.readlink(&f.cx, a.attr.ino).unwrap_err(),
            Errno::EINVAL
        );
        // The root looks the same to every caller.
        let root = f.ops.getattr(&f.cx, ROOT, None).unwrap();
        assert_eq!(root.kind, FileType::Directory);
        assert_eq!(root.ino, ROOT);
    }
}

#[test]
fn missing_names_are_errors_in_the_root_and_negative_entries_below_it() {
    for kind in BOTH {
        let f = fixture(kind, false);
        assert_eq!(
            f.lookup(ROOT, "nope").unwrap_err(),
            Errno::ENOENT,
            "{kind:?}"
        );
        let dir = f.ino(ROOT, "dir");
        let missing = f.lookup(dir, "nope").unwrap();
        assert_eq!(missing.attr.ino.0, 0, "{kind:?}: a negative entry");
        let ttl = match kind {
            // A read-only view never changes under its inodes.
            Kind::ReadOnly => TTL_VIEW,
            Kind::Editable => TTL_MISSING_EDITABLE,
        };
        assert_eq!(missing.entry_ttl, ttl, "{kind:?}");
    }
}

#[test]
fn files_read_and_directories_list_on_both_trees() {
    for kind in BOTH {
        let f = fixture(kind, false);
        let a = f.ino(ROOT, "a.txt");
        assert_eq!(f.read_all(a), b"lower a", "{kind:?}");
        let o = f.open(a, libc::O_RDONLY).unwrap();
        assert_eq!(f.ops.read(a, o.fh, 2, 3).unwrap(), b"wer", "{kind:?}");
        assert_eq!(f.ops.read(a, o.fh, 7, 10).unwrap(), b"", "{kind:?}");
        // A handle names its inode: another inode's request gets EBADF.
        let b = f.ino(f.ino(ROOT, "dir"), "b.txt");
        assert_eq!(f.ops.read(b, o.fh, 0, 1).unwrap_err(), Errno::EBADF);
        f.ops.release(a, o.fh).unwrap();
        assert_eq!(f.ops.read(a, o.fh, 0, 1).unwrap_err(), Errno::EBADF);

        let dir = f.ino(ROOT, "dir");
        assert_eq!(f.open(dir, libc::O_RDONLY).unwrap_err(), Errno::EISDIR);
        assert_eq!(f.ops.opendir(&f.cx, a).unwrap_err(), Errno::ENOTDIR);
        assert_eq!(
            f.names(ROOT),
            [".", "..", "a.txt", "dir", "link", "run.sh"],
            "{kind:?}"
        );
        assert_eq!(f.names(dir), [".", "..", "b.txt"], "{kind:?}");

        // readdirplus rows carry the attributes; an offset resumes after
        // the row it names.
        let o = f.ops.opendir(&f.cx, dir).unwrap();
        let plus = f.ops.readdir(dir, o.fh, 0, true).unwrap();
        let row = &plus.rows[2];
        assert_eq!(row.attr.as_ref().map(|a| a.size), Some(7), "{kind:?}");
        let rest = f
            .ops
            .readdir(dir, o.fh, plus.rows[1].offset, false)
            .unwrap();
        assert_eq!(rest.rows.len(), 1, "{kind:?}");
        assert_eq!(rest.rows[0].name, b"b.txt");
        f.ops.releasedir(dir, o.fh).unwrap();
        assert!(f.ops.statfs(&f.cx).unwrap().is_some(), "{kind:?}");
    }
}

#[test]
fn a_read_only_view_refuses_every_change_with_erofs() {
    let f = fixture(Kind::ReadOnly, false);
    let cx = &f.cx;
    let a = f.ino(ROOT, "a.txt");
    let dir = f.ino(ROOT, "dir");
    let name = OsStr::new("new");
    let erofs = Errno::EROFS;
    assert_eq!(f.open(a, libc::O_WRONLY).unwrap_err(), erofs);
    assert_eq!(f.open(a, libc::O_RDWR).unwrap_err(), erofs);
    let created = f.ops.create(cx, dir, name, 0o644, 0o022, libc::O_WRONLY);
    assert_eq!(created.err(), Some(erofs));
    assert_eq!(f.ops.mkdir(cx, dir, name, 0o755, 0).err(), Some(erofs));
    assert_eq!(f.ops.mknod(cx, dir, name, 0o644, 0, 0).err(), Some(erofs));
    let target = std::path::Path::new("a.txt");
    assert_eq!(f.ops.symlink(cx, dir, name, target).err(), Some(erofs));
    assert_eq!(f.ops.link(cx, a, dir, name).err(), Some(erofs));
    assert_eq!(f.ops.unlink(cx, ROOT, OsStr::new("a.txt")), Err(erofs));
    assert_eq!(f.ops.rmdir(cx, ROOT, OsStr::new("dir")), Err(erofs));
    let renamed = f.ops.rename(cx, ROOT, OsStr::new("a.txt"), dir, name, 0);
    assert_eq!(renamed, Err(erofs));
    let chmod = SetAttr {
        mode: Some(0o600),
        ..SetAttr::default()
    };
    assert_eq!(f.ops.setattr(cx, a, chmod, None).err(), Some(erofs));
    let xattr = OsStr::new("user.test");
    assert_eq!(f.ops.setxattr(cx, a, xattr, b"v", 0), Err(erofs));
    assert_eq!(f.ops.removexattr(cx, a, xattr), Err(erofs));
    assert_eq!(f.ops.getxattr(cx, a, xattr), Err(Errno::NO_XATTR));
    assert_eq!(f.ops.listxattr(cx, a), Ok(Vec::new()));
    // Nothing changed.
    assert_eq!(f.read_all(a), b"lower a");
    assert_eq!(f.names(dir), [".", "..", "b.txt"]);
}

#[test]
fn a_read_only_view_answers_access_from_the_modes() {
    let f = fixture(Kind::ReadOnly, false);
    let cx = &f.cx;
    let a = f.ino(ROOT, "a.txt");
    let run = f.ino(ROOT, "run.sh");
    assert_eq!(f.ops.access(cx, a, AccessFlags::R_OK), Ok(()));
    assert_eq!(f.ops.access(cx, a, AccessFlags::W_OK), Err(Errno::EROFS));
    assert_eq!(f.ops.access(cx, run, AccessFlags::X_OK), Ok(()));
    // Not executable by anyone: not even root may run it.
    assert_eq!(f.ops.access(cx, a, AccessFlags::X_OK), Err(Errno::EACCES));
    let root = Context { uid: 0, ..f.cx };
    assert_eq!(
        f.ops.access(&root, a, AccessFlags::X_OK),
        Err(Errno::EACCES)
    );
}

#[test]
fn an_editable_overlay_takes_changes_through_the_operations() {
    let f = fixture(Kind::Editable, false);
    let cx = &f.cx;
    let dir = f.ino(ROOT, "dir");
    // create, write, read back through a new open
    let (e, o) = f
        .ops
        .create(cx, dir, OsStr::new("new.txt"), 0o640, 0o022, libc::O_RDWR)
        .unwrap();
    assert_eq!(e.attr.perm, 0o640);
    assert_eq!(f.ops.write(cx, e.attr.ino, o.fh, 0, b"hello").unwrap(), 5);
    f.ops.release(e.attr.ino, o.fh).unwrap();
    assert_eq!(f.read_all(f.ino(dir, "new.txt")), b"hello");
    // a lower file written: copied up, the layer's bytes first
    let a = f.ino(ROOT, "a.txt");
    let o = f.open(a, libc::O_WRONLY).unwrap();
    f.ops.write(cx, a, o.fh, 0, b"upper").unwrap();
    f.ops.fsync(cx, a, o.fh, true).unwrap();
    f.ops.release(a, o.fh).unwrap();
    assert_eq!(f.read_all(a), b"upper a");
    // truncate through setattr
    let truncate = SetAttr {
        size: Some(2),
        ..SetAttr::default()
    };
    assert_eq!(f.ops.setattr(cx, a, truncate, None).unwrap().size, 2);
    assert_eq!(f.read_all(a), b"up");
    // the root's own attributes are every runtime's: never changed
    let chmod = SetAttr {
        mode: Some(0o700),
        ..SetAttr::default()
    };
    assert_eq!(
        f.ops.setattr(cx, ROOT, chmod, None).err(),
        Some(Errno::EPERM)
    );
    // mkdir, symlink, link, rename, unlink, rmdir
    let sub = f
        .ops
        .mkdir(cx, dir, OsStr::new("sub"), 0o777, 0o022)
        .unwrap();
    assert_eq!(sub.attr.perm, 0o755);
    let target = std::path::Path::new("../a.txt");
    let l = f
        .ops
        .symlink(cx, sub.attr.ino, OsStr::new("l"), target)
        .unwrap();
    assert_eq!(f.ops.readlink(cx, l.attr.ino).unwrap(), b"../a.txt");
    let b = f.ino(dir, "b.txt");
    let hard = f.ops.link(cx, b, sub.attr.ino, OsStr::new("b2")).unwrap();
    assert_eq!(hard.attr.nlink, 2);
    f.ops
        .rename(cx, dir, OsStr::new("new.txt"), ROOT, OsStr::new("moved"), 0)
        .unwrap();
    assert_eq!(f.lookup(dir, "new.txt").unwrap().attr.ino.0, 0);
    assert_eq!(f.read_all(f.ino(ROOT, "moved")), b"hello");
    f.ops.unlink(cx, ROOT, OsStr::new("link")).unwrap();
    assert_eq!(f.lookup(ROOT, "link").unwrap_err(), Errno::ENOENT);
    assert_eq!(
        f.ops.rmdir(cx, dir, OsStr::new("sub")),
        Err(Errno::ENOTEMPTY)
    );
    f.ops.unlink(cx, sub.attr.ino, OsStr::new("l")).unwrap();
    f.ops.unlink(cx, sub.attr.ino, OsStr::new("b2")).unwrap();
    f.ops.rmdir(cx, dir, OsStr::new("sub")).unwrap();
    assert_eq!(
        f.names(ROOT),
        [".", "..", "a.txt", "dir", "moved", "run.sh"]
    );
    assert_eq!(f.names(dir), [".", "..", "b.txt"]);
    assert_eq!(f.read_all(b), b"lower b");
}

#[test]
fn a_forgotten_node_that_no_name_leads_to_is_freed() {
    let f = fixture(Kind::Editable, false);
    let cx = &f.cx;
    let dir = f.ino(ROOT, "dir");
    let (e, o) = f
        .ops
        .create(cx, dir, OsStr::new("tmp"), 0o644, 0, libc::O_RDWR)
        .unwrap();
    let ino = e.attr.ino;
    f.ops.release(ino, o.fh).unwrap();
    f.ops.unlink(cx, dir, OsStr::new("tmp")).unwrap();
    // The kernel still holds the one lookup create gave it: the node
    // stays until the kernel forgets it.
    let held = f.lookup(dir, "b.txt").unwrap().attr.ino;
    let (overlay, _) = f.ops.slot_overlay(ino).unwrap();
    let live = overlay.live_nodes();
    f.ops.forget(ino.0, 1);
    assert_eq!(overlay.live_nodes(), live - 1);
    assert_eq!(f.ops.getattr(cx, ino, None).unwrap_err(), Errno::ESTALE);
    // A node a name still leads to stays, whatever the kernel forgets.
    f.ops.forget(held.0, 1);
    assert_eq!(overlay.live_nodes(), live - 1);
    assert_eq!(f.ops.getattr(cx, held, None).unwrap().size, 7);
}

#[test]
fn a_process_outside_every_runtime_sees_an_empty_root_it_cannot_change() {
    for kind in BOTH {
        let f = fixture(kind, true);
        let cx = &f.cx;
        assert_eq!(
            f.lookup(ROOT, "a.txt").unwrap_err(),
            Errno::ENOENT,
            "{kind:?}"
        );
        assert_eq!(f.names(ROOT), [".", ".."], "{kind:?}");
        assert!(f.ops.statfs(cx).unwrap().is_none(), "{kind:?}");
        let made = f.ops.mkdir(cx, ROOT, OsStr::new("x"), 0o755, 0);
        assert_eq!(made.err(), Some(Errno::EROFS), "{kind:?}");
        let created = f
            .ops
            .create(cx, ROOT, OsStr::new("x"), 0o644, 0, libc::O_RDWR);
        assert_eq!(created.err(), Some(Errno::EROFS), "{kind:?}");
    }
}

#[test]
fn an_inode_below_the_root_is_refused_to_other_users_outside_the_runtime() {
    for kind in BOTH {
        // The runtime is rooted at a child; this process is not in it.
        let f = fixture(kind, true);
        let a = f.ops.lookup(&f.member, ROOT, OsStr::new("a.txt")).unwrap();
        let a = a.attr.ino;
        let stranger = Context {
            uid: f.cx.uid.wrapping_add(4242),
            gid: f.cx.gid.wrapping_add(4242),
            ..f.cx
        };
        assert_eq!(
            f.ops.getattr(&stranger, a, None).unwrap_err(),
            Errno::EACCES,
            "{kind:?}"
        );
        assert_eq!(
            f.ops.open(&stranger, a, libc::O_RDONLY).err(),
            Some(Errno::EACCES),
            "{kind:?}"
        );
        assert_eq!(
            f.ops.lookup(&stranger, a, OsStr::new("x")).err(),
            Some(Errno::EACCES),
            "{kind:?}"
        );
        // The runtime's user (and root) reach it by the inode alone.
        assert_eq!(f.ops.getattr(&f.cx, a, None).unwrap().size, 7, "{kind:?}");
        let root = Context { uid: 0, ..stranger };
        assert_eq!(f.ops.getattr(&root, a, None).unwrap().size, 7, "{kind:?}");
        // An inode of no runtime is stale.
        let none = INodeNo(inode::encode(999, crate::repo::NodeId(1)));
        assert_eq!(f.ops.getattr(&f.cx, none, None).unwrap_err(), Errno::ESTALE);
    }
}

#[test]
fn negative_entries_of_an_editable_runtime_last_briefly() {
    // A build asks for the same missing names many times a second, and a
    // reset can bring them back: kept, but briefly.
    assert!(TTL_MISSING_EDITABLE <= Duration::from_secs(1));
    let f = fixture(Kind::Editable, false);
    let dir = f.ino(ROOT, "dir");
    assert_eq!(f.lookup(dir, "later").unwrap().attr.ino.0, 0);
    // Made afterwards, it is found at once (the overlay knows it said
    // "missing" and the kernel is told; here: the next lookup finds it).
    let made = f
        .ops
        .mkdir(&f.cx, dir, OsStr::new("later"), 0o755, 0)
        .unwrap();
    assert_eq!(f.lookup(dir, "later").unwrap().attr.ino, made.attr.ino);
}
