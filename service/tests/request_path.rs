//! The request path holds against its own bugs and against a user who
//! changes the scratch directory behind the service's back.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::service::*;

#[test]
fn a_request_that_panics_is_answered_eio_and_the_service_keeps_serving() {
    if !cfg!(feature = "fault-injection") {
        panic!(
            "this test needs the service built with --features fault-injection (scripts/test does)"
        );
    }
    let svc = Service::start_env("repo", &[("SPFS_FUSE_FAULT_PANIC_ON_LOOKUP", "boom")]);
    let m = svc.mnt.display().to_string();
    // With 2 request threads, several panics in a row: each one answered,
    // every other request still served.
    let script = format!(
        "for i in 1 2 3 4 5 6; do stat {m}/boom 2>&1 | grep -c 'Input/output error'; done
         cat {m}/hello.txt; ls {m}/etc | grep -c conf.d"
    );
    let out = ok(&svc.run("fixture/base", &["sh", "-c", &script]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..6], ["1"; 6], "{out}");
    assert_eq!(lines[6], "hello from base", "{out}");
    assert_eq!(lines[7], "1", "{out}");
    assert!(text(&svc.cli(&["status"])).contains("service running"));
    let log = svc.log();
    assert!(
        log.contains("a request panicked; answered EIO"),
        "no error logged: {log}"
    );
}

/// The scratch directory of the one runtime the service has.
fn scratch_dir(svc: &Service) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(svc.scratch_root())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

/// Every entry under `dir` with its mode and content, for "nothing changed".
fn tree(dir: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let content = if m.is_file() {
                String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned()
            } else {
                String::new()
            };
            out.push(format!(
                "{} {:o} {}:{} {content}",
                p.display(),
                m.mode(),
                m.uid(),
                m.gid()
            ));
            if m.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_scratch_directory_swapped_for_a_symlink_never_leads_outside() {
    let svc = Service::start("repo");
    // The symlink is relative: followed by the service from the scratch it
    // reaches `outside`; followed by the runtime's own processes (which
    // may, with their own rights) from the mount it reaches nothing.
    let outside = svc.dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("a"), b"precious").unwrap();
    std::fs::create_dir(outside.join("sub")).unwrap();
    let before = tree(&outside);

    let mut sh = RuntimeShell::start(&svc, "swapped", "fixture/base");
    // `d` (new) and `etc` (merged with the layers) in the scratch.
    sh.eval("mkdir $M/d; echo in > $M/d/a; mkdir $M/d/sub; echo x >> $M/etc/conf.d/a.conf");
    let upper = scratch_dir(&svc).join("upper");
    let stop = Arc::new(AtomicBool::new(false));
    // The user swaps `d` and `etc` for symlinks to `outside`, back and
    // forth, while the runtime edits through them.
    let swapper = {
        let (stop, upper, outside) = (stop.clone(), upper.clone(), outside.clone());
        std::thread::spawn(move || {
            let mut swaps = 0;
            while !stop.load(Ordering::Relaxed) {
                for name in ["d", "etc"] {
                    let real = upper.join(name);
                    let aside = upper.join(format!("{name}.aside"));
                    if std::fs::rename(&real, &aside).is_ok() {
                        let depth = real.strip_prefix(outside.parent().unwrap()).unwrap();
                        let up = "../".repeat(depth.components().count() - 1);
                        let _ = std::os::unix::fs::symlink(format!("{up}outside"), &real);
                        std::thread::sleep(std::time::Duration::from_millis(2));
                        let _ = std::fs::remove_file(&real);
                        let _ = std::fs::rename(&aside, &real);
                        swaps += 1;
                    }
                }
            }
            swaps
        })
    };
    for round in 0..40 {
        for dir in ["d", "etc", "d/sub", "etc/conf.d"] {
            sh.eval(&format!(
                // The shell's stderr goes to /dev/null first: a redirection
                // that fails (its directory swapped away) prints nothing.
                "exec 2>/dev/null; D=$M/{dir}
                 echo evil > $D/a 2>/dev/null; echo evil >> $D/a 2>/dev/null
                 echo new > $D/new{round} 2>/dev/null; chmod 777 $D/a 2>/dev/null
                 chmod 777 $D/sub 2>/dev/null; touch -d 2001-01-01 $D/a 2>/dev/null
                 mkdir $D/made{round} 2>/dev/null; ln -s /etc/passwd $D/ln{round} 2>/dev/null
                 mv $D/a $D/a.moved 2>/dev/null; mv $D/a.moved $D/a 2>/dev/null
                 rm -f $D/new{round} 2>/dev/null; rm -rf $D/sub 2>/dev/null; mkdir $D/sub 2>/dev/null
                 truncate -s 0 $D/a 2>/dev/null; mkfifo $D/fifo{round} 2>/dev/null
                 setfattr -n user.x -v y $D/a 2>/dev/null; true"
            ));
        }
        if round % 10 == 9 {
            // a reset of one path goes through the same directories
            let sub = svc.mnt.join("d/sub");
            let _ = svc.cli(&["reset", "--runtime", "swapped", sub.to_str().unwrap()]);
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    assert!(swaps > 10, "the swapper barely ran ({swaps} swaps)");
    assert_eq!(
        tree(&outside),
        before,
        "something outside the scratch changed"
    );
    assert!(!Path::new("/outside").exists());
}
