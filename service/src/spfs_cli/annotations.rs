//! Runtime annotations, as upstream keeps them: each key/value pair given
//! to `run --annotation` is a layer of its own (no manifest, one
//! annotation) on top of the runtime's stack; a value over 16 KiB is a
//! blob the annotation names. `info --get KEY` and `--get-all` (and
//! `runtime info`'s) read them back, the lowest layer's value of a key
//! first, as upstream does.

use std::collections::BTreeMap;
use std::io::Read;

use super::{CmdError, CmdResult};
use crate::repo::object::{Annotation, AnnotationValue, Layer, Object};
use crate::repo::{Digest, FsRepository};

/// Values longer than this are stored in a blob (upstream's default
/// `annotation_size_limit`).
const INLINE_LIMIT: usize = 16 * 1024;
/// An annotation file or value read is at most this long.
const MAX_READ: u64 = 16 << 20;

/// `--annotation` and `--annotation-file` of `run` and `shell`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct AnnotationArgs {
    /// Adds annotation key-value string data to the new runtime.
    ///
    /// Given as KEY=VALUE or KEY:VALUE, or several at once as a YAML or
    /// JSON mapping ('{name: value, other: value}'). Read back with `spfs
    /// info --get KEY` or `--get-all` in the runtime. If a key is given
    /// more than once, the last value wins.
    #[arg(long, value_name = "KEY:VALUE")]
    annotation: Vec<String>,
    /// Annotation key-value data from a YAML or JSON file ('-' for
    /// standard input); --annotation values supersede it.
    #[arg(long, value_name = "FILE")]
    annotation_file: Vec<std::path::PathBuf>,
}

/// `--get` and `--get-all` of `info` and `runtime info`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct AnnotationViewing {
    /// Output the data value for the given annotation key(s) from the
    /// active runtime. Each value is printed on its own line without its
    /// key.
    #[arg(long, alias = "annotation", value_name = "GET")]
    get: Option<Vec<String>>,
    /// Output all the annotation keys and values from the active runtime
    /// as a yaml dictionary.
    #[arg(long, alias = "all-annotations")]
    get_all: bool,
}

impl AnnotationViewing {
    /// True when the annotations are asked for, not the runtime.
    pub(crate) fn wanted(&self) -> bool {
        self.get_all || self.get.is_some()
    }

    /// Prints what was asked for from the runtime of stack `stack`
    /// (bottom first), as upstream prints it.
    pub(crate) fn print(&self, repo: &FsRepository, stack: &[Digest]) -> CmdResult {
        let layers = annotations_of(repo, stack)?;
        if self.get_all {
            let mut all = BTreeMap::new();
            for (key, value) in layers {
                all.insert(key, value);
            }
            println!("{}", serde_yaml::to_string(&all)?);
        } else if let Some(keys) = &self.get {
            for key in keys {
                match layers.iter().find(|(k, _)| k == key) {
                    Some((_, value)) => println!("{value}"),
                    None => {
                        super::log_warn(&format!("No annotation stored under: {key}"));
                        println!();
                    }
                }
            }
        }
        Ok(())
    }
}

/// Every annotation of the stack's layers, bottom layer first.
fn annotations_of(
    repo: &FsRepository,
    stack: &[Digest],
) -> Result<Vec<(String, String)>, CmdError> {
    let mut out = Vec::new();
    for digest in stack {
        let Some(Object::Layer(layer)) = repo.read_object(digest)? else {
            continue;
        };
        for a in layer.annotations {
            let value = match a.value {
                AnnotationValue::String(s) => s,
                AnnotationValue::Digest(blob) => blob_text(repo, &blob)?,
            };
            out.push((a.key, value));
        }
    }
    Ok(out)
}

/// The text a blob holds (an annotation value stored apart).
fn blob_text(repo: &FsRepository, blob: &Digest) -> Result<String, CmdError> {
    let payload = match repo.read_object(blob)? {
        Some(Object::Blob(b)) => b.payload,
        _ => *blob,
    };
    let path = repo.payload_path(&payload);
    let mut bytes = Vec::new();
    std::fs::File::open(&path)
        .and_then(|f| f.take(MAX_READ).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read annotation value {}: {e}", path.display()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

impl AnnotationArgs {
    /// The pairs given, in order: files first, then each --annotation.
    fn pairs(&self) -> Result<Vec<(String, String)>, CmdError> {
        let mut data = Vec::new();
        for file in &self.annotation_file {
            let mut text = String::new();
            let read = if file.as_os_str() == "-" {
                std::io::stdin().take(MAX_READ).read_to_string(&mut text)
            } else {
                std::fs::File::open(file).and_then(|f| f.take(MAX_READ).read_to_string(&mut text))
            };
            read.map_err(|e| format!("Failed to open annotation file: {}: {e}", file.display()))?;
            let map: BTreeMap<String, String> = serde_yaml::from_str(&text).map_err(|e| {
                format!(
                    "Failed to parse as annotation data key-value pairs: {}: {e}",
                    file.display()
                )
            })?;
            data.extend(map);
        }
        for pair in &self.annotation {
            let pair = pair.trim();
            if pair.starts_with('{') {
                let map: BTreeMap<String, String> = serde_yaml::from_str(pair).map_err(|e| {
                    format!("--annotation value looked like yaml, but could not be parsed: {e}")
                })?;
                data.extend(map);
                continue;
            }
            let (key, value) = pair
                .split_once('=')
                .or_else(|| pair.split_once(':'))
                .ok_or_else(|| {
                    format!("Invalid option: -annotation {pair} (should be in the form name=value)")
                })?;
            data.push((key.to_owned(), value.to_owned()));
        }
        Ok(data)
    }

    /// Writes a layer for each pair given to `repo` and returns their
    /// digests in the order they go on the stack (upstream's: the last
    /// given lowest, so that it is found first).
    pub(crate) fn write_layers(&self, repo: &FsRepository) -> Result<Vec<Digest>, CmdError> {
        let mut layers = Vec::new();
        for (key, value) in self.pairs()?.into_iter().rev() {
            let value = if value.len() <= INLINE_LIMIT {
                AnnotationValue::String(value)
            } else {
                let (payload, size) = repo.write_payload(value.as_bytes())?;
                let blob = crate::repo::object::Blob { payload, size };
                AnnotationValue::Digest(repo.write_object(&Object::Blob(blob))?)
            };
            let layer = Object::Layer(Layer {
                manifest: None,
                annotations: vec![Annotation { key, value }],
            });
            layers.push(
                repo.write_object(&layer)
                    .map_err(|e| format!("Cannot use '--annotation' in this repository: {e}"))?,
            );
        }
        Ok(layers)
    }
}
