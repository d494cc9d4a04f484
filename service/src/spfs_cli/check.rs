//! `check [REF]...`: a repository's integrity, as upstream checks and
//! reports it — every object (or those REFs reach) read and verified,
//! each blob's payload looked for.

use std::collections::HashSet;

use crate::repo::object::EntryKind;
use crate::repo::{Digest, EnvSpec, EnvSpecItem, FsRepository, Object};

use super::{CmdError, CmdResult, Repositories};

#[derive(Debug, clap::Args)]
pub(crate) struct CheckArgs {
    #[command(flatten)]
    repos: Repositories,
    /// Repair what is missing from this remote (default: origin).
    #[arg(long, value_name = "PULL", num_args = 0..=1)]
    pull: Option<Option<String>>,
    /// Tags or digests to check, with what they reach [default: every
    /// object].
    #[arg(value_name = "REF")]
    reference: Vec<String>,
}

/// Fetches a missing object with all it reaches (`None`), or a missing
/// payload of a known size (`Some(size)`), from the repair source; true
/// if it came.
type Repair<'r> = &'r dyn Fn(&Digest, Option<u64>) -> bool;

/// What a check found.
#[derive(Default)]
struct Summary<'r> {
    repair: Option<Repair<'r>>,
    repaired_objects: u64,
    repaired_payloads: u64,
    visited: HashSet<Digest>,
    checked_tags: u64,
    missing_tags: u64,
    checked_objects: u64,
    missing_objects: HashSet<Digest>,
    checked_payloads: u64,
    missing_payloads: HashSet<Digest>,
    payload_bytes: u64,
}

impl Summary<'_> {
    /// Checks object `d` and everything it reaches, once each.
    fn object(&mut self, repo: &FsRepository, d: Digest) -> Result<(), CmdError> {
        let mut todo = vec![d];
        while let Some(d) = todo.pop() {
            if !self.visited.insert(d) {
                continue;
            }
            let object = match repo.read_object(&d)? {
                Some(o) => o,
                None => {
                    // Repaired: fetched with all it reaches, then checked.
                    let fetched = self.repair.is_some_and(|r| r(&d, None));
                    match repo.read_object(&d)?.filter(|_| fetched) {
                        Some(o) => {
                            self.repaired_objects += 1;
                            o
                        }
                        None => {
                            self.missing_objects.insert(d);
                            continue;
                        }
                    }
                }
            };
            self.checked_objects += 1;
            match object {
                Object::Platform(p) => todo.extend(p.layers.iter().rev()),
                Object::Layer(l) => todo.extend(l.manifest),
                Object::Manifest(m) => {
                    for t in m.trees.iter().rev() {
                        for e in t.entries.iter().rev() {
                            if e.kind == EntryKind::Blob {
                                todo.push(e.object);
                            }
                        }
                    }
                }
                Object::Blob(b) => {
                    if repo.has_payload(&b.payload) {
                        self.checked_payloads += 1;
                        self.payload_bytes += b.size;
                    } else if self.repair.is_some_and(|r| r(&b.payload, Some(b.size)))
                        && repo.has_payload(&b.payload)
                    {
                        // (upstream counts the blob repaired too)
                        self.checked_payloads += 1;
                        self.repaired_payloads += 1;
                        self.repaired_objects += 1;
                        self.payload_bytes += b.size;
                    } else {
                        self.missing_payloads.insert(b.payload);
                    }
                }
            }
        }
        Ok(())
    }
}

