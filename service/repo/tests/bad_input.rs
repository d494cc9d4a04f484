//! Bad input never panics and never damages a repository: each case is a
//! clear error naming what failed, and the repository is left byte-for-byte
//! as it was.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use spfs_repo::tags::TagAuthor;
use spfs_repo::{commit, EnvSpec, Error, FsRepository, RepositorySet, View};

fn set_at(root: &Path) -> RepositorySet {
    RepositorySet::new(
        FsRepository::open(root).unwrap(),
        vec![],
        TagAuthor("t@h".into()),
    )
}

/// Resolves `spec` all the way to a built view.
fn load(set: &RepositorySet, spec: &str) -> Result<View, Error> {
    let stack = set.resolve_stack(&EnvSpec::parse(spec)?)?;
    View::build(&set.read_stack_manifests(&stack)?)
}

fn tag_target(root: &Path, tag: &str) -> String {
    set_at(root)
        .resolve_tag(&tag.parse().unwrap())
        .unwrap()
        .target
        .to_string()
}

fn object_file(root: &Path, digest: &str) -> PathBuf {
    root.join("objects").join(&digest[..2]).join(&digest[2..])
}

/// Applies `damage` to a fresh copy of `repo`, then expects loading `spec`
/// to fail with a message containing each of `needles`, leaving the
/// (damaged) repository unchanged.
fn expect_failure(repo: &str, spec: &str, damage: impl Fn(&Path), needles: &[&str]) {
    let (_tmp, root) = fixture_copy(repo);
    damage(&root);
    let before = snapshot(&root);
    let err = match set_at(&root).resolve_stack(&EnvSpec::parse(spec).unwrap()) {
        Err(e) => e,
        Ok(_) => match load(&set_at(&root), spec) {
            Err(e) => e,
            Ok(_) => panic!("{repo} {spec}: expected an error"),
        },
    };
    let msg = err.to_string();
    assert!(!msg.contains('\n'), "one line: {msg}");
    for n in needles {
        assert!(msg.contains(n), "{repo} {spec}: '{n}' not in: {msg}");
    }
    assert_eq!(snapshot(&root), before, "{repo}: repository changed");
}

#[test]
fn corrupt_objects() {
    for repo in REPOS {
        let layer = |root: &Path| object_file(root, &tag_target(root, "fixture/base"));
        let rewrite = |f: fn(Vec<u8>) -> Vec<u8>| {
            move |root: &Path| {
                let p = layer(root);
                let b = fs::read(&p).unwrap();
                fs::write(&p, f(b)).unwrap();
            }
        };
        expect_failure(
            repo,
            "fixture/base",
            rewrite(|b| b[..10].to_vec()),
            &["corrupt object", "shorter than"],
        );
        expect_failure(
            repo,
            "fixture/base",
            rewrite(|mut b| {
                b[0] = b'X';
                b
            }),
            &["corrupt object", "--SPFS--"],
        );
        expect_failure(
            repo,
            "fixture/base",
            rewrite(|mut b| {
                b[16] = 9;
                b
            }),
            &["unknown object kind"],
        );
        expect_failure(
            repo,
            "fixture/base",
            rewrite(|b| b[..b.len() - 20].to_vec()),
            &["corrupt object"],
        );
        // a valid object stored under the wrong name
        expect_failure(
            repo,
            "fixture/base",
            |root: &Path| {
                let top = fs::read(object_file(root, &tag_target(root, "fixture/top"))).unwrap();
                fs::write(layer(root), top).unwrap();
            },
            &["corrupt object", "not the"],
        );
        // a manifest truncated in the middle of its trees
        expect_failure(
            repo,
            "fixture/base",
            |root: &Path| {
                let set = set_at(root);
                let stack = set
                    .resolve_stack(&EnvSpec::parse("fixture/base").unwrap())
                    .unwrap();
                let p = object_file(root, &stack[0].manifest.unwrap().to_string());
                let b = fs::read(&p).unwrap();
                fs::write(&p, &b[..b.len() / 2]).unwrap();
            },
            &["corrupt object"],
        );
    }
}

#[test]
fn missing_objects_and_payloads() {
    for repo in REPOS {
        expect_failure(
            repo,
            "fixture/base",
            |root: &Path| {
                fs::remove_file(object_file(root, &tag_target(root, "fixture/base"))).unwrap()
            },
            &["unknown reference 'fixture/base"],
        );
        expect_failure(
            repo,
            "fixture/base",
            |root: &Path| {
                let set = set_at(root);
                let stack = set
                    .resolve_stack(&EnvSpec::parse("fixture/base").unwrap())
                    .unwrap();
                fs::remove_file(object_file(root, &stack[0].manifest.unwrap().to_string()))
                    .unwrap();
            },
            &["was not found in"],
        );
        let (_tmp, root) = fixture_copy(repo);
        let set = set_at(&root);
        let view = load(&set, "fixture/base").unwrap();
        let hello = view
            .get(view.resolve_path("hello.txt").unwrap())
            .unwrap()
            .payload()
            .unwrap();
        fs::remove_file(set.primary().payload_path(&hello)).unwrap();
        let err = set.payload_path(&hello).unwrap_err().to_string();
        assert!(
            err.contains(&format!("payload {hello} is missing")),
            "{err}"
        );
    }
}

