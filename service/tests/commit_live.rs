//! Commits and resets under a running runtime's feet: a shell `cd`'d into
//! `/spfs`, files held open across commits, and writers that never stop
//! while commits run. A commit does not change what the runtime sees, so
//! nothing the runtime's processes hold may break; a reset changes only
//! the paths it resets.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::service::*;

#[test]
fn a_shell_in_spfs_and_its_open_files_survive_commits_and_resets() {
    let svc = Service::start("repo");
    let mut sh = RuntimeShell::start(&svc, "live", "fixture/base");
    // A working directory inside /spfs and a file held open for appending.
    assert_eq!(
        sh.eval("cd $M/etc && exec 3>>$M/etc/new.conf && echo a >&3 && echo ok"),
        ["ok"]
    );
    // A reader holding a lower file open, and one holding a scratch file.
    assert_eq!(
        sh.eval("exec 4<$M/hello.txt; exec 5<$M/etc/new.conf; echo ok"),
        ["ok"]
    );

    ok(&svc.cli(&["commit", "--runtime", "live"]));
    // The working directory and relative paths still work.
    let ls = sh.eval("ls . | sort | tr '\\n' ' '; echo");
    assert!(ls[0].contains("new.conf"), "{ls:?}");
    assert_eq!(sh.eval("cat ./new.conf"), ["a"]);
    // The handle opened before the commit goes on writing, and the
    // write is seen by new opens.
    assert_eq!(
        sh.eval("echo b >&3 && cat new.conf | tr '\\n' ' '; echo"),
        ["a b"]
    );
    assert_eq!(sh.eval("cat <&4"), ["hello from base"]);
    assert_eq!(sh.eval("cat <&5 | tr '\\n' ' '; echo"), ["a b"]);
    // A second commit; the handle still writes.
    ok(&svc.cli(&["commit", "--runtime", "live"]));
    assert_eq!(
        sh.eval("echo c >&3 && cat $M/etc/new.conf | tr '\\n' ' '; echo"),
        ["a b c"]
    );
    assert_eq!(sh.eval("pwd"), [format!("{}/etc", svc.mnt.display())]);

    // A reset discards the edits since the last commit (the "c" line and a
    // new file) and keeps the working directory.
    assert_eq!(sh.eval("echo gone > reset-me && ls reset-me"), ["reset-me"]);
    ok(&svc.cli(&["reset", "--runtime", "live"]));
    let ls = sh.eval("ls . | sort | tr '\\n' ' '; echo");
    assert!(!ls[0].contains("reset-me"), "{ls:?}");
    assert_eq!(sh.eval("cat new.conf | tr '\\n' ' '; echo"), ["a b"]);
    assert_eq!(
        sh.eval("test -e reset-me && echo present || echo missing"),
        ["missing"]
    );
    assert_eq!(
        sh.eval("pwd && ls -d ."),
        [format!("{}/etc", svc.mnt.display()), ".".into()]
    );
}

#[test]
fn a_reset_path_shows_its_layers_again_through_the_kernels_caches() {
    let svc = Service::start("repo");
    let mut sh = RuntimeShell::start(&svc, "r", "fixture/base");
    let size = sh.eval("stat -c %s $M/hello.txt");
    // Edit a lower file and add one; the kernel caches both (attributes
    // and names are kept a day for a runtime's own inodes).
    sh.eval("echo more >> $M/hello.txt; echo new > $M/etc/added; stat $M/hello.txt $M/etc/added >/dev/null");
    assert_ne!(sh.eval("stat -c %s $M/hello.txt"), size);
    ok(&svc.cli(&["reset", "--runtime", "r"]));
    // Without telling the kernel, stat would answer from the cache.
    assert_eq!(sh.eval("stat -c %s $M/hello.txt"), size);
    assert_eq!(sh.eval("cat $M/hello.txt"), ["hello from base"]);
    assert_eq!(
        sh.eval("stat $M/etc/added >/dev/null 2>&1 && echo present || echo missing"),
        ["missing"]
    );
}

