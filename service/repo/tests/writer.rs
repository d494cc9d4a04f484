//! The writer: tags with history as upstream writes them, namespaces,
//! platforms, and atomic, content-addressed storage.

mod common;

use std::fs;

use common::*;
use spfs_repo::tags::{decode_stream, TagAuthor};
use spfs_repo::{commit, EnvSpec, FsRepository, RepositorySet, TagSpec};

fn author() -> TagAuthor {
    TagAuthor("tester@host".into())
}

#[test]
fn pushing_tags_keeps_history_like_upstream() {
    let (_tmp, root) = fixture_copy("repo");
    let repo = FsRepository::open(&root).unwrap();
    let spec: TagSpec = "fixture/moving".parse().unwrap();
    let base = repo
        .resolve_tag(&"fixture/base".parse().unwrap())
        .unwrap()
        .unwrap()
        .target;
    let head = repo.resolve_tag(&spec).unwrap().unwrap();

    let new = repo.push_tag(&spec, base, &author()).unwrap();
    assert_eq!(new.parent, head.digest());
    assert_eq!(new.user, "tester@host");
    assert!(
        chrono::DateTime::parse_from_rfc3339(&new.time).is_ok(),
        "{}",
        new.time
    );
    let stream = repo.read_tag_stream(&spec).unwrap().unwrap();
    assert_eq!(stream.len(), 3);
    assert_eq!(
        repo.resolve_tag(&spec.with_version(1)).unwrap().unwrap(),
        head
    );
    assert_eq!(repo.resolve_tag(&spec).unwrap().unwrap().target, base);

    // the same target again adds nothing
    repo.push_tag(&spec, base, &author()).unwrap();
    assert_eq!(repo.read_tag_stream(&spec).unwrap().unwrap().len(), 3);

    // the untouched records are byte-identical; the file is a valid stream
    let before = fs::read(fixtures().join("repo/tags/fixture/moving.tag")).unwrap();
    let after = fs::read(root.join("tags/fixture/moving.tag")).unwrap();
    assert_eq!(&after[..before.len()], &before[..]);
    assert_eq!(decode_stream(&after).unwrap().len(), 3);
    assert!(!root.join("tags/fixture/moving.tag.lock").exists());
    assert!(!root.join("tags/fixture/moving.tag.work").exists());
}

#[test]
fn new_streams_orgs_and_namespaces() {
    let (_tmp, root) = fixture_copy("repo");
    let target = FsRepository::open(&root)
        .unwrap()
        .resolve_tag(&"fixture/top".parse().unwrap())
        .unwrap()
        .unwrap()
        .target;
    let plain = FsRepository::open(&root).unwrap();
    let t = plain
        .push_tag(&"studio/show/shot/comp".parse().unwrap(), target, &author())
        .unwrap();
    assert_eq!(t.parent, spfs_repo::Digest::NULL);
    assert!(root.join("tags/studio/show/shot/comp.tag").exists());
    let top: TagSpec = "toplevel".parse().unwrap();
    plain.push_tag(&top, target, &author()).unwrap();
    assert!(root.join("tags/toplevel.tag").exists());

    let ns = FsRepository::open(&root)
        .unwrap()
        .with_tag_namespace(Some("team/alice".into()));
    let spec: TagSpec = "fixture/base".parse().unwrap();
    assert_eq!(
        ns.resolve_tag(&spec).unwrap(),
        None,
        "namespaces are separate"
    );
    ns.push_tag(&spec, target, &author()).unwrap();
    assert!(root.join("tags/team#ns/alice#ns/fixture/base.tag").exists());
    assert_eq!(ns.resolve_tag(&spec).unwrap().unwrap().target, target);
    assert_ne!(plain.resolve_tag(&spec).unwrap().unwrap().target, target);
}