/// `check [--pull [REMOTE]] [REF]...`: what was visited and what is
/// missing; status 1 if an object or payload is missing.
pub(crate) fn check(args: CheckArgs) -> CmdResult {
    // The repair source: --pull's remote (origin when none is named).
    let pull_from = args
        .pull
        .as_ref()
        .map(|name| name.clone().unwrap_or_else(|| "origin".to_owned()));
    if pull_from.is_some() && pull_from == args.repos.remote {
        return Err("Cannot --pull from same repo as --remote".into());
    }
    let repo = args.repos.open()?;
    let source = match &pull_from {
        None => None,
        Some(name) => {
            let config = crate::repo::Config::load()?;
            Some(spfs_remote::open_named(&config, name).map_err(|e| e.to_string())?)
        }
    };
    let local = spfs_remote::LocalStore::local(repo.clone());
    let progress = spfs_remote::Progress::new();
    let fetch = |d: &Digest, payload: Option<u64>| {
        source.as_ref().is_some_and(|src| {
            let options = spfs_remote::SyncOptions {
                payloads: true,
                concurrency: 4,
                ..spfs_remote::SyncOptions::default()
            };
            let syncer = spfs_remote::Syncer::new(src.as_ref(), &local, options, &progress);
            match payload {
                None => syncer.sync_digest(d).is_ok(),
                Some(size) => syncer.sync_payload(d, Some(size)).is_ok(),
            }
        })
    };
    let started = std::time::Instant::now();
    let mut s = Summary {
        repair: source.is_some().then_some(&fetch as Repair),
        ..Summary::default()
    };
    if args.reference.is_empty() {
        for d in repo.object_digests()? {
            s.object(&repo, d)?;
        }
    } else {
        for reference in &args.reference {
            let spec = EnvSpec::parse(reference)?;
            let mut items = Vec::new();
            flatten(&spec.items, &mut items);
            for item in items {
                match item {
                    EnvSpecItem::Tag(t) => match repo.resolve_tag(t)? {
                        Some(tag) => {
                            s.checked_tags += 1;
                            s.object(&repo, tag.target)?;
                        }
                        None => s.missing_tags += 1,
                    },
                    EnvSpecItem::Digest(d) => s.object(&repo, *d)?,
                    EnvSpecItem::Partial(p) => {
                        let found = repo.find_digests(p)?;
                        match found.as_slice() {
                            [d] => s.object(&repo, *d)?,
                            [] => return Err(super::tags::unknown(p.as_str())),
                            _ => return Err(format!("Ambiguous reference: {}", p.as_str()).into()),
                        }
                    }
                    EnvSpecItem::SpecFile { .. } => {}
                }
            }
        }
    }
    println!("Finished after {:.0?}:", started.elapsed());
    println!(
        "{:>12} tags visited     ({} missing)",
        s.checked_tags, s.missing_tags
    );
    println!(
        "{:>12} objects visited  ({} missing, {} repaired)",
        s.checked_objects,
        s.missing_objects.len(),
        s.repaired_objects
    );
    println!(
        "{:>12} payloads visited ({} missing, {} repaired)",
        s.checked_payloads,
        s.missing_payloads.len(),
        s.repaired_payloads
    );
    println!("{:>12} total payload footprint", footprint(s.payload_bytes));
    if !s.missing_objects.is_empty() || !s.missing_payloads.is_empty() {
        if args.pull.is_none() {
            super::log_info("running with `--pull` may be able to resolve these issues");
        }
        // (upstream says no more than that, and exits 1)
        return Err(CmdError {
            diagnostic: None,
            causes: Vec::new(),
            logged: true,
            message: String::new(),
            status: 1,
        });
    }
    println!("No issues found");
    Ok(())
}

/// The items of `items`, spec files expanded.
fn flatten<'a>(items: &'a [EnvSpecItem], out: &mut Vec<&'a EnvSpecItem>) {
    for i in items {
        match i {
            EnvSpecItem::SpecFile { items, .. } => flatten(items, out),
            other => out.push(other),
        }
    }
}

/// Bytes as upstream's check writes them: `512 bytes`, `1.00 MiB`.
fn footprint(bytes: u64) -> String {
    const PREFIXES: [&str; 8] = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"];
    let mut amount = bytes as f64;
    if amount < 1024.0 {
        return format!("{amount} bytes");
    }
    let mut prefix = 0;
    amount /= 1024.0;
    while amount >= 1024.0 && prefix + 1 < PREFIXES.len() {
        amount /= 1024.0;
        prefix += 1;
    }
    format!("{amount:.2} {}B", PREFIXES.get(prefix).unwrap_or(&"Yi"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn footprints_are_written_as_upstream_writes_them() {
        assert_eq!(super::footprint(0), "0 bytes");
        assert_eq!(super::footprint(1023), "1023 bytes");
        assert_eq!(super::footprint(1024), "1.00 KiB");
        assert_eq!(super::footprint(1_048_576 + 10), "1.00 MiB");
        assert_eq!(super::footprint(3 << 30), "3.00 GiB");
    }
}
