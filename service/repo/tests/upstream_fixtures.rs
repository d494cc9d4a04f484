//! The repository library against repositories written by upstream spfs:
//! every object decodes to its own digest, every recorded ref shows exactly
//! the recorded merged view, and committing the recorded sources gives the
//! recorded layer digests.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use spfs_repo::object::{DigestStrategy, EncodingFormat, Object};
use spfs_repo::{commit, Digest, EnvSpec, FsRepository, NodeId, NodeKind, RepositorySet, View};

/// The merged view of `spec` as the fixture's TSV lines.
fn view_lines(set: &RepositorySet, spec: &str) -> Vec<String> {
    let spec = EnvSpec::parse(spec).unwrap();
    let stack = set.resolve_stack(&spec).unwrap();
    let manifests = set.read_stack_manifests(&stack).unwrap();
    let view = View::build(&manifests).unwrap();
    let mut lines = Vec::new();
    for id in view.walk(NodeId::ROOT) {
        let n = view.get(id).unwrap();
        let path = view.path_of(id);
        let perm = format!("{:o}", n.permissions());
        let line = match n.kind() {
            NodeKind::Dir => format!("{path}\tdir\t{perm}\t-\t-"),
            NodeKind::File => {
                let data = fs::read(set.payload_path(&n.payload().unwrap()).unwrap()).unwrap();
                assert_eq!(data.len() as u64, n.size(), "{path}: size");
                format!("{path}\tfile\t{perm}\t{}\t{}", n.size(), sha256_hex(&data))
            }
            NodeKind::Symlink => {
                let target =
                    fs::read_to_string(set.payload_path(&n.payload().unwrap()).unwrap()).unwrap();
                format!("{path}\tsymlink\t{perm}\t{}\t{target}", n.size())
            }
        };
        lines.push(line);
    }
    lines.sort();
    lines
}

#[test]
fn every_object_decodes_to_its_own_digest() {
    for name in REPOS {
        let repo = FsRepository::open(fixtures().join(name)).unwrap();
        let mut count = 0;
        for shard in fs::read_dir(fixtures().join(name).join("objects")).unwrap() {
            let shard = shard.unwrap();
            for f in fs::read_dir(shard.path()).unwrap() {
                let f = f.unwrap();
                let text = format!(
                    "{}{}",
                    shard.file_name().to_str().unwrap(),
                    f.file_name().to_str().unwrap()
                );
                let digest = Digest::parse(&text).unwrap();
                // read_object verifies the digest of what it decoded
                let obj = repo.read_object(&digest).unwrap().unwrap();
                if let Object::Blob(b) = obj {
                    assert!(repo.has_payload(&b.payload), "{name}: payload of {digest}");
                }
                count += 1;
            }
        }
        assert_eq!(count, 225, "{name}: objects checked");
    }
}

#[test]
fn merged_views_match_upstream() {
    for name in REPOS {
        let set = fixture_set(name);
        for (spec, tsv) in expected_views() {
            let expected: Vec<String> = fs::read_to_string(&tsv)
                .unwrap()
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect();
            let actual = view_lines(&set, &spec);
            if actual != expected {
                let missing: Vec<_> = expected.iter().filter(|l| !actual.contains(l)).collect();
                let extra: Vec<_> = actual.iter().filter(|l| !expected.contains(l)).collect();
                panic!("{name} {spec}: view differs\nmissing: {missing:#?}\nextra: {extra:#?}");
            }
        }
    }
}

#[test]
fn tags_resolve_with_history() {
    for name in REPOS {
        let set = fixture_set(name);
        let tag = |s: &str| set.resolve_tag(&s.parse().unwrap()).unwrap();
        assert_eq!(tag("fixture/moving").target, tag("fixture/top").target);
        assert_eq!(tag("fixture/moving~1").target, tag("fixture/base").target);
        // each record's parent is the digest of the one it replaced
        assert_eq!(
            tag("fixture/moving").parent,
            tag("fixture/moving~1").digest()
        );
        assert_eq!(tag("fixture/moving~1").parent, Digest::NULL);
        let err = set
            .resolve_tag(&"fixture/moving~2".parse().unwrap())
            .unwrap_err();
        assert!(err.to_string().contains("has only 2 version"), "{err}");
        let err = set
            .resolve_tag(&"fixture/nope".parse().unwrap())
            .unwrap_err();
        assert!(
            err.to_string().contains("unknown reference 'fixture/nope'"),
            "{err}"
        );
    }
}

