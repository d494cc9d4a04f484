//! The filesystem mounted for real, driven through the library: a runtime
//! sees its view, a process outside sees an empty root.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;

use common::*;
use spfs_fuse_macos::fs::SpfsFs;
use spfs_fuse_macos::mount::Mounted;
use spfs_fuse_macos::repo::{EnvSpec, View};
use spfs_fuse_macos::runtimes::{NewRuntime, Runtimes};

#[test]
fn a_runtime_sees_its_view_and_outsiders_see_nothing() {
    let mnt = tempfile::tempdir().unwrap();
    let runtimes = Arc::new(Runtimes::new());
    let mounted =
        Mounted::mount(SpfsFs::new(runtimes.clone(), (0, 0)), mnt.path(), 2, &[]).unwrap();

    let set = Arc::new(fixture_set("repo"));
    let stack = set
        .resolve_stack(&EnvSpec::parse("fixture/base").unwrap())
        .unwrap();
    let view = View::build(&set.read_stack_manifests(&stack).unwrap()).unwrap();

    let mut child = Command::new("sh")
        .arg("-c")
        .arg("read go; cat \"$1/hello.txt\"; ls \"$1\" | tr '\\n' ' '; echo; readlink \"$1/link-rel\"; cat \"$1/lib/big.bin\" | wc -c")
        .arg("sh")
        .arg(mnt.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    runtimes
        .start(NewRuntime {
            name: "t1".into(),
            uid: 0,
            gid: 0,
            root_pid: child.id(),
            spec: "fixture/base".into(),
            stack: stack.iter().map(|s| s.digest).collect(),
            view: std::sync::Arc::new(view),
            repos: set,
            scratch: None,
            token: spfs_fuse_macos::runtimes::new_token(),
            created: None,
            spec_layers: None,
            record_dir: None,
            durable: false,
            repo_record: None,
        })
        .unwrap();
    child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    let lines: Vec<String> = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(|l| l.unwrap())
        .collect();
    child.wait().unwrap();
    assert_eq!(lines[0], "hello from base");
    assert_eq!(
        lines[1].trim(),
        "bin empty.txt etc hello.txt lib link-abs link-dangling link-rel many share var"
    );
    assert_eq!(lines[2], "hello.txt");
    assert_eq!(lines[3].trim(), "1048576");

    // this test process is in no runtime
    assert_eq!(std::fs::read_dir(mnt.path()).unwrap().count(), 0);
    assert!(std::fs::metadata(mnt.path().join("hello.txt")).is_err());
    mounted.unmount().unwrap();
    assert!(!is_mounted(mnt.path()));
}

fn is_mounted(p: &std::path::Path) -> bool {
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(1) == Some(p.to_str().unwrap()))
}
