//! The `info` and `ls` commands, run as the real binary against the
//! upstream fixture repositories.

mod common;

use std::fs;
use std::process::{Command, Output};

use common::*;

/// Runs the binary with only the given repository configured.
fn run(repo: &str, args: &[&str]) -> Output {
    let home = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_spfs-fuse-macos"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("SPFS_STORAGE_ROOT", fixtures().join(repo))
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn ls_recursive_lists_the_recorded_views() {
    for repo in REPOS {
        for (spec, tsv) in expected_views() {
            let expected: Vec<String> = fs::read_to_string(&tsv)
                .unwrap()
                .lines()
                .map(|l| {
                    let mut f = l.split('\t');
                    let path = f.next().unwrap();
                    if f.next() == Some("dir") {
                        format!("{path}/")
                    } else {
                        path.to_owned()
                    }
                })
                .collect();
            let out = stdout(&run(repo, &["ls", "-R", &spec]));
            let mut actual: Vec<String> = out.lines().map(str::to_owned).collect();
            actual.sort_by(|a, b| a.trim_end_matches('/').cmp(b.trim_end_matches('/')));
            assert_eq!(actual, expected, "{repo} {spec}");
        }
    }
}

#[test]
fn ls_a_subdirectory_and_long_format() {
    let out = stdout(&run("repo", &["ls", "fixture/base", "/spfs/etc"]));
    assert_eq!(out, "conf.d/\nreadonly.cfg\n");
    let out = stdout(&run("repo", &["ls", "-l", "fixture/base", "etc"]));
    assert_eq!(
        out,
        "drwxr-xr-x          - conf.d/\n-r--r--r--          3 readonly.cfg\n"
    );
    let out = stdout(&run("repo", &["ls", "-l", "fixture/base", "link-abs"]));
    assert_eq!(out, "lrwxrwxrwx         14 link-abs -> /spfs/bin/tool\n");
}

#[test]
fn info_describes_each_kind() {
    for repo in REPOS {
        let set = fixture_set(repo);
        let base = set
            .resolve_tag(&"fixture/base".parse().unwrap())
            .unwrap()
            .target
            .to_string();
        let top = set
            .resolve_tag(&"fixture/top".parse().unwrap())
            .unwrap()
            .target
            .to_string();

        let out = stdout(&run(repo, &["info", "fixture/platform"]));
        assert!(out.starts_with("platform "), "{out}");
        let b = out.find(&base).expect("base layer listed");
        let t = out.find(&top).expect("top layer listed");
        assert!(t < b, "top first:\n{out}");
        assert!(
            out.contains("208 files, 19 directories, 2 symlinks"),
            "{out}"
        );

        let out = stdout(&run(repo, &["info", &base[..10]]));
        assert!(out.starts_with(&format!("layer {base}")), "{out}");
        assert!(out.contains("manifest: "), "{out}");

        let out = stdout(&run(repo, &["info", "fixture/base+fixture/top"]));
        assert!(
            out.starts_with("environment fixture/base+fixture/top"),
            "{out}"
        );

        let empty = "4OYMIQUY7QOBJGX36TEJS35ZEQT24QPEMSNZGTFESWMRW6CSXBKQ====";
        let out = stdout(&run(repo, &["info", empty]));
        assert!(
            out.starts_with(&format!("blob {empty}")) && out.contains("0 bytes"),
            "{out}"
        );
    }
}

#[test]
fn errors_are_one_line_with_a_failing_status() {
    for (args, needle) in [
        (
            vec!["info", "fixture/none"],
            "unknown reference 'fixture/none'",
        ),
        (
            vec!["ls", "fixture/base", "nope"],
            "/spfs/nope does not exist in fixture/base",
        ),
        (vec!["ls", "bad ref"], "invalid environment spec 'bad ref'"),
        (vec!["info", "4G"], "ambiguous reference '4G'"),
    ] {
        let o = run("repo", &args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8(o.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("error: ") && err.contains(needle),
            "{args:?}: {err}"
        );
    }
    let o = run("repo", &["ls"]);
    assert_eq!(o.status.code(), Some(2), "usage errors exit 2");
}

#[test]
fn an_incompatible_repository_is_refused_clearly() {
    let (_tmp, root) = fixture_copy("repo");
    fs::write(root.join("VERSION"), "1.0.0").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_spfs-fuse-macos"))
        .args(["ls", "fixture/base"])
        .env("SPFS_STORAGE_ROOT", &root)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(err.contains("has version 1.0.0"), "{err}");
}

#[test]
fn secondary_repositories_from_the_user_config_are_read_only() {
    let home = tempfile::tempdir().unwrap();
    let (_tmp, studio) = fixture_copy("repo");
    let before = snapshot(&studio);
    let config_dir = home.path().join(".config/spfs");
    fs::create_dir_all(&config_dir).unwrap();
    let primary = home.path().join("local-repo");
    fs::write(
        config_dir.join("spfs.toml"),
        format!(
            "[storage]\nroot = \"{}\"\n\n[remote.studio]\naddress = \"file://{}\"\n",
            primary.display(),
            studio.display()
        ),
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_spfs-fuse-macos"))
        .args(["ls", "-R", "fixture/base+fixture/top"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("HOME", home.path())
        .output()
        .unwrap();
    let out = stdout(&o);
    assert!(
        out.contains("new/added.txt") && out.contains("lib/big.bin"),
        "{out}"
    );
    assert!(
        !primary.exists(),
        "a command that only reads must not create the primary repository"
    );
    assert!(snapshot(&studio) == before, "the secondary was modified");
}
