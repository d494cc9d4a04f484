//! `service::recover` on its own (no mount): which recorded runtimes come
//! back after a restart of the service, and what happens to the others.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use common::{fixture_copy, fixtures};
use spfs_fuse_macos::manager::{FsRecords, Manager};
use spfs_fuse_macos::records::{RuntimeRecord, RECORD_VERSION};
use spfs_fuse_macos::recovery::recover;
use spfs_fuse_macos::runtimes::Runtimes;
use spfs_fuse_macos::stack::Opener;
use spfs_fuse_macos::sys::process::proc_info;
use spfs_shared::protocol::RepositoryLocation;

/// A scratch directory at `dir` as a service leaves it: a record for a
/// runtime rooted at `pid`, an edit, and a leftover copy-up in work/.
fn scratch(dir: &Path, name: &str, pid: u32, start_time: u64, repo: &Path) {
    std::fs::create_dir_all(dir.join("upper")).unwrap();
    std::fs::create_dir_all(dir.join("work")).unwrap();
    std::fs::write(dir.join("upper/edit.txt"), b"edit").unwrap();
    std::fs::write(dir.join("work/stage-3"), b"partial").unwrap();
    RuntimeRecord {
        version: RECORD_VERSION,
        name: name.into(),
        uid: 0,
        gid: 0,
        root_pid: pid,
        root_start_time: start_time,
        env_spec: "fixture/base".into(),
        // Records hold digests: fixture/base's layer.
        stack: vec![base_layer(&fixtures().join("repo"))],
        repositories: vec![RepositoryLocation {
            root: repo.display().to_string(),
            tag_namespace: None,
            remote_name: None,
        }],
        token: format!("token-{name}"),
        created_unix: 1,
        editable: true,
        durable: false,
        edits_dir: None,
        read_only: false,
    }
    .write(dir)
    .unwrap();
}

fn base_layer(repo: &Path) -> String {
    let repo = spfs_fuse_macos::repo::FsRepository::open(repo).unwrap();
    let tag = spfs_fuse_macos::repo::TagSpec::parse("fixture/base").unwrap();
    repo.resolve_tag(&tag).unwrap().unwrap().target.to_string()
}

struct Kill(std::process::Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn live_runtimes_come_back_dead_ones_go_and_unreadable_ones_stay() {
    let root = tempfile::tempdir().unwrap();
    // Runtimes are recorded in their repository: a copy of the fixture.
    let (_copy, repo) = fixture_copy("repo");
    let live = Kill(
        Command::new("sleep")
            .arg("30")
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = live.0.id();
    let start = proc_info(pid).unwrap().start_time;
    scratch(&root.path().join("live-1"), "live", pid, start, &repo);
    // Same pid, another start time: a recycled pid, not the runtime's root.
    scratch(
        &root.path().join("recycled-1"),
        "recycled",
        pid,
        start + 1,
        &repo,
    );
    // The repository is gone: the edits cannot be shown, so they are kept.
    let missing = root.path().join("no-such-repo");
    scratch(
        &root.path().join("norepo-1"),
        "norepo",
        pid,
        start,
        &missing,
    );

    let manager = Manager::new(
        Arc::new(Runtimes::new()),
        Box::new(FsRecords::new(root.path())),
    );
    let repositories = Opener::new(4).unwrap();
    let back = recover(&manager, &repositories, root.path());
    let names: Vec<&str> = back.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["live"]);
    assert_eq!(back[0].root_pid, pid);
    assert!(back[0].editable().is_some());
    assert_eq!(back[0].token, "token-live");

    let live_dir = root.path().join("live-1");
    assert_eq!(
        std::fs::read(live_dir.join("upper/edit.txt")).unwrap(),
        b"edit"
    );
    assert_eq!(std::fs::read_dir(live_dir.join("work")).unwrap().count(), 0);
    assert!(
        !root.path().join("recycled-1").exists(),
        "dead runtime kept"
    );
    let kept = root.path().join("norepo-1");
    assert_eq!(std::fs::read(kept.join("upper/edit.txt")).unwrap(), b"edit");
    assert_eq!(std::fs::read_dir(kept.join("work")).unwrap().count(), 0);
}
