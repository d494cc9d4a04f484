//! Edits under fire: writers and the service killed with SIGKILL in the
//! middle of copying up a large file, a restart of the service, a scratch
//! directory that runs out of space, and commits racing with writers. A
//! runtime sees the old file or the whole new one, never part of one, and
//! no edit is silently lost.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::service::*;

const MIB: usize = 1 << 20;

/// Writes `mib` MiB (each MiB different, so a misplaced or missing part
/// shows) to `dir/huge.bin` and commits `dir` as a layer tagged `big`.
fn commit_big_layer(svc: &Service, mib: usize) -> PathBuf {
    let src = svc.dir.path().join("big-src");
    std::fs::create_dir_all(&src).unwrap();
    let file = src.join("huge.bin");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
    for i in 0..mib {
        let chunk: Vec<u8> = (0..MIB)
            .map(|j| (j as u32 * 31 + i as u32 * 7) as u8)
            .collect();
        f.write_all(&chunk).unwrap();
    }
    f.flush().unwrap();
    drop(f);
    ok(&svc.cli(&["commit", "--path", src.to_str().unwrap(), "-t", "big"]));
    file
}

/// What the runtime sees of `/huge.bin`: its size, and whether its
/// first `len` bytes are those of `src`.
fn huge(sh: &mut RuntimeShell, src: &Path, len: u64) -> (u64, bool) {
    let out = sh.eval(&format!(
        "wc -c < \"$M/huge.bin\"; cmp -n {len} \"$M/huge.bin\" {} >/dev/null && echo same",
        src.display()
    ));
    (
        out[0].trim().parse().unwrap(),
        out.get(1).map(String::as_str) == Some("same"),
    )
}

/// The one scratch directory under the service's scratch root.
fn scratch_dir(svc: &Service) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(svc.scratch_root())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

fn entries(dir: &Path) -> Vec<(PathBuf, u64)> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| {
                let e = e.unwrap();
                (e.path(), e.metadata().map(|m| m.len()).unwrap_or(0))
            })
            .collect()
        })
        .unwrap_or_default()
}

