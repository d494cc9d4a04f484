//! Backends, end to end: `status` shows the backend and what it can do;
//! single-runtime mode (what a backend without the caller's pid runs in,
//! forced here with `--single-runtime`) serves one runtime at a time to
//! every process of the user, joins a `run` of the same environment and
//! refuses another with why.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::service::*;

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `ls` of the mount by a process in no runtime (not started by `run`).
fn outsider_ls(svc: &Service) -> String {
    let o = Command::new("ls").arg(&svc.mnt).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn status_shows_the_backend_and_its_capabilities() {
    let svc = Service::start("repo");
    let json: serde_json::Value =
        serde_json::from_str(&text(&svc.cli(&["status", "--json"]))).unwrap();
    let b = &json["backend"];
    assert_eq!(b["name"], "linux", "{json}");
    assert_eq!(b["caller_pid"], true);
    assert_eq!(b["single_runtime"], false);
    assert_eq!(b["mounted_at"], svc.mnt.display().to_string());
    let s = text(&svc.cli(&["status"]));
    assert!(
        s.contains("  backend: Linux FUSE (kernel ")
            && s.contains(", one runtime per process tree\n"),
        "{s}"
    );
    assert!(
        s.contains("caller pid: yes; cache invalidation: full"),
        "{s}"
    );
    // The per-process-tree promise: an outsider sees nothing.
    let _rt = spawn_in_base(&svc, "echo up; exec sleep 30");
    assert_eq!(outsider_ls(&svc), "");
}

#[test]
fn a_service_with_an_unknown_backend_says_which_exist() {
    let svc = Service::start("repo");
    let o = svc.cli(&["service", "--backend", "kext"]);
    assert_eq!(o.status.code(), Some(2), "clap refuses the value");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(
            "unknown backend 'kext': use auto, linux, macfuse, macfuse-fskit, fuse-t, fskit"
        ),
        "{err}"
    );
    // A macOS backend on Linux: refused before anything is touched.
    let o = svc
        .command(BIN)
        .args(["service", "--backend", "macfuse"])
        .env("SPFS_FUSE_SOCKET", svc.dir.path().join("other.sock"))
        .env(
            "SPFS_FUSE_SCRATCH_ROOT",
            svc.dir.path().join("other-scratch"),
        )
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        err.trim(),
        "error: macFUSE (kernel extension) exists only on macOS; this is Linux (use --backend auto)"
    );
}

#[test]
fn single_runtime_mode_serves_one_runtime_to_every_process_and_joins_the_same_environment() {
    let svc = Service::start_env("repo", &[("SPFS_FUSE_SINGLE_RUNTIME", "true")]);
    let m = svc.mnt.display().to_string();
    let s = text(&svc.cli(&["status"]));
    assert!(s.contains(", one runtime at a time\n"), "{s}");
    assert_eq!(outsider_ls(&svc), "", "no runtime yet: nothing to see");

    let (first, line) = spawn_in_base(&svc, "echo up; exec sleep 30");
    assert_eq!(line.trim(), "up");
    // Every process of the user sees it, in the runtime or not.
    assert!(
        outsider_ls(&svc).contains("hello.txt"),
        "{}",
        outsider_ls(&svc)
    );

    // Another environment: refused, with why and what to do.
    let o = svc.run("fixture/base+fixture/top", &["true"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("this service serves one runtime at a time (it was started with --single-runtime), and runtime '")
            && err.contains("is running fixture/base: run that environment to join it, or stop it first ('spfs-fuse-macos runtime rm "),
        "{err}"
    );
    // The same one, editable: refused too.
    let o = svc.cli(&["run", "--edit", "fixture/base", "--", "true"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("it is read-only, and this run asks --edit"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The same environment joins it.
    let out = ok(&svc.run("fixture/base", &["cat", &format!("{m}/hello.txt")]));
    assert_eq!(out.trim(), "hello from base");
    let ls = text(&svc.cli(&["runtime", "ls", "--json"]));
    let list: serde_json::Value = serde_json::from_str(&ls).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{ls}");

    // A joined run keeps the runtime alive after its first root ends.
    let (joined, line) = spawn_in_base(&svc, "echo joined; exec sleep 30");
    assert_eq!(line.trim(), "joined");
    drop(first);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        outsider_ls(&svc).contains("hello.txt"),
        "ended with a joined process alive"
    );
    drop(joined);
    wait_until("the runtime's end", || outsider_ls(&svc).is_empty());

    // Then another environment may run.
    let out = ok(&svc.run("fixture/base+fixture/top", &["ls", &m]));
    assert!(!out.is_empty());
}
