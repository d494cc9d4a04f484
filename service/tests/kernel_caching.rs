//! What the kernel may cache, checked from outside: the root directory is
//! the only thing all runtimes share, so its attributes must look the same
//! to everyone, and a path walk must cost one request (the routed lookup of
//! the top-level name), counted with the kernel's own FUSE tracepoints.

mod common;

use std::os::unix::fs::MetadataExt;

use common::service::*;

/// `stat` of the mount root as seen by a process: mode, owner, group,
/// mtime, inode.
const STAT_ROOT: &str = "stat -c '%a %u %g %Y %i' \"$M\"";

#[test]
fn the_root_looks_the_same_to_every_runtime_and_to_outsiders() {
    let svc = Service::start("repo");
    let outside = {
        let m = std::fs::metadata(&svc.mnt).unwrap();
        format!(
            "{:o} {} {} {} {}",
            m.mode() & 0o7777,
            m.uid(),
            m.gid(),
            m.mtime(),
            m.ino()
        )
    };
    let read_only = ok(&svc
        .command(BIN)
        .args(["run", "fixture/base", "--", "sh", "-c", STAT_ROOT])
        .env("M", &svc.mnt)
        .output()
        .unwrap());
    let mut editable = RuntimeShell::start(&svc, "ed", "fixture/base+fixture/top");
    assert_eq!(read_only.trim(), outside);
    assert_eq!(editable.eval(STAT_ROOT), [outside.as_str()]);

    // An editable runtime adds top-level entries, but cannot change the
    // shared root's attributes.
    let out = editable.eval(
        "touch \"$M/new\" && echo made
         chmod 700 \"$M\" 2>&1 | grep -q 'Operation not permitted' && echo eperm
         touch -d 2001-01-01 \"$M\" 2>&1 | grep -q 'Operation not permitted' && echo eperm",
    );
    assert_eq!(out, ["made", "eperm", "eperm"]);
    assert_eq!(editable.eval(STAT_ROOT), [outside.as_str()]);

    // Whatever the root's mode, a process outside any runtime sees an
    // empty root it cannot write to.
    assert_eq!(std::fs::read_dir(&svc.mnt).unwrap().count(), 0);
    for attempt in [
        std::fs::write(svc.mnt.join("x"), b""),
        std::fs::create_dir(svc.mnt.join("d")),
    ] {
        assert_eq!(attempt.unwrap_err().raw_os_error(), Some(libc::EROFS));
    }
}

/// Counting the requests the kernel sends, with its FUSE tracepoints.
#[cfg(target_os = "linux")]
mod counted {
    use std::os::unix::fs::MetadataExt;
    use std::path::{Path, PathBuf};
    use std::sync::{Mutex, MutexGuard};

    use super::common::service::*;

    /// A private tracefs instance recording `fuse_request_send`; removed on
    /// drop, with tracefs itself if this mounted it. One at a time (tests
    /// run in parallel; tracefs is mounted once for all).
    struct FuseTrace {
        dir: PathBuf,
        mounted: Option<&'static Path>,
        _one_at_a_time: MutexGuard<'static, ()>,
    }

    static TRACING: Mutex<()> = Mutex::new(());

    impl FuseTrace {
        fn new() -> FuseTrace {
            let guard = TRACING.lock().unwrap_or_else(|p| p.into_inner());
            let tracing = Path::new("/sys/kernel/tracing");
            let mut mounted = None;
            if !tracing.join("instances").exists() {
                let st = std::process::Command::new("mount")
                    .args(["-t", "tracefs", "nodev"])
                    .arg(tracing)
                    .status()
                    .unwrap();
                assert!(st.success(), "this test needs tracefs (root, Linux)");
                mounted = Some(tracing);
            }
            let dir = tracing.join(format!("instances/spfs-test-{}", std::process::id()));
            std::fs::create_dir(&dir).expect("a tracefs instance (needs root)");
            let trace = FuseTrace {
                dir,
                mounted,
                _one_at_a_time: guard,
            };
            assert!(
                trace.dir.join("events/fuse/fuse_request_send").exists(),
                "the kernel has no FUSE tracepoints"
            );
            trace
        }