/// Waits until a copy-up of `huge.bin` is staged in `work` and part-way
/// through: between a quarter and three quarters of `size` copied.
fn wait_mid_copy(work: &Path, size: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Some(&(_, len)) = entries(work).first() {
            if len >= size / 4 && len <= size * 3 / 4 {
                return len;
            }
            assert!(len < size, "the copy finished before it could be caught");
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    panic!("no copy-up was staged in {}", work.display());
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Old or whole new: the upper copy of `huge.bin` is absent or complete.
fn assert_upper_whole(scratch: &Path, size: u64) {
    if let Ok(m) = std::fs::metadata(scratch.join("upper/huge.bin")) {
        assert!(
            m.len() == size || m.len() == size + 1,
            "a partial copy is visible: {} of {size} bytes",
            m.len()
        );
    }
}

#[test]
fn sigkill_of_a_writer_or_the_service_mid_copy_up_never_shows_part_of_a_file() {
    let mut svc = Service::start("repo");
    let src = commit_big_layer(&svc, 384);
    let size = (384 * MIB) as u64;
    let mut sh = RuntimeShell::start(&svc, "k", "fixture/base+big");
    let scratch = scratch_dir(&svc);
    let work = scratch.join("work");

    // A writer killed while its open copies the file up.
    let pid: i32 = sh.eval("sh -c 'printf X >> \"$M/huge.bin\"' & echo $!")[0]
        .parse()
        .unwrap();
    let at = wait_mid_copy(&work, size);
    let _ = spfs_fuse_macos::sys::process::signal(pid as u32, libc::SIGKILL);
    eprintln!("writer killed with {at} of {size} bytes staged");
    wait_until("the copy-up ends", || entries(&work).is_empty());
    assert_upper_whole(&scratch, size);
    let (seen, same) = huge(&mut sh, &src, size);
    assert!(
        seen == size || seen == size + 1,
        "runtime sees {seen} bytes"
    );
    assert!(same, "content differs from the layer's");

    // The service killed the same way; edits made before survive it.
    ok(&svc.cli(&["reset", "--runtime", "k"]));
    assert_eq!(
        sh.eval("echo kept > \"$M/kept.txt\" && rm \"$M/hello.txt\" && echo edited"),
        ["edited"]
    );
    sh.eval("sh -c 'printf X >> \"$M/huge.bin\"' 2>/dev/null &");
    let at = wait_mid_copy(&work, size);
    svc.sigkill();
    eprintln!("service killed with {at} of {size} bytes staged");
    assert!(!entries(&work).is_empty(), "the interrupted copy is staged");
    assert_upper_whole(&scratch, size);

    // The restarted service cleans the work directory and brings the
    // runtime back with its edits, to the same (still running) shell.
    svc.restart();
    assert!(
        entries(&work).is_empty(),
        "work dir not cleaned: {:?}",
        entries(&work)
    );
    assert_upper_whole(&scratch, size);
    let ls = ok(&svc.cli(&["runtime", "ls"]));
    assert!(
        ls.lines().any(|l| l.split_whitespace().next() == Some("k")),
        "{ls}"
    );
    let (seen, same) = huge(&mut sh, &src, size);
    assert!(
        seen == size || seen == size + 1,
        "runtime sees {seen} bytes"
    );
    assert!(same, "content differs from the layer's");
    assert_eq!(sh.eval("cat \"$M/kept.txt\""), ["kept"]);
    assert_eq!(
        sh.eval("test -e \"$M/hello.txt\" || echo deleted"),
        ["deleted"]
    );
    assert_eq!(
        sh.eval("cat \"$M/etc/conf.d/b.conf\" > /dev/null && echo read"),
        ["read"]
    );
}

#[test]
fn a_runtime_whose_processes_died_with_the_service_is_cleaned_on_restart() {
    let mut svc = Service::start("repo");
    let sh = RuntimeShell::start(&svc, "gone", "fixture/base");
    let scratch = scratch_dir(&svc);
    std::fs::write(scratch.join("work/stage-leftover"), b"x").unwrap();
    svc.sigkill();
    drop(sh);
    // A directory that is not a scratch directory is never touched.
    let stranger = svc.scratch_root().join("not-a-scratch");
    std::fs::create_dir_all(stranger.join("work")).unwrap();
    std::fs::write(stranger.join("work/keep"), b"mine").unwrap();
    svc.restart();
    assert!(!scratch.exists(), "the ended runtime's scratch is left");
    assert_eq!(std::fs::read(stranger.join("work/keep")).unwrap(), b"mine");
    let ls = ok(&svc.cli(&["runtime", "ls", "--json"]));
    assert!(!ls.contains("\"gone\""), "{ls}");
}

/// A tmpfs of `mib` MiB at `path`, lazily unmounted when dropped.
struct Tmpfs(PathBuf);
impl Tmpfs {
    fn mount(path: &Path, mib: usize) -> Tmpfs {
        std::fs::create_dir_all(path).unwrap();
        let st = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mib}m"),
                "spfs-test-scratch",
            ])
            .arg(path)
            .status()
            .unwrap();
        assert!(st.success(), "cannot mount a tmpfs (the tests run as root)");
        Tmpfs(path.to_owned())
    }
}
impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_scratch_gives_enospc_and_leaves_no_partial_file() {
    let mut tmpfs = None;
    let svc = Service::start_prepared("repo", |dir| {
        tmpfs = Some(Tmpfs::mount(&dir.join("scratch"), 16));
    });
    let _tmpfs = tmpfs;
    let src = commit_big_layer(&svc, 24);
    let size = (24 * MIB) as u64;
    let mut sh = RuntimeShell::start(&svc, "full", "fixture/base+big");
    let scratch = scratch_dir(&svc);

    let out = sh.eval("(printf X >> \"$M/huge.bin\") 2>&1; echo \"status $?\"");
    assert!(
        out.iter().any(|l| l.contains("No space left on device")),
        "{out:?}"
    );
    assert_ne!(out.last().unwrap(), "status 0", "{out:?}");
    assert!(
        !scratch.join("upper/huge.bin").exists(),
        "partial copy in upper"
    );
    assert!(
        entries(&scratch.join("work")).is_empty(),
        "stage left in work"
    );
    assert_eq!(huge(&mut sh, &src, size), (size, true));

    // A new file that does not fit: the writer sees ENOSPC too...
    let out = sh.eval("head -c 20000000 /dev/zero 2>&1 > \"$M/new.bin\"; echo \"status $?\"");
    assert_ne!(out.last().unwrap(), "status 0", "{out:?}");
    assert!(out.iter().any(|l| l.contains("No space left")), "{out:?}");
    // ...and once it is gone, small edits work again.
    assert_eq!(
        sh.eval("rm \"$M/new.bin\" && echo small > \"$M/small.txt\" && cat \"$M/small.txt\""),
        ["small"]
    );
}

