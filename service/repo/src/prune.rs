//! Pruning tag history, as upstream's `spfs clean` prunes it: in each tag
//! stream, newest first (version 0 is the newest), a record goes when
//!
//! - it has the same target as `repeated_keep` or more newer records
//!   (`--prune-repeated`: 1, `--prune-repeated-keep N`), or
//! - its version is above `more_than`, or it is older than `older_than`,
//!   unless its version is below `keep_less_than` or it is newer than
//!   `keep_newer_than` (those keep it).
//!
//! Only the streams of the repository's tag namespace are pruned unless
//! `all_namespaces`. Runtime records (`spfs/runtimes/...`) are never
//! pruned: they are what live and saved runtimes are (upstream would
//! prune an old durable runtime's record; `spfs runtime prune` is for
//! those). A removal rewrites its stream atomically under the stream's
//! lock, removing exactly the records planned, so a tag pushed meanwhile
//! stays.

use std::path::PathBuf;

use chrono::{DateTime, FixedOffset};

use crate::tags::Tag;
use crate::{FsRepository, Result};

/// The tags of runtime records (see `runtime_records`): never pruned.
const RUNTIME_TAGS: &str = "spfs/runtimes";

/// Which records of a tag stream go (see the module's notes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rules {
    /// Keep this many records of one target; prune older ones.
    pub repeated_keep: Option<u64>,
    /// Prune records older than this.
    pub older_than: Option<DateTime<FixedOffset>>,
    /// Keep records newer than this.
    pub keep_newer_than: Option<DateTime<FixedOffset>>,
    /// Prune versions above this.
    pub more_than: Option<u64>,
    /// Keep versions below this.
    pub keep_less_than: Option<u64>,
    /// Prune every namespace's streams, not only the repository's own.
    pub all_namespaces: bool,
}

impl Rules {
    /// Whether these rules prune anything at all.
    pub fn is_empty(&self) -> bool {
        self.repeated_keep.is_none() && self.older_than.is_none() && self.more_than.is_none()
    }

    /// Upstream's `should_prune` for the record at `version`, written at
    /// `time` (a record whose time cannot be read is not judged by age).
    fn prune_by_age_or_version(&self, version: u64, time: Option<DateTime<FixedOffset>>) -> bool {
        if self.keep_less_than.is_some_and(|k| version < k) {
            return false;
        }
        if let (Some(keep), Some(t)) = (self.keep_newer_than, time) {
            if t > keep {
                return false;
            }
        }
        if self.more_than.is_some_and(|m| version > m) {
            return true;
        }
        matches!((self.older_than, time), (Some(limit), Some(t)) if t < limit)
    }
}

/// The records one stream loses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamPrune {
    /// The stream's file.
    pub file: PathBuf,
    /// The stream as people name it (`org/name`, with its namespace as
    /// `ns#ns/` in front when not the repository's own).
    pub name: String,
    /// The records that go, each with its version (0 is the newest).
    pub records: Vec<(u64, Tag)>,
    /// How many records the stream has.
    pub of: usize,
}

