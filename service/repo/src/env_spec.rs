//! Environment specs: what users type to name a stack of layers.
//!
//! `item+item+…`, bottom-up; `-` or an empty string is the empty environment.
//! Each item is tried as a full digest, a partial digest, a spec file (an
//! absolute path ending in `.spfs.yaml`, or a directory holding
//! `layer.spfs.yaml`), and otherwise a tag.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::digest::{Digest, PartialDigest};
use super::error::{Error, Result};
use super::tags::TagSpec;

/// Separator between items.
pub const SEPARATOR: char = '+';
/// The spelling of an explicitly empty environment.
pub const EMPTY: &str = "-";
const SPEC_FILE_SUFFIX: &str = ".spfs.yaml";
const DIR_SPEC_FILE: &str = "layer.spfs.yaml";
/// Deepest nesting of spec files that include spec files.
const MAX_SPEC_FILE_DEPTH: usize = 16;

/// One item of an env spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvSpecItem {
    /// A full digest.
    Digest(Digest),
    /// A digest prefix; if it matches no object, it is tried as a tag.
    Partial(PartialDigest),
    /// A tag.
    Tag(TagSpec),
    /// A runspec file and the items it lists (already expanded).
    SpecFile {
        /// The file.
        path: PathBuf,
        /// What it lists, in order.
        items: Vec<EnvSpecItem>,
    },
}

impl fmt::Display for EnvSpecItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvSpecItem::Digest(d) => d.fmt(f),
            EnvSpecItem::Partial(p) => p.fmt(f),
            EnvSpecItem::Tag(t) => t.fmt(f),
            EnvSpecItem::SpecFile { path, .. } => path.display().fmt(f),
        }
    }
}

/// A parsed env spec: items bottom-up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnvSpec {
    /// The items, bottom-up (later items are on top).
    pub items: Vec<EnvSpecItem>,
}

impl fmt::Display for EnvSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.items.is_empty() {
            return f.write_str(EMPTY);
        }
        for (i, item) in self.items.iter().enumerate() {
            if i > 0 {
                write!(f, "{SEPARATOR}")?;
            }
            item.fmt(f)?;
        }
        Ok(())
    }
}

impl EnvSpec {
    /// Parses an env spec, reading any spec files it names.
    pub fn parse(spec: &str) -> Result<Self> {
        let mut seen = Vec::new();
        parse_items(spec, &mut seen).map(|items| Self { items })
    }