#[test]
fn a_reset_shows_again_names_the_kernel_was_told_are_missing() {
    let svc = Service::start("repo");
    let mut sh = RuntimeShell::start(&svc, "r", "fixture/base");
    // Missing names the kernel now caches as missing: a deleted lower
    // file, one under a directory made anew (opaque), one never there.
    let probe = "for p in etc/conf.d/a.conf many/d0/f000.txt etc/never; do \
                 stat $M/$p >/dev/null 2>&1 && echo present || echo missing; done";
    sh.eval("rm $M/etc/conf.d/a.conf $M/lib/big.bin; rm -r $M/many/d0; mkdir $M/many/d0");
    // A listing read with nothing looked up by name.
    assert_eq!(sh.eval("ls $M/lib | wc -l"), ["0"]);
    assert_eq!(sh.eval(probe), ["missing", "missing", "missing"]);
    // Listings the kernel keeps across opens, read twice.
    let listing = "ls $M/etc/conf.d $M/many/d0 | wc -l";
    assert_eq!(sh.eval(listing), sh.eval(listing));
    let before = sh.eval(listing);
    ok(&svc.cli(&["reset", "--runtime", "r"]));
    assert_eq!(sh.eval(probe), ["present", "present", "missing"]);
    assert_ne!(sh.eval(listing), before, "the listings show the reset");
    assert_eq!(sh.eval("ls $M/etc/conf.d"), ["a.conf", "b.conf"]);
    assert_eq!(sh.eval("ls $M/lib"), ["big.bin"]);
    // A change through the mount shows in a kept listing at once.
    sh.eval("touch $M/etc/conf.d/c.conf");
    assert_eq!(sh.eval("ls $M/etc/conf.d"), ["a.conf", "b.conf", "c.conf"]);
    sh.eval("rm $M/etc/conf.d/b.conf");
    assert_eq!(sh.eval("ls $M/etc/conf.d"), ["a.conf", "c.conf"]);
    assert_eq!(sh.eval("cat $M/etc/conf.d/a.conf"), ["a=1"]);
}

#[test]
fn writers_see_no_error_while_commits_run_and_every_write_lands() {
    const WRITES: usize = 200;
    let svc = Arc::new(Service::start("repo"));
    let mut sh = RuntimeShell::start(&svc, "busy", "fixture/base");
    let stop = Arc::new(AtomicBool::new(false));
    let committer = {
        let (svc, stop) = (svc.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut commits = 0;
            while !stop.load(Ordering::Relaxed) {
                let o = svc.cli(&["commit", "--runtime", "busy"]);
                if o.status.success() {
                    commits += 1;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            commits
        })
    };
    // Four writers: each appends through a handle it keeps open, creates,
    // renames and deletes, and counts its errors.
    let script = format!(
        r#"
        writer() {{
          k=$1; i=0; errs=0
          exec 3>>$M/w$k.log
          while [ $i -lt {WRITES} ]; do
            echo "$k $i" >&3 || errs=$((errs+1))
            echo data > $M/w$k.tmp || errs=$((errs+1))
            mv $M/w$k.tmp $M/w$k.file || errs=$((errs+1))
            rm -f $M/w$k.file || errs=$((errs+1))
            i=$((i+1))
          done
          echo "writer $k errors $errs"
        }}
        for k in 1 2 3 4; do writer $k > $M/../out$k 2>&1 & done
        wait
        cat $M/../out1 $M/../out2 $M/../out3 $M/../out4
        "#
    );
    let out = sh.eval(&script);
    stop.store(true, Ordering::Relaxed);
    let commits = committer.join().unwrap();
    assert!(commits >= 3, "only {commits} commits ran during the writes");
    for k in 1..=4 {
        assert!(out.contains(&format!("writer {k} errors 0")), "{out:?}");
    }
    // Every append landed: in a committed layer or in the scratch.
    for k in 1..=4 {
        let lines = sh.eval(&format!("wc -l < $M/w{k}.log"));
        assert_eq!(lines, [WRITES.to_string()], "writer {k}");
        let first_last = sh.eval(&format!("head -1 $M/w{k}.log; tail -1 $M/w{k}.log"));
        assert_eq!(
            first_last,
            [format!("{k} 0"), format!("{k} {}", WRITES - 1)]
        );
    }
}