        /// The opcode names of requests sent on connection `conn`.
        fn requests(&self, conn: u64) -> Vec<String> {
            let text = std::fs::read_to_string(self.dir.join("trace")).unwrap();
            let tag = format!(" connection {conn} ");
            text.lines()
                .filter(|l| l.contains(&tag))
                .filter_map(|l| {
                    let name = l.split('(').nth(1)?.split(')').next()?;
                    Some(name.to_owned())
                })
                .collect()
        }
    }

    impl Drop for FuseTrace {
        fn drop(&mut self) {
            let _ = std::fs::write(self.dir.join("events/fuse/fuse_request_send/enable"), "0");
            let _ = std::fs::remove_dir(&self.dir);
            if let Some(m) = self.mounted {
                let _ = std::process::Command::new("umount").arg(m).status();
            }
        }
    }

    #[test]
    fn a_warm_path_walk_sends_one_lookup_of_its_top_level_name() {
        let svc = Service::start("repo");
        let trace = FuseTrace::new();
        let conn = libc::minor(std::fs::metadata(&svc.mnt).unwrap().dev()) as u64;
        // Warm up, then 1,000 path walks: half to a file three levels deep,
        // half to missing names (negative entries) below a top-level directory.
        let script = r#"
import os, sys
mnt, enable = sys.argv[1], sys.argv[2]
paths = [f"{mnt}/etc/conf.d/a.conf", *(f"{mnt}/etc/missing_{i}" for i in range(50))]
def walk():
    for i in range(500):
        os.lstat(paths[0])
        try: os.lstat(paths[1 + i % 50])
        except FileNotFoundError: pass
walk()
with open(enable, "w") as f: f.write("1")
walk()
with open(enable, "w") as f: f.write("0")
"#;
        let enable = trace.dir.join("events/fuse/fuse_request_send/enable");
        let mnt = svc.mnt.to_str().unwrap();
        ok(&svc.run(
            "fixture/base",
            &["python3", "-c", script, mnt, enable.to_str().unwrap()],
        ));
        let requests = trace.requests(conn);
        let lookups = requests.iter().filter(|r| *r == "FUSE_LOOKUP").count();
        let others: Vec<_> = requests.iter().filter(|r| *r != "FUSE_LOOKUP").collect();
        assert_eq!(lookups, 1000, "one lookup per path walk");
        assert!(others.is_empty(), "nothing else: {others:?}");
    }

    #[test]
    fn a_warm_tree_walk_reads_listings_from_the_kernel_cache() {
        let svc = Service::start("repo");
        let trace = FuseTrace::new();
        let conn = libc::minor(std::fs::metadata(&svc.mnt).unwrap().dev()) as u64;
        // The first `find` reads every listing from the service, the
        // second refreshes the directories' atimes; the third is counted.
        let enable = trace.dir.join("events/fuse/fuse_request_send/enable");
        let script = "find \"$M\" -ls >/dev/null; find \"$M\" -ls >/dev/null
                      echo 1 > \"$E\"; find \"$M\" -ls >/dev/null; echo 0 > \"$E\"
                      find \"$M\" -type d | wc -l";
        let out = svc
            .command(BIN)
            .args(["run", "fixture/base", "--", "sh", "-c", script])
            .env("M", &svc.mnt)
            .env("E", &enable)
            .output()
            .unwrap();
        let dirs: usize = ok(&out).trim().parse().unwrap();
        assert!(dirs > 10, "{dirs} directories");
        let requests = trace.requests(conn);
        let count = |op: &str| requests.iter().filter(|r| *r == op).count();
        // Only the root's listing (per caller) is read again: one
        // READDIRPLUS with the entries, one READDIR finding the end.
        assert!(
            count("FUSE_READDIRPLUS") + count("FUSE_READDIR") <= 2,
            "{requests:?}"
        );
        assert_eq!(count("FUSE_OPENDIR"), dirs, "{requests:?}");
    }
}
