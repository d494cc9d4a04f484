//! The kernel's FORGET frees an editable runtime's nodes: a runtime that
//! creates and deletes files for days (a build's temporary files) keeps
//! the service's memory where it was, instead of ~85 bytes per name it
//! ever saw.

mod common;

use common::service::*;

/// The service's resident memory, in KiB.
fn rss_kib(svc: &Service) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", svc.child.id())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Creates and deletes `count` files of distinct names from `from` on in
/// one process of runtime `shell`.
fn churn(shell: &mut RuntimeShell, from: u64, count: u64) {
    let script = format!(
        "python3 -c 'import os\nfor i in range({from}, {}):\n    p = os.environ[\"M\"] + \"/tmp/t%d\" % i\n    open(p, \"w\").close()\n    os.unlink(p)\nprint(\"done\")'",
        from + count
    );
    assert_eq!(shell.eval(&script), ["done"]);
}

#[test]
fn memory_stays_flat_under_create_and_delete_churn() {
    // Enough to see the old growth (~190 bytes a name: 17 MB for these
    // 90,000) well past the allowance; set SPFS_CHURN_FILES for more.
    let total: u64 = std::env::var("SPFS_CHURN_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let svc = Service::start("repo");
    let mut shell = RuntimeShell::start(&svc, "churn", "fixture/base");
    shell.eval("mkdir -p $M/tmp");
    churn(&mut shell, 0, 10_000);
    let after_first = rss_kib(&svc);
    churn(&mut shell, 10_000, total - 10_000);
    let after_all = rss_kib(&svc);
    // Within 10 % (and 2 MiB, for the allocator's own slack on a small
    // service).
    let allowed = after_first / 10 + 2048;
    assert!(
        after_all <= after_first + allowed,
        "the service grew from {after_first} KiB after 10,000 files to {after_all} KiB after {total}"
    );
}
