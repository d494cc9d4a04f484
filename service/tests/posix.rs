//! POSIX conformance: a subset of pjdfstest run inside an editable runtime
//! (as root, in `/spfs/work`), covering what a build does there: switch to
//! another uid (set-id bits, search permission), make FIFOs, sockets and
//! device nodes, hard-link files, and use names and paths at their limits.
//! The whole suite (8,798 subtests, ~3 minutes) is in docs/posix.md.
//!
//! pjdfstest is vendored beside the project (`../shared/tools`, or
//! `$SPFS_PJDFSTEST_RUN`); without it the test is ignored, and
//! `scripts/test` runs it where it is (CI always).

mod common;

use std::path::PathBuf;

use common::service::*;

/// The files run: a few hundred subtests, each cause of the trial's
/// failures covered.
const SUBSET: [&str; 19] = [
    "chmod/12.t",    // a non-owner's write clears set-id bits (uid switch)
    "chown/05.t",    // search permission for another uid
    "link/00.t",     // hard links: link counts, one inode, ctime
    "link/02.t",     // names at their limit
    "link/03.t",     // paths at their limit
    "link/10.t",     // link a FIFO, socket, device
    "mknod/00.t",    // FIFOs and devices made
    "mknod/03.t",    // paths at their limit
    "mkfifo/00.t",   // FIFOs
    "mkfifo/02.t",   // names at their limit
    "open/02.t",     // names at their limit
    "open/03.t",     // paths at their limit
    "unlink/00.t",   // unlink of files, FIFOs, sockets, devices, links
    "unlink/14.t",   // an open file unlinked: fstat sees nlink 0
    "rename/01.t",   // names at their limit
    "mkdir/03.t",    // paths at their limit
    "rmdir/03.t",    // paths at their limit
    "truncate/02.t", // names at their limit
    "symlink/02.t",  // names at their limit
];

fn pjdfstest_run() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SPFS_PJDFSTEST_RUN") {
        return Some(PathBuf::from(p));
    }
    let p = shared_dir().join("tools/pjdfstest-run");
    p.exists().then(|| p.canonicalize().unwrap_or(p))
}

#[test]
#[ignore = "needs pjdfstest beside the project (../shared/tools/pjdfstest-run, under $SPFS_SHARED, or $SPFS_PJDFSTEST_RUN); scripts/test runs it when there"]
fn a_pjdfstest_subset_passes_in_an_editable_runtime() {
    let run = pjdfstest_run().expect(
        "this test needs pjdfstest-run: ../shared/tools/pjdfstest-run, under $SPFS_SHARED, or $SPFS_PJDFSTEST_RUN",
    );
    let svc = Service::start("repo");
    let m = svc.mnt.display().to_string();
    // As root (pjdfstest switches uids itself), in the runtime's /spfs.
    let script = format!(
        "mkdir -p {m}/work && exec {} {m}/work {}",
        run.display(),
        SUBSET.join(" ")
    );
    let o = svc
        .command(BIN)
        .args(["run", "--edit", "fixture/base", "--", "sh", "-c", &script])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let last = out.lines().last().unwrap_or_default();
    assert!(
        o.status.success() && last.contains(": 0 failed of "),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let total: usize = last
        .rsplit("of ")
        .next()
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(total >= 300, "only {total} subtests ran: {out}");
}
