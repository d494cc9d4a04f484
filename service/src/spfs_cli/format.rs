//! How upstream's `spfs` writes digests, sizes and times.

use crate::repo::{Digest, FsRepository};

/// How a digest is shown (`--short`, `--tags`, or whole).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DigestFormat {
    /// All 56 characters.
    Full,
    /// The first 8 (what upstream's file repositories give).
    Short,
    /// Short, then every tag that names it: `ABCDEFGH -> org/a -> org/b~1`.
    ShortWithTags,
}

impl DigestFormat {
    /// The format `--short` and `--tags` ask for.
    pub(crate) fn from_flags(short: bool, tags: bool) -> Self {
        if tags {
            DigestFormat::ShortWithTags
        } else if short {
            DigestFormat::Short
        } else {
            DigestFormat::Full
        }
    }
}

/// Length of a short digest.
const SHORT: usize = 8;

/// `digest` as `format` asks, with the tags of `repo` for `ShortWithTags`.
pub(crate) fn digest(
    repo: &FsRepository,
    digest: &Digest,
    format: DigestFormat,
) -> Result<String, crate::repo::Error> {
    let text = digest.to_string();
    Ok(match format {
        DigestFormat::Full => text,
        DigestFormat::Short => short(digest),
        DigestFormat::ShortWithTags => {
            let mut all = vec![text[..SHORT].to_owned()];
            all.extend(aliases(repo, digest)?);
            all.join(" -> ")
        }
    })
}

/// The first characters of `digest`, as upstream shortens it.
pub(crate) fn short(digest: &Digest) -> String {
    digest.to_string()[..SHORT].to_owned()
}

/// Every tag (with its version, `org/name~N`, past the newest) that names
/// `digest`, sorted.
pub(crate) fn aliases(
    repo: &FsRepository,
    digest: &Digest,
) -> Result<Vec<String>, crate::repo::Error> {
    let mut out = Vec::new();
    for spec in repo.tag_specs()? {
        let Some(stream) = repo.read_tag_stream(&spec)? else {
            continue;
        };
        for (version, tag) in stream.iter().rev().enumerate() {
            if tag.target == *digest {
                out.push(spec.with_version(version as u64).to_string());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A size as upstream writes it: `1.0 Ki`, `12.3 Mi`, `512.0 B`.
pub(crate) fn size(bytes: u64) -> String {
    let mut size = bytes as f64;
    for unit in ["B", "Ki", "Mi", "Gi", "Ti"] {
        if size < 1024.0 {
            return format!("{size:3.1} {unit}");
        }
        size /= 1024.0;
    }
    format!("{size:3.1} Pi")
}

/// A tag's RFC 3339 time in the user's time zone, as upstream prints it
/// (`2026-11-23 20:40:54.581905 +00:00`); the text as it is if it does
/// not parse.
pub(crate) fn local_time(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.with_timezone(&chrono::Local).to_string())
        .unwrap_or_else(|_| rfc3339.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_written_as_upstream_writes_them() {
        assert_eq!(size(0), "0.0 B");
        assert_eq!(size(16), "16.0 B");
        assert_eq!(size(1023), "1023.0 B");
        assert_eq!(size(1024), "1.0 Ki");
        assert_eq!(size(1536), "1.5 Ki");
        assert_eq!(size(1 << 20), "1.0 Mi");
        assert_eq!(size(5 * (1 << 30)), "5.0 Gi");
    }

    #[test]
    fn times_are_shown_in_the_local_zone_with_their_fraction() {
        // (The zone is the machine's: only the shape is checked here; the
        // differential tests compare with upstream in the same zone.)
        let t = local_time("2026-11-23T20:40:54.581905Z");
        assert_eq!(t.len(), "2026-11-23 20:40:54.581905 +00:00".len(), "{t}");
        assert!(t.contains(":54.581905 "), "{t}");
        assert_eq!(local_time("not a time"), "not a time");
    }
}