#[test]
fn bad_references() {
    let set = fixture_set("repo");
    let cases = [
        ("fixture/nothing", "unknown reference 'fixture/nothing'"),
        (
            "7MYHTBATAHCQXH3NEUEAB2DF6MSFQSGXKFWMQXED47JE5TTOIG1====",
            "is not a digest",
        ),
        ("ZZZZZZ", "'ZZZZZZ' looks like a digest, and no object in"),
        ("4G", "ambiguous reference '4G'"),
        ("fixture/base+bad name", "'bad name'"),
        (
            "4OYMIQUY7QOBJGX36TEJS35ZEQT24QPEMSNZGTFESWMRW6CSXBKQ====",
            "is a blob",
        ),
        ("fixture/moving~5", "has only 2 version"),
    ];
    for (spec, needle) in cases {
        let err = load(&set, spec).unwrap_err().to_string();
        assert!(err.contains(needle), "{spec}: {err}");
    }
    // a unique prefix resolves; the same tag's full digest agrees
    let full = tag_target(&fixtures().join("repo"), "fixture/base");
    let a = set
        .resolve_stack(&EnvSpec::parse(&full[..8]).unwrap())
        .unwrap();
    let b = set
        .resolve_stack(&EnvSpec::parse("fixture/base").unwrap())
        .unwrap();
    assert_eq!(a, b);
}

#[test]
fn corrupt_tags() {
    for repo in REPOS {
        let tag = |root: &Path| root.join("tags/fixture/moving.tag");
        for (cut, needle) in [
            (0usize, "is empty"),
            (5, "truncated in its length"),
            (60, "claims"),
        ] {
            expect_failure(
                repo,
                "fixture/moving",
                move |root: &Path| {
                    let b = fs::read(tag(root)).unwrap();
                    fs::write(tag(root), &b[..cut.min(b.len())]).unwrap();
                },
                &["corrupt tag file", "moving.tag", needle],
            );
        }
        expect_failure(
            repo,
            "fixture/moving",
            |root: &Path| {
                let mut b = fs::read(tag(root)).unwrap();
                let i = b.len() - 40; // inside the time string of the last record
                b[i] = 0xff;
                fs::write(tag(root), b).unwrap();
            },
            &["corrupt tag file"],
        );
    }
}

#[test]
fn other_major_versions_are_refused() {
    let (_tmp, root) = fixture_copy("repo");
    fs::write(root.join("VERSION"), "1.2.0").unwrap();
    let err = FsRepository::open(&root).unwrap_err().to_string();
    assert!(
        err.contains("has version 1.2.0") && err.contains("0.x"),
        "{err}"
    );
    fs::write(root.join("VERSION"), "banana").unwrap();
    let err = FsRepository::open(&root).unwrap_err().to_string();
    assert!(
        err.contains("has a VERSION file holding 'banana', not a version")
            && !err.contains("corrupt object"),
        "{err}"
    );
    for ok in ["", "0.44.0", "0.99.1\n"] {
        fs::write(root.join("VERSION"), ok).unwrap();
        FsRepository::open(&root).unwrap();
    }
    let err = FsRepository::open(root.join("nope"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no spfs repository at"), "{err}");
}

#[test]
fn failed_writes_leave_nothing_behind() {
    let (_tmp, root) = fixture_copy("repo");
    let repo = FsRepository::open(&root).unwrap();
    let src = tempfile::tempdir().unwrap();
    fs::write(src.path().join("a.txt"), "new content").unwrap();
    std::os::unix::net::UnixListener::bind(src.path().join("sock")).unwrap();
    let before = snapshot(&root);
    let err = commit::commit_dir(&repo, src.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("sock (a socket)") && err.contains("nothing was committed"),
        "{err}"
    );
    // found before anything was written
    assert!(snapshot(&root) == before, "a failed commit wrote something");
    // the payload written before the failure is complete and content-addressed;
    // no staging file is left and no object refers to anything missing
    let after = snapshot(&root);
    for (p, data) in &after {
        assert!(
            !p.to_str().unwrap().contains("/work/"),
            "left staged file {}",
            p.display()
        );
        if !before.contains_key(p) {
            assert!(p.starts_with(root.join("payloads")) || p.starts_with(root.join("objects")));
            let _ = data;
        }
    }

    // a store that cannot be written to: a clear error, nothing staged left
    let (_tmp2, root2) = fixture_copy("repo");
    let repo2 = FsRepository::open(&root2).unwrap();
    fs::remove_dir_all(root2.join("payloads")).unwrap();
    fs::write(root2.join("payloads"), "not a directory").unwrap();
    let src2 = tempfile::tempdir().unwrap();
    fs::write(src2.path().join("b.txt"), "x").unwrap();
    let err = commit::commit_dir(&repo2, src2.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains("payloads"), "{err}");
}
