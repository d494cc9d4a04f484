//! `ls REF [PATH]`: a directory of what REF names, as upstream's `spfs ls`
//! lists it (the merged manifest, masks included).

use std::collections::BTreeMap;

use crate::repo::object::{mode, EntryKind};
use crate::repo::tags::TagAuthor;
use crate::repo::{EnvSpec, EnvSpecItem, RepositorySet};

use super::diff::{merged, Node};
use super::format;
use super::{CmdError, CmdResult, Repositories};

#[derive(Debug, clap::Args)]
pub(crate) struct LsArgs {
    #[command(flatten)]
    repos: Repositories,
    /// List directories below, each in turn.
    #[arg(short = 'R', long)]
    recursive: bool,
    /// Long listing: mode, user, size, time.
    #[arg(short = 'l')]
    long: bool,
    /// Sizes in human-readable units.
    #[arg(short = 'H', long = "human-readable")]
    human_readable: bool,
    /// The tag or digest to list.
    #[arg(value_name = "REF")]
    reference: String,
    /// The directory to list [default: the top].
    #[arg(default_value = "/spfs")]
    path: String,
}

/// How entries are printed.
struct Style {
    long: bool,
    recursive: bool,
    human: bool,
    user: String,
    modified: String,
}

impl Style {
    fn size(&self, n: u64) -> String {
        if self.human {
            format::size(n)
        } else {
            n.to_string()
        }
    }

    fn entry(&self, name: &str, e: &Node, width: usize) {
        let suffix = if e.kind == EntryKind::Tree { "/" } else { "" };
        if self.long {
            println!(
                "{} {} {:>width$} {} {name}{suffix}",
                mode_string(e.mode),
                self.user,
                self.size(e.total_size()),
                self.modified
            );
        } else if self.recursive {
            print!("{name}{suffix}  ");
        } else {
            println!("{name}{suffix}");
        }
    }

    /// The widest size among `entries` (sizes are right-aligned).
    fn width(&self, entries: &BTreeMap<String, Node>) -> usize {
        entries
            .values()
            .map(|e| self.size(e.total_size()).len())
            .max()
            .unwrap_or(0)
    }
}

/// `ls [-l] [-R] [-H] REF [PATH]`: the entries of PATH (sorted; `name/`
/// for directories), long with `-l` (the tag's author and time, for a
/// tag), every directory below in turn with `-R`.
pub(crate) fn ls(args: LsArgs) -> CmdResult {
    let repo = args.repos.open()?;
    let (mut user, mut modified) = (String::new(), String::new());
    if let Ok(spec) = EnvSpec::parse(&args.reference) {
        if let [EnvSpecItem::Tag(t)] = spec.items.as_slice() {
            if let Some(tag) = repo.resolve_tag(t)? {
                user = tag.user.split('@').next().unwrap_or_default().to_owned();
                modified = chrono::DateTime::parse_from_rfc3339(&tag.time)
                    .map(|t| {
                        t.with_timezone(&chrono::Utc)
                            .format("%b %e %H:%M")
                            .to_string()
                    })
                    .unwrap_or_default();
            }
        }
    }
    let style = Style {
        long: args.long,
        recursive: args.recursive,
        human: args.human_readable,
        user,
        modified,
    };
    let set = RepositorySet::new(repo, Vec::new(), TagAuthor(String::new()));
    // (One object, as upstream's: a tag or digest, not a stack.)
    super::objects::read_ref(set.primary(), &args.reference)?;
    let root = merged(&set, &args.reference)?;
    let rel = args.path.strip_prefix("/spfs").unwrap_or(&args.path);
    let mut at: Option<&BTreeMap<String, Node>> = Some(&root);
    let mut found: Option<&Node> = None;
    for part in rel.split('/').filter(|p| !p.is_empty()) {
        found = at.and_then(|entries| entries.get(part));
        at = found
            .filter(|n| n.kind == EntryKind::Tree)
            .map(|n| &n.children);
    }
    let Some(entries) = at else {
        let message = if found.is_some() {
            format!("path is not a directory: {}", args.path)
        } else {
            format!("path not found in manifest: {}", args.path)
        };
        // (upstream logs this one rather than reporting it)
        return Err(CmdError {
            diagnostic: None,
            message,
            causes: Vec::new(),
            logged: true,
            status: 1,
        });
    };
    if !args.recursive {
        let width = style.width(entries);
        for (name, e) in entries {
            style.entry(name, e, width);
        }
        return Ok(());
    }
    let mut level: Vec<(String, &BTreeMap<String, Node>)> = vec![(".".to_owned(), entries)];
    while !level.is_empty() {
        let mut next = Vec::new();
        for (dir, entries) in &level {
            println!("{dir}:");
            let width = style.width(entries);
            for (name, e) in entries.iter() {
                style.entry(name, e, width);
                if !e.children.is_empty() {
                    next.push((format!("{dir}/{name}"), &e.children));
                }
            }
            println!();
            if !style.long {
                println!();
            }
        }
        level = next;
    }
    Ok(())
}

/// `drwxr-xr-x`, as `ls -l` writes a mode.
fn mode_string(m: u32) -> String {
    let kind = match m & mode::S_IFMT {
        mode::S_IFDIR => 'd',
        mode::S_IFLNK => 'l',
        mode::S_IFCHR => 'c',
        0o060000 => 'b',
        0o010000 => 'p',
        0o140000 => 's',
        _ => '-',
    };
    let mut s = String::with_capacity(10);
    s.push(kind);
    let bit = |on: bool, c: char| if on { c } else { '-' };
    for (shift, special, lower, upper) in [
        (6, 0o4000, 's', 'S'),
        (3, 0o2000, 's', 'S'),
        (0, 0o1000, 't', 'T'),
    ] {
        let p = (m >> shift) & 7;
        s.push(bit(p & 4 != 0, 'r'));
        s.push(bit(p & 2 != 0, 'w'));
        s.push(match (m & special != 0, p & 1 != 0) {
            (true, true) => lower,
            (true, false) => upper,
            (false, true) => 'x',
            (false, false) => '-',
        });
    }
    s
}

#[cfg(test)]
mod tests {
    use super::mode_string;

    #[test]
    fn modes_are_written_as_ls_writes_them() {
        assert_eq!(mode_string(0o040755), "drwxr-xr-x");
        assert_eq!(mode_string(0o100644), "-rw-r--r--");
        assert_eq!(mode_string(0o120777), "lrwxrwxrwx");
        assert_eq!(mode_string(0o020644), "crw-r--r--");
        assert_eq!(mode_string(0o104755), "-rwsr-xr-x");
        assert_eq!(mode_string(0o041777), "drwxrwxrwt");
        assert_eq!(mode_string(0o102644), "-rw-r-Sr--");
    }
}