#[test]
fn a_commit_racing_with_writers_loses_no_edit() {
    let svc = Service::start("repo");
    let mut sh = RuntimeShell::start(&svc, "race", "fixture/base");
    // 2,000 creates in a loop; the commit starts once 100 are done.
    let out = sh.eval(&format!(
        "mkdir \"$M/loop\"
         (i=0; while [ $i -lt 2000 ]; do echo $i > \"$M/loop/f$i\" || echo FAIL $i; i=$((i+1)); done) &
         while [ ! -e \"$M/loop/f100\" ]; do :; done
         {BIN} commit; wait
         ls \"$M/loop\" | wc -l"
    ));
    // A write into a file created just before the switch fails loudly
    // (its handle belongs to the replaced view); nothing fails silently.
    let failed: Vec<usize> = out
        .iter()
        .filter_map(|l| l.strip_prefix("FAIL ").map(|n| n.parse().unwrap()))
        .collect();
    assert!(failed.len() <= 2, "{out:?}");
    let digest = out.iter().find(|l| l.len() > 50).expect("a digest");
    assert_eq!(out.last().unwrap().trim(), "2000", "{out:?}");
    // The commit really landed mid-loop: its layer holds part of the files.
    let mnt = svc.mnt.display().to_string();
    let committed = ok(&svc.run(
        &format!("fixture/base+{digest}"),
        &["sh", "-c", &format!("ls {mnt}/loop | wc -l")],
    ));
    let n: usize = committed.trim().parse().unwrap();
    assert!((101..2000).contains(&n), "committed {n} files");
    // Every other file is whole, in the layer or in the scratch.
    let bad: Vec<usize> = sh
        .eval(
            "i=0; while [ $i -lt 2000 ]; do [ \"$(cat \"$M/loop/f$i\")\" = $i ] || echo $i; i=$((i+1)); done",
        )
        .iter()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(bad, failed, "files neither whole nor reported");
}

#[test]
fn a_file_held_open_across_a_commit_keeps_writing() {
    let svc = Service::start("repo");
    let mut sh = RuntimeShell::start(&svc, "held", "fixture/base");
    let out = sh.eval(&format!(
        "exec 3>\"$M/open.txt\"; echo before >&3
         {BIN} commit >/dev/null
         (echo after >&3) 2>&1; echo \"status $?\"; exec 3>&-
         cat \"$M/open.txt\"
         echo later >> \"$M/open.txt\" && cat \"$M/open.txt\""
    ));
    // The write after the commit goes on: the file is copied from the new
    // layer (what was written before) into the fresh scratch. (Before
    // 2026-12-02 it failed with EIO.)
    assert_eq!(
        out,
        ["status 0", "before", "after", "before", "after", "later"],
        "{out:?}"
    );
}

#[test]
fn a_second_service_on_the_same_scratch_root_refuses_to_start() {
    let svc = Service::start("repo");
    let mut sh = RuntimeShell::start(&svc, "first", "fixture/base");
    sh.eval("echo kept > \"$M/kept.txt\"");
    let other = svc.dir.path().join("other");
    let out = Command::new(BIN)
        .args(["service", "--threads", "1"])
        .env("SPFS_FUSE_MOUNTPOINT", other.join("spfs"))
        .env("SPFS_FUSE_SOCKET", other.join("control.sock"))
        .env("SPFS_FUSE_SCRATCH_ROOT", svc.scratch_root())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("another service uses the scratch root"),
        "{err}"
    );
    // The first service's runtime and its edits are untouched.
    assert_eq!(sh.eval("cat \"$M/kept.txt\""), ["kept"]);
    ok(&svc.cli(&["status"]));
}

/// Every payload under `repo` holds what its name says, and every object
/// reads back verified (whole or absent, never wrong).
fn assert_repository_whole(repo: &Path) {
    use sha2::Digest as _;
    let payloads = repo.join("payloads");
    for shard in std::fs::read_dir(&payloads).into_iter().flatten() {
        let shard = shard.unwrap().path();
        if shard.file_name().unwrap() == "work" {
            continue;
        }
        for f in std::fs::read_dir(&shard).unwrap() {
            let f = f.unwrap().path();
            let name = format!(
                "{}{}",
                shard.file_name().unwrap().to_str().unwrap(),
                f.file_name().unwrap().to_str().unwrap()
            );
            let digest = spfs_fuse_macos::repo::Digest::parse(&name).unwrap();
            let actual = sha2::Sha256::digest(std::fs::read(&f).unwrap());
            assert_eq!(
                actual.as_slice(),
                digest.as_bytes(),
                "payload {name} holds other bytes"
            );
        }
    }
    let r = spfs_fuse_macos::repo::FsRepository::open(repo).unwrap();
    for d in r.object_digests().unwrap() {
        assert!(
            r.read_object(&d).unwrap().is_some(),
            "object {d} does not read back"
        );
    }
}

#[test]
fn a_commit_killed_at_any_moment_leaves_every_object_whole_or_absent() {
    commits_killed_at_random_moments(20, None);
}

#[test]
#[ignore = "needs upstream spfs beside the project (../shared/peers/spfs-0.44, or under $SPFS_SHARED); scripts/test runs it when there"]
fn upstream_check_passes_on_a_repository_whose_commit_was_killed() {
    commits_killed_at_random_moments(8, Some(&upstream_spfs()));
}

/// Commits `trials` copies of one tree, each killed at a random moment:
/// every object left is whole, our `spfs check` (and `upstream`'s) find
/// nothing wrong, and the commit run again completes.
fn commits_killed_at_random_moments(trials: u32, upstream: Option<&Path>) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    // 1,500 files, some shared contents, a few larger ones, a link.
    for i in 0..1500u32 {
        let d = src.join(format!("d{:02}", i % 40));
        std::fs::create_dir_all(&d).unwrap();
        let len = if i % 500 == 0 {
            3 << 20
        } else {
            100 + (i as usize * 37) % 4000
        };
        let bytes: Vec<u8> = (0..len)
            .map(|j| ((j as u32 * 13) ^ (i % 900)) as u8)
            .collect();
        std::fs::write(d.join(format!("f{i}")), bytes).unwrap();
    }
    std::os::unix::fs::symlink("d00/f0", src.join("link")).unwrap();
    let commit = |repo: &Path| {
        Command::new(BIN)
            .args(["commit", "--path", src.to_str().unwrap()])
            .env("SPFS_STORAGE_ROOT", repo)
            .env("HOME", dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    // How long a whole commit takes here: kills land anywhere in it.
    let started = Instant::now();
    let whole = dir.path().join("whole");
    assert!(commit(&whole).wait().unwrap().success());
    let span = started.elapsed().as_micros().max(1000) as u64;
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for trial in 0..trials {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let repo = dir.path().join(format!("trial{trial}"));
        let mut child = commit(&repo);
        std::thread::sleep(Duration::from_micros(seed % span));
        let _ = child.kill();
        let _ = child.wait();
        if !repo.exists() {
            continue;
        }
        assert_repository_whole(&repo);
        // Both tools' checks find nothing wrong (an unfinished commit
        // leaves objects nothing names, never a name without its bytes).
        let ours = Command::new(Path::new(BIN).with_file_name("spfs"))
            .arg("check")
            .env("SPFS_STORAGE_ROOT", &repo)
            .output()
            .unwrap();
        assert!(
            ours.status.success(),
            "trial {trial}: {}",
            String::from_utf8_lossy(&ours.stdout)
        );
        if let Some(spfs) = upstream {
            let theirs = Command::new(spfs)
                .arg("check")
                .env("SPFS_STORAGE_ROOT", &repo)
                .env("HOME", dir.path())
                .output()
                .unwrap();
            assert!(
                theirs.status.success(),
                "trial {trial}: {}",
                String::from_utf8_lossy(&theirs.stdout)
            );
        }
        // And the commit, done again, completes.
        assert!(commit(&repo).wait().unwrap().success(), "trial {trial}");
        assert_repository_whole(&repo);
    }
}