/// The records `rules` prune in `repo`, stream by stream (sorted by name).
pub fn plan(repo: &FsRepository, rules: &Rules) -> Result<Vec<StreamPrune>> {
    if rules.is_empty() {
        return Ok(Vec::new());
    }
    let (root, walk_namespaces) = if rules.all_namespaces {
        (repo.root().join("tags"), true)
    } else {
        (repo.tags_root(), false)
    };
    let mut files = Vec::new();
    crate::tags::stream_files(&root, "", walk_namespaces, 0, &mut files)?;
    let mut out = Vec::new();
    for (file, name) in files {
        if name == RUNTIME_TAGS
            || name.starts_with(&format!("{RUNTIME_TAGS}/"))
            || name.contains(&format!("#ns/{RUNTIME_TAGS}/"))
        {
            continue;
        }
        let stream = crate::tags::read_stream_file(&file)?;
        let records = prune_stream(&stream, rules);
        if !records.is_empty() {
            out.push(StreamPrune {
                file,
                name,
                records,
                of: stream.len(),
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The records of `stream` (oldest first, as stored) that `rules` prune,
/// with their versions, newest first.
fn prune_stream(stream: &[Tag], rules: &Rules) -> Vec<(u64, Tag)> {
    let mut seen = std::collections::HashMap::new();
    let mut out = Vec::new();
    for (version, tag) in stream.iter().rev().enumerate() {
        let version = version as u64;
        let count = seen.entry(tag.target).or_insert(0u64);
        if rules.repeated_keep.is_some_and(|keep| *count >= keep) {
            out.push((version, tag.clone()));
            continue;
        }
        *count += 1;
        let time = DateTime::parse_from_rfc3339(&tag.time).ok();
        if rules.prune_by_age_or_version(version, time) {
            out.push((version, tag.clone()));
        }
    }
    out
}

/// Removes the planned records; returns how many went (a record already
/// gone, or a stream rewritten meanwhile without it, is not an error).
pub fn execute(repo: &FsRepository, plan: &[StreamPrune]) -> Result<usize> {
    let mut removed = 0;
    for s in plan {
        let records: Vec<Tag> = s.records.iter().map(|(_, t)| t.clone()).collect();
        removed += repo.remove_tag_records(&s.file, &records)?;
    }
    Ok(removed)
}

/// An age as upstream's clean takes it (`1y`, `8w`, `10d`, `3h`, `4m`,
/// `8s`; a year is 52 weeks), as the time that long before now.
pub fn age_to_time(age: &str) -> std::result::Result<DateTime<FixedOffset>, String> {
    let split = age.char_indices().last().map_or(0, |(i, _)| i);
    let (num, unit) = age.split_at(split);
    let n: i64 = num
        .parse()
        .map_err(|_| format!("invalid age '{age}': give a number and a unit, as 10d"))?;
    if n < 0 {
        return Err(format!("provided age must be greater than zero: '{age}'"));
    }
    let span = match unit {
        "y" => chrono::Duration::try_weeks(n.saturating_mul(52)),
        "w" => chrono::Duration::try_weeks(n),
        "d" => chrono::Duration::try_days(n),
        "h" => chrono::Duration::try_hours(n),
        "m" => chrono::Duration::try_minutes(n),
        "s" => chrono::Duration::try_seconds(n),
        _ => {
            return Err(format!(
                "Unknown age postfix: '{unit}', must be one of y, w, d, h, m, s"
            ))
        }
    }
    .ok_or_else(|| format!("age '{age}' is too long"))?;
    let now = chrono::Utc::now().fixed_offset();
    now.checked_sub_signed(span)
        .ok_or_else(|| format!("age '{age}' is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tags::{TagAuthor, TagSpec};
    use crate::Digest;

    fn tag(target: u8, time: &str) -> Tag {
        Tag {
            org: "a".into(),
            name: "b".into(),
            target: Digest::from_bytes([target; 32]),
            user: "u@h".into(),
            time: time.into(),
            parent: Digest::NULL,
        }
    }

    fn versions(stream: &[Tag], rules: &Rules) -> Vec<u64> {
        prune_stream(stream, rules)
            .into_iter()
            .map(|(v, _)| v)
            .collect()
    }

    #[test]
    fn rules_prune_as_upstreams_clean() {
        // Oldest first, as stored: versions 4 3 2 1 0.
        let stream = vec![
            tag(1, "2020-01-01T00:00:00Z"),
            tag(2, "2021-01-01T00:00:00Z"),
            tag(1, "2022-01-01T00:00:00Z"),
            tag(1, "2023-01-01T00:00:00Z"),
            tag(3, "2024-01-01T00:00:00Z"),
        ];
        let t = |s: &str| Some(DateTime::parse_from_rfc3339(s).unwrap());
        assert_eq!(versions(&stream, &Rules::default()), Vec::<u64>::new());
        // Target 1 is versions 1, 2 and 4: keeping one, 2 and 4 go.
        let repeated = Rules {
            repeated_keep: Some(1),
            ..Rules::default()
        };
        assert_eq!(versions(&stream, &repeated), [2, 4]);
        let keep_two = Rules {
            repeated_keep: Some(2),
            ..Rules::default()
        };
        assert_eq!(versions(&stream, &keep_two), [4]);
        let more_than = Rules {
            more_than: Some(2),
            ..Rules::default()
        };
        assert_eq!(versions(&stream, &more_than), [3, 4]);
        let older = Rules {
            older_than: t("2022-06-01T00:00:00Z"),
            ..Rules::default()
        };
        assert_eq!(versions(&stream, &older), [2, 3, 4]);
        // Keeps win over prunes.
        let kept = Rules {
            older_than: t("2022-06-01T00:00:00Z"),
            keep_newer_than: t("2020-06-01T00:00:00Z"),
            ..Rules::default()
        };
        assert_eq!(versions(&stream, &kept), [4]);
        let kept = Rules {
            more_than: Some(0),
            keep_less_than: Some(3),
            ..Rules::default()
        };
        assert_eq!(versions(&stream, &kept), [3, 4]);
    }

    #[test]
    fn ages_are_upstreams() {
        let day = age_to_time("1d").unwrap();
        let diff = chrono::Utc::now().fixed_offset() - day;
        assert!((diff.num_seconds() - 86_400).abs() < 5);
        assert!(age_to_time("2x")
            .unwrap_err()
            .contains("Unknown age postfix"));
        assert!(age_to_time("-1d")
            .unwrap_err()
            .contains("greater than zero"));
        assert!(age_to_time("d").is_err());
        assert!(age_to_time("").is_err());
        assert!(age_to_time("99999999999999y").is_err());
    }

    #[test]
    fn a_prune_removes_what_it_planned_and_never_runtime_records() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = FsRepository::open_or_create(tmp.path()).unwrap();
        let who = TagAuthor("u@h".into());
        let spec = TagSpec::parse("a/b").unwrap();
        let rt = TagSpec::parse("spfs/runtimes/meta/x").unwrap();
        for n in [1u8, 2, 3] {
            repo.push_tag(&spec, Digest::from_bytes([n; 32]), &who)
                .unwrap();
            repo.push_tag(&rt, Digest::from_bytes([n; 32]), &who)
                .unwrap();
        }
        let rules = Rules {
            more_than: Some(0),
            ..Rules::default()
        };
        let planned = plan(&repo, &rules).unwrap();
        assert_eq!(planned.len(), 1, "{planned:?}");
        assert_eq!(planned[0].name, "a/b");
        assert_eq!(planned[0].of, 3);
        // A tag pushed after the plan stays.
        repo.push_tag(&spec, Digest::from_bytes([4; 32]), &who)
            .unwrap();
        assert_eq!(execute(&repo, &planned).unwrap(), 2);
        let left = repo.read_tag_stream(&spec).unwrap().unwrap();
        let targets: Vec<Digest> = left.iter().map(|t| t.target).collect();
        assert_eq!(
            targets,
            [Digest::from_bytes([3; 32]), Digest::from_bytes([4; 32])]
        );
        assert_eq!(repo.read_tag_stream(&rt).unwrap().unwrap().len(), 3);
        // Done again: nothing left to remove.
        assert_eq!(execute(&repo, &planned).unwrap(), 0);
    }
}
