//! What a repository holds, listed: tag streams, the entries of a tag
//! directory, every object digest. (Upstream lists in the file system's
//! order; these are sorted, so a listing is stable.)

use std::fs;
use std::path::Path;

use crate::digest::{Digest, DIGEST_TEXT_LEN};
use crate::error::{Error, Result};
use crate::storage::FsRepository;
use crate::tags::TagSpec;

/// The file name suffix of a tag stream.
const TAG_SUFFIX: &str = ".tag";
/// The directory name suffix of a tag namespace.
const NAMESPACE_SUFFIX: &str = "#ns";
/// Deeper tag directories than this are not walked (a link loop).
const MAX_TAG_DEPTH: usize = 64;

/// One entry of a tag directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TagEntry {
    /// A directory of tags (`name/` when shown).
    Folder(String),
    /// A tag stream.
    Tag(String),
}

impl std::fmt::Display for TagEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TagEntry::Folder(n) => write!(f, "{n}/"),
            TagEntry::Tag(n) => f.write_str(n),
        }
    }
}

impl FsRepository {
    /// The entries of tag directory `path` (`/` or empty for the top),
    /// sorted; none if there is no such directory. Namespaces are not
    /// entries.
    pub fn ls_tags(&self, path: &str) -> Result<Vec<TagEntry>> {
        let mut dir = self.tags_root();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            if part == "." || part == ".." {
                return Ok(Vec::new());
            }
            dir.push(part);
        }
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(Vec::new())
            }
            Err(e) => return Err(Error::io("list tags", &dir)(e)),
        };
        let mut out = Vec::new();
        for e in entries {
            let e = e.map_err(Error::io("list tags", &dir))?;
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            if is_dir && !name.ends_with(NAMESPACE_SUFFIX) {
                out.push(TagEntry::Folder(name));
            } else if let Some(tag) = name.strip_suffix(TAG_SUFFIX).filter(|_| !is_dir) {
                out.push(TagEntry::Tag(tag.to_owned()));
            }
        }
        out.sort_by_key(ToString::to_string);
        Ok(out)
    }

    /// Every tag stream here (namespace applied), sorted by path.
    pub fn tag_specs(&self) -> Result<Vec<TagSpec>> {
        let mut out = Vec::new();
        walk_tags(&self.tags_root(), "", &mut out, 0)?;
        out.sort_by_key(|s| s.path());
        Ok(out)
    }

    /// The digest of every object here, sorted.
    pub fn object_digests(&self) -> Result<Vec<Digest>> {
        let objects = self.root().join("objects");
        let mut out = Vec::new();
        let shards = match fs::read_dir(&objects) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Error::io("list objects", &objects)(e)),
        };
        for shard in shards {
            let shard = shard.map_err(Error::io("list objects", &objects))?;
            let Ok(prefix) = shard.file_name().into_string() else {
                continue;
            };
            if prefix.len() != 2 || !shard.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let dir = shard.path();
            for e in fs::read_dir(&dir).map_err(Error::io("list objects", &dir))? {
                let e = e.map_err(Error::io("list objects", &dir))?;
                let Ok(rest) = e.file_name().into_string() else {
                    continue;
                };
                if prefix.len() + rest.len() != DIGEST_TEXT_LEN {
                    continue;
                }
                if let Ok(d) = Digest::parse(&format!("{prefix}{rest}")) {
                    out.push(d);
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

fn walk_tags(dir: &Path, prefix: &str, out: &mut Vec<TagSpec>, depth: usize) -> Result<()> {
    if depth > MAX_TAG_DEPTH {
        return Ok(());
    }
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("list tags", dir)(e)),
    };
    for e in entries {
        let e = e.map_err(Error::io("list tags", dir))?;
        let Ok(name) = e.file_name().into_string() else {
            continue;
        };
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            if !name.ends_with(NAMESPACE_SUFFIX) {
                walk_tags(&e.path(), &path, out, depth + 1)?;
            }
        } else if let Some(spec) = path.strip_suffix(TAG_SUFFIX) {
            if let Ok(spec) = TagSpec::parse(spec) {
                out.push(spec);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tags::TagAuthor;

    #[test]
    fn tags_and_objects_are_listed() {
        let d = tempfile::tempdir().unwrap();
        let repo = FsRepository::open_or_create(d.path().join("r")).unwrap();
        let (p, _) = repo.write_payload(&b"x"[..]).unwrap();
        let blob = repo
            .write_object(&crate::Object::Blob(crate::object::Blob {
                payload: p,
                size: 1,
            }))
            .unwrap();
        let who = TagAuthor("me@here".into());
        for t in ["org/b", "org/a", "top", "org/deep/c"] {
            repo.push_tag(&TagSpec::parse(t).unwrap(), blob, &who)
                .unwrap();
        }
        let names: Vec<String> = repo.tag_specs().unwrap().iter().map(|s| s.path()).collect();
        assert_eq!(names, ["org/a", "org/b", "org/deep/c", "top"]);
        let top: Vec<String> = repo
            .ls_tags("/")
            .unwrap()
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(top, ["org/", "top"]);
        let org: Vec<String> = repo
            .ls_tags("org")
            .unwrap()
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(org, ["a", "b", "deep/"]);
        assert!(repo.ls_tags("nope").unwrap().is_empty());
        assert!(repo.ls_tags("org/a").unwrap().is_empty());
        assert_eq!(repo.object_digests().unwrap(), [blob]);
    }
}