    /// True for the empty environment.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

fn parse_items(spec: &str, seen: &mut Vec<PathBuf>) -> Result<Vec<EnvSpecItem>> {
    let trimmed = spec.trim();
    if trimmed.is_empty() || trimmed == EMPTY {
        return Ok(Vec::new());
    }
    trimmed
        .split(SEPARATOR)
        .map(|item| parse_item(spec, item, seen))
        .collect()
}

fn parse_item(spec: &str, item: &str, seen: &mut Vec<PathBuf>) -> Result<EnvSpecItem> {
    let item = item.trim();
    if item.is_empty() {
        return Err(Error::InvalidEnvSpec {
            spec: spec.to_owned(),
            reason: "it has an empty item (two '+' in a row, or a '+' at an end)".to_owned(),
        });
    }
    if let Ok(d) = Digest::parse(item) {
        return Ok(EnvSpecItem::Digest(d));
    }
    if let Ok(p) = PartialDigest::parse(item) {
        return Ok(EnvSpecItem::Partial(p));
    }
    if let Some(path) = spec_file_path(item) {
        return load_spec_file(&path, seen);
    }
    if looks_like_digest(item) {
        return Err(Error::MalformedDigest(item.to_owned()));
    }
    TagSpec::parse(item)
        .map(EnvSpecItem::Tag)
        .map_err(|e| Error::InvalidEnvSpec {
            spec: spec.to_owned(),
            reason: format!("'{item}' is not a digest, a .spfs.yaml file, or a tag: {e}"),
        })
}

/// Shaped like a (mistyped) digest: base32 capitals and digits with '='
/// padding, or as long as one. A tag has no '=' and is rarely that long.
fn looks_like_digest(item: &str) -> bool {
    let base32 = |c: char| c.is_ascii_uppercase() || ('2'..='7').contains(&c);
    item.len() >= 16
        && item.chars().all(|c| base32(c) || c == '=')
        && (item.contains('=') || item.len() >= 52)
}

/// The spec file an item names, if it names one: a path ending in
/// `.spfs.yaml`, or a directory holding `layer.spfs.yaml`; a relative path is
/// taken from the current directory.
fn spec_file_path(item: &str) -> Option<PathBuf> {
    let path = absolute(Path::new(item))?;
    if item.ends_with(SPEC_FILE_SUFFIX) {
        return Some(path);
    }
    // A relative name must say it is a path ("./dir"), or it is a tag.
    if !Path::new(item).is_absolute() && !item.starts_with("./") && !item.starts_with("../") {
        return None;
    }
    let in_dir = path.join(DIR_SPEC_FILE);
    (path.is_dir() && in_dir.is_file()).then_some(in_dir)
}

fn absolute(path: &Path) -> Option<PathBuf> {
    if path.is_absolute() {
        Some(path.to_owned())
    } else {
        std::env::current_dir().ok().map(|d| d.join(path))
    }
}

/// `spec` with every spec file it names as an absolute path, for another
/// process (the service) whose current directory is not this one's.
pub fn with_absolute_paths(spec: &str) -> String {
    let trimmed = spec.trim();
    if trimmed.is_empty() || trimmed == EMPTY {
        return spec.to_owned();
    }
    trimmed
        .split(SEPARATOR)
        .map(|item| {
            let item = item.trim();
            match spec_file_path(item) {
                Some(_) if !Path::new(item).is_absolute() => absolute(Path::new(item))
                    .map_or_else(|| item.to_owned(), |p| p.display().to_string()),
                _ => item.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(&SEPARATOR.to_string())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunSpecFile {
    api: String,
    #[serde(default)]
    layers: Vec<String>,
}

#[derive(Deserialize)]
struct ApiOnly {
    api: Option<String>,
}

fn load_spec_file(path: &Path, seen: &mut Vec<PathBuf>) -> Result<EnvSpecItem> {
    let fail = |reason: String| Error::SpecFile {
        path: path.to_owned(),
        reason,
    };
    let canonical = path
        .canonicalize()
        .map_err(|e| fail(format!("cannot be read: {e}")))?;
    if seen.contains(&canonical) {
        return Err(fail(
            "it includes itself (directly or through another spec file)".to_owned(),
        ));
    }
    if seen.len() >= MAX_SPEC_FILE_DEPTH {
        return Err(fail(format!(
            "spec files are nested more than {MAX_SPEC_FILE_DEPTH} deep"
        )));
    }
    let text = spfs_shared::bounded::read_to_string(&canonical, spfs_shared::bounded::SMALL)
        .map_err(|e| fail(format!("cannot be read: {e}")))?;
    let api: ApiOnly =
        serde_yaml::from_str(&text).map_err(|e| fail(format!("is not valid YAML: {e}")))?;
    match api.api.as_deref() {
        Some("spfs/v0/runspec") => {}
        Some("spfs/v0/livelayer") | Some("v0/livelayer") | Some("v0/layer") | None => {
            return Err(fail(
                "live layers (api: spfs/v0/livelayer) are not supported yet; use a runspec (api: spfs/v0/runspec) listing layers".to_owned(),
            ))
        }
        Some(other) => return Err(fail(format!("unknown api '{other}'; expected spfs/v0/runspec"))),
    }
    let runspec: RunSpecFile =
        serde_yaml::from_str(&text).map_err(|e| fail(format!("is not a valid runspec: {e}")))?;
    debug_assert_eq!(runspec.api, "spfs/v0/runspec");
    if runspec.layers.is_empty() {
        return Err(fail("its 'layers' list is empty".to_owned()));
    }
    seen.push(canonical.clone());
    let mut items = Vec::with_capacity(runspec.layers.len());
    for layer in &runspec.layers {
        items.push(
            parse_item(&layer.clone(), layer, seen).map_err(|e| match e {
                e @ Error::SpecFile { .. } => e,
                other => fail(other.to_string()),
            })?,
        );
    }
    seen.pop();
    Ok(EnvSpecItem::SpecFile {
        path: canonical,
        items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_specs() {
        assert!(EnvSpec::parse("").unwrap().is_empty());
        assert!(EnvSpec::parse("-").unwrap().is_empty());
        assert_eq!(EnvSpec::parse("-").unwrap().to_string(), "-");
    }

    #[test]
    fn items_in_order() {
        let d = Digest::of(b"x");
        let spec = EnvSpec::parse(&format!("fixture/base+{d}+7MYHT+a/b~2")).unwrap();
        assert_eq!(spec.items.len(), 4);
        assert!(matches!(spec.items[0], EnvSpecItem::Tag(_)));
        assert_eq!(spec.items[1], EnvSpecItem::Digest(d));
        assert!(matches!(spec.items[2], EnvSpecItem::Partial(_)));
        assert_eq!(spec.to_string(), format!("fixture/base+{d}+7MYHT+a/b~2"));
    }

    #[test]
    fn bad_items_name_the_item() {
        for (spec, needle) in [
            ("a++b", "empty item"),
            ("+a", "empty item"),
            ("ok/tag+bad tag", "'bad tag'"),
            ("x/../y", "'x/../y'"),
        ] {
            let err = EnvSpec::parse(spec).unwrap_err().to_string();
            assert!(err.contains(needle), "{spec}: {err}");
        }
    }

    #[test]
    fn runspec_files() {
        let dir = tempfile::tempdir().unwrap();
        let inner = dir.path().join("inner.spfs.yaml");
        std::fs::write(&inner, "api: spfs/v0/runspec\nlayers:\n  - fixture/top\n").unwrap();
        let outer = dir.path().join("outer.spfs.yaml");
        std::fs::write(
            &outer,
            format!(
                "# a stack\napi: spfs/v0/runspec\nlayers:\n  - fixture/base\n  - {}\n",
                inner.display()
            ),
        )
        .unwrap();
        let spec = EnvSpec::parse(&format!("{}+x/y", outer.display())).unwrap();
        let EnvSpecItem::SpecFile { items, .. } = &spec.items[0] else {
            panic!("expected a spec file item: {spec:?}")
        };
        assert_eq!(items.len(), 2);
        assert!(matches!(items[1], EnvSpecItem::SpecFile { .. }));

        // a directory holding layer.spfs.yaml
        let sub = dir.path().join("proj");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(
            sub.join("layer.spfs.yaml"),
            "api: spfs/v0/runspec\nlayers: [a/b]\n",
        )
        .unwrap();
        assert!(matches!(
            EnvSpec::parse(sub.to_str().unwrap()).unwrap().items[0],
            EnvSpecItem::SpecFile { .. }
        ));
    }

    #[test]
    fn bad_spec_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let selfref = dir.path().join("self.spfs.yaml");
        std::fs::write(
            &selfref,
            format!("api: spfs/v0/runspec\nlayers: [{}]\n", selfref.display()),
        )
        .unwrap();
        let cases = [
            (dir.path().join("missing.spfs.yaml"), "cannot be read"),
            (
                write("empty.spfs.yaml", "api: spfs/v0/runspec\nlayers: []\n"),
                "empty",
            ),
            (write("yaml.spfs.yaml", "api: [\n"), "not valid YAML"),
            (
                write("live.spfs.yaml", "api: spfs/v0/livelayer\ncontents: []\n"),
                "live layers",
            ),
            (
                write("other.spfs.yaml", "api: spfs/v9/thing\n"),
                "unknown api",
            ),
            (
                write(
                    "badref.spfs.yaml",
                    "api: spfs/v0/runspec\nlayers: ['no good']\n",
                ),
                "'no good'",
            ),
            (
                write(
                    "extra.spfs.yaml",
                    "api: spfs/v0/runspec\nlayers: [a/b]\nfoo: 1\n",
                ),
                "unknown field",
            ),
            (selfref, "includes itself"),
        ];
        for (path, needle) in cases {
            let err = EnvSpec::parse(path.to_str().unwrap())
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{}: {err}", path.display());
            assert!(
                err.contains(path.file_name().unwrap().to_str().unwrap()),
                "{err}"
            );
        }
    }
}