#[test]
fn platform_expands_bottom_up() {
    for name in REPOS {
        let set = fixture_set(name);
        let platform = set
            .resolve_stack(&EnvSpec::parse("fixture/platform").unwrap())
            .unwrap();
        let pair = set
            .resolve_stack(&EnvSpec::parse("fixture/base+fixture/top").unwrap())
            .unwrap();
        assert_eq!(platform, pair);
        assert_eq!(platform.len(), 2);
    }
}

/// Extracts `sources.tar` (as root, so whiteouts become char devices 0/0).
fn extract_sources() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("tar")
        .arg("-xpf")
        .arg(fixtures().join("sources.tar"))
        .arg("-C")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success(), "tar failed");
    use std::os::unix::fs::FileTypeExt;
    let whiteout = fs::symlink_metadata(dir.path().join("top/bin/other")).unwrap();
    assert!(
        whiteout.file_type().is_char_device(),
        "sources.tar whiteouts did not extract as character devices (this test needs root)"
    );
    dir
}

fn commit_sources_into(
    root: &Path,
    strategy: DigestStrategy,
    encoding: EncodingFormat,
    expected: &str,
) {
    let sources = extract_sources();
    let repo = FsRepository::open_or_create(root)
        .unwrap()
        .with_write_format(strategy, encoding);
    for (tag, want) in expected_layer_digests(expected) {
        let dir = sources.path().join(tag.trim_start_matches("fixture/"));
        let got = commit::commit_dir(&repo, &dir).unwrap();
        assert_eq!(
            got.layer.to_string(),
            want,
            "{expected}: layer digest of {}",
            dir.display()
        );
        // what was written reads back: the layer, its manifest, every payload
        let set = RepositorySet::new(
            repo.clone(),
            vec![],
            spfs_repo::tags::TagAuthor("t@h".into()),
        );
        let layer = set.read_object(&got.layer).unwrap();
        let Object::Layer(layer) = layer else {
            panic!("not a layer")
        };
        assert_eq!(layer.manifest, Some(got.manifest));
        let view = View::build(&[set.read_manifest(&got.manifest).unwrap()]).unwrap();
        for id in view.walk(NodeId::ROOT) {
            let node = view.get(id).unwrap();
            let rel = view.path_of(id);
            let src = dir.join(&rel);
            match node.kind() {
                NodeKind::File => assert_eq!(
                    fs::read(set.payload_path(&node.payload().unwrap()).unwrap()).unwrap(),
                    fs::read(&src).unwrap(),
                    "{rel}"
                ),
                NodeKind::Symlink => assert_eq!(
                    fs::read_to_string(set.payload_path(&node.payload().unwrap()).unwrap())
                        .unwrap(),
                    fs::read_link(&src).unwrap().to_str().unwrap(),
                    "{rel}"
                ),
                NodeKind::Dir => assert!(src.is_dir(), "{rel}"),
            }
        }
    }
}

#[test]
fn committing_sources_gives_upstream_digests() {
    let dir = tempfile::tempdir().unwrap();
    commit_sources_into(
        &dir.path().join("new"),
        DigestStrategy::WithKindAndSalt,
        EncodingFormat::FlatBuffers,
        "repo",
    );
}

#[test]
fn committing_sources_gives_upstream_legacy_digests() {
    let dir = tempfile::tempdir().unwrap();
    commit_sources_into(
        &dir.path().join("legacy"),
        DigestStrategy::Legacy,
        EncodingFormat::Legacy,
        "repo-legacy",
    );
}

#[test]
fn reencoding_round_trips_and_legacy_bytes_are_identical() {
    // Re-encode every fixture object in its own format and decode it again:
    // same object, same digest. (Flatbuffer bytes may differ from upstream's
    // layout, which no digest depends on.)
    for name in REPOS {
        let repo = FsRepository::open(fixtures().join(name)).unwrap();
        for shard in fs::read_dir(fixtures().join(name).join("objects")).unwrap() {
            let shard = shard.unwrap();
            for f in fs::read_dir(shard.path()).unwrap() {
                let path = f.unwrap().path();
                let bytes = fs::read(&path).unwrap();
                let (header, obj) = Object::decode(&bytes).unwrap();
                let again = obj.encode(header.strategy, header.encoding).unwrap();
                if header.encoding == EncodingFormat::Legacy {
                    assert_eq!(again, bytes, "{}: legacy bytes differ", path.display());
                }
                let (h2, obj2) = Object::decode(&again).unwrap();
                assert_eq!((h2, &obj2), (header, &obj));
                assert_eq!(obj2.digest(h2.strategy), obj.digest(header.strategy));
                let _ = &repo;
            }
        }
    }
}