#[test]
fn a_held_lock_is_waited_for() {
    let (_tmp, root) = fixture_copy("repo");
    let repo = FsRepository::open(&root).unwrap();
    let lock = root.join("tags/fixture/top.tag.lock");
    fs::write(&lock, "other writer").unwrap();
    let release = {
        let lock = lock.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            fs::remove_file(lock).unwrap();
        })
    };
    let target = repo
        .resolve_tag(&"fixture/base".parse().unwrap())
        .unwrap()
        .unwrap()
        .target;
    let started = std::time::Instant::now();
    repo.push_tag(&"fixture/top".parse().unwrap(), target, &author())
        .unwrap();
    assert!(started.elapsed() >= std::time::Duration::from_millis(250));
    release.join().unwrap();
    assert!(!lock.exists());
}

#[test]
fn platforms_round_trip_and_objects_are_not_rewritten() {
    let (_tmp, root) = fixture_copy("repo");
    let repo = FsRepository::open(&root).unwrap();
    let set = RepositorySet::new(repo.clone(), vec![], author());
    let layers: Vec<_> = set
        .resolve_stack(&EnvSpec::parse("fixture/base+fixture/top").unwrap())
        .unwrap()
        .into_iter()
        .map(|s| s.digest)
        .collect();
    let platform = commit::commit_platform(&repo, layers.clone()).unwrap();
    // upstream wrote the same platform: same digest, file untouched
    let upstream = set
        .resolve_tag(&"fixture/platform".parse().unwrap())
        .unwrap()
        .target;
    assert_eq!(platform, upstream);
    assert_eq!(
        fs::read(repo.object_path(&platform)).unwrap(),
        fs::read(
            fixtures()
                .join("repo")
                .join(repo.object_path(&platform).strip_prefix(&root).unwrap())
        )
        .unwrap()
    );
    // a new platform (top, base) reads back top-down as written
    let swapped = commit::commit_platform(&repo, vec![layers[1], layers[0]]).unwrap();
    let stack = set
        .resolve_stack(&EnvSpec::parse(&swapped.to_string()).unwrap())
        .unwrap();
    assert_eq!(
        stack.iter().map(|s| s.digest).collect::<Vec<_>>(),
        vec![layers[1], layers[0]]
    );
}

#[test]
fn commit_into_a_new_repository_and_read_back_with_secondaries() {
    let tmp = tempfile::tempdir().unwrap();
    let primary = FsRepository::open_or_create(tmp.path().join("local")).unwrap();
    assert_eq!(
        fs::read_to_string(tmp.path().join("local/VERSION")).unwrap(),
        "0.44.0"
    );
    let src = tempfile::tempdir().unwrap();
    fs::create_dir(src.path().join("d")).unwrap();
    fs::write(src.path().join("d/f"), b"hello").unwrap();
    std::os::unix::fs::symlink("d/f", src.path().join("l")).unwrap();
    let c = commit::commit_dir(&primary, src.path()).unwrap();
    assert_eq!((c.blobs, c.bytes), (2, 8));
    primary
        .push_tag(&"mine/layer".parse().unwrap(), c.layer, &author())
        .unwrap();
    assert!(fs::read_dir(tmp.path().join("local/objects/work"))
        .unwrap()
        .next()
        .is_none());
    assert!(fs::read_dir(tmp.path().join("local/payloads/work"))
        .unwrap()
        .next()
        .is_none());

    // the fixture repository as a read-only secondary behind the new primary
    let set = RepositorySet::new(
        primary,
        vec![FsRepository::open(fixtures().join("repo")).unwrap()],
        author(),
    );
    let stack = set
        .resolve_stack(&EnvSpec::parse("fixture/base+mine/layer").unwrap())
        .unwrap();
    let view = spfs_repo::View::build(&set.read_stack_manifests(&stack).unwrap()).unwrap();
    for path in ["d/f", "l", "hello.txt", "lib/big.bin"] {
        let id = view
            .resolve_path(path)
            .unwrap_or_else(|| panic!("{path} missing"));
        let payload = view.get(id).unwrap().payload().unwrap();
        set.payload_path(&payload).unwrap();
    }
}
