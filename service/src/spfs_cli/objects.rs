//! `layers`, `platforms`, `info`, `read`: objects as upstream shows them.

use crate::repo::object::{AnnotationValue, EntryKind, Manifest, ObjectKind};
use crate::repo::tags::TagAuthor;
use crate::repo::{
    Digest, EnvSpec, EnvSpecItem, Error, FsRepository, NodeKind, Object, RepositorySet, View,
};

use super::format::{self, DigestFormat};
use super::tags::unknown;
use super::{CmdError, CmdResult, Repositories};

#[derive(Debug, clap::Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    repos: Repositories,
    /// Show the shortened form of each digest.
    #[arg(long)]
    short: bool,
    /// Show the tags that name each one.
    #[arg(long)]
    tags: bool,
}

/// `layers` / `platforms`: the digest of every object of `kind`.
pub(crate) fn list(args: ListArgs, kind: ObjectKind) -> CmdResult {
    let repo = args.repos.open()?;
    let how = DigestFormat::from_flags(args.short, args.tags);
    for d in repo.object_digests()? {
        // Objects that cannot be read are not of any kind worth listing.
        let Ok(Some(object)) = repo.read_object(&d) else {
            continue;
        };
        if object.kind() == kind {
            println!("{}", format::digest(&repo, &d, how)?);
        }
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub(crate) struct InfoArgs {
    #[command(flatten)]
    repos: Repositories,
    /// Tags or digests of objects to show.
    #[arg(value_name = "REF")]
    refs: Vec<String>,
    /// Also show what each object refers to (a layer's manifest, a
    /// platform's layers).
    #[arg(long)]
    follow: bool,
    /// Show sizes in human-readable units.
    #[arg(short = 'H', long = "human-readable")]
    human_readable: bool,
    /// Show the shortened form of each digest.
    #[arg(long)]
    short: bool,
    /// Show the tags that name each digest.
    #[arg(long)]
    tags: bool,
    #[command(flatten)]
    annotation: super::annotations::AnnotationViewing,
}

/// `info REF...`: each object, as upstream's YAML-like block.
pub(crate) fn info(args: InfoArgs, verbose: u8) -> CmdResult {
    let repo = args.repos.open()?;
    let how = DigestFormat::from_flags(args.short, args.tags);
    if args.refs.is_empty() {
        return active_runtime(&repo, how, args.human_readable, &args.annotation);
    }
    let d = |digest: &Digest| format::digest(&repo, digest, how);
    let mut queue: std::collections::VecDeque<String> = args.refs.iter().cloned().collect();
    while let Some(reference) = queue.pop_front() {
        let (digest, object) = read_ref(&repo, &reference)?;
        match object {
            Object::Platform(p) => {
                println!("{}:\nplatform:", d(&digest)?);
                println!(" refs: {}", d(&digest)?);
                println!("stack (top-down):");
                for layer in p.layers.iter().rev() {
                    println!("  - {}", d(layer)?);
                    if args.follow {
                        queue.push_back(layer.to_string());
                    }
                }
            }
            Object::Layer(l) => {
                println!("{}:\nlayer:", d(&digest)?);
                println!(" refs: {}", d(&digest)?);
                let manifest = match &l.manifest {
                    None => "None".to_owned(),
                    Some(m) => d(m)?,
                };
                println!(" manifest: {manifest}");
                if l.annotations.is_empty() {
                    println!(" annotations: none");
                }
                for a in &l.annotations {
                    println!(" annotations:");
                    println!("  key: {}", a.key);
                    let value = match &a.value {
                        AnnotationValue::String(s) => s.clone(),
                        AnnotationValue::Digest(b) => b.to_string(),
                    };
                    println!("  value: {value}");
                }
                if let (true, Some(m)) = (args.follow, &l.manifest) {
                    queue.push_back(m.to_string());
                }
            }
            Object::Manifest(m) => {
                println!("{}:\nmanifest:", d(&digest)?);
                let max = match verbose {
                    0 => 10,
                    1 => 50,
                    _ => usize::MAX,
                };
                for (count, (entry_mode, kind, object, path)) in walk(&m).into_iter().enumerate() {
                    if count >= max {
                        println!("   ...[truncated] use -vv for more");
                        break;
                    }
                    println!(" {entry_mode:06o} {kind} {} {path}", d(&object)?);
                }
            }
            Object::Blob(b) => {
                println!("{}:\n blob:", d(&b.payload)?);
                println!(" digest: {}", d(&b.payload)?);
                println!(" size: {}", format::size(b.size));
            }
        }
        if !queue.is_empty() {
            println!();
        }
    }
    let _ = args.human_readable;
    Ok(())
}

/// `info` with no reference: the runtime this process is in (named by
/// `SPFS_RUNTIME`, as `run` sets it), read from its record as upstream
/// reads it, each layer with its size.
fn active_runtime(
    repo: &FsRepository,
    how: DigestFormat,
    human: bool,
    annotation: &super::annotations::AnnotationViewing,
) -> CmdResult {
    let (name, record) = super::runtimes::active_record(repo)?;
    if annotation.wanted() {
        return annotation.print(repo, &record.stack()?);
    }
    // (Nothing is printed until every line is known.)
    let mut stack = Vec::new();
    for text in &record.status.stack {
        let digest = Digest::parse(text)?;
        let size = object_size(repo, &digest).map_or_else(
            || "unknown".to_owned(),
            |n| {
                if human {
                    format::size(n)
                } else {
                    n.to_string()
                }
            },
        );
        stack.push(format!(
            "  - {}, Size: {size}",
            format::digest(repo, &digest, how)?
        ));
    }
    println!("Active Runtime:");
    println!(" id: {name}");
    println!(" editable: {}", record.status.editable);
    println!("stack (top-down):");
    for line in stack {
        println!("{line}");
    }
    println!();
    // Upstream's test: an upper directory that has a size, or that
    // cannot be looked at, holds changes.
    let dirty = match std::fs::metadata(&record.config.upper_dir) {
        Ok(m) => m.len() != 0,
        Err(e) => e.kind() != std::io::ErrorKind::NotFound,
    };
    if dirty {
        println!("Run 'spfs diff' for active changes");
    } else {
        println!("No Active Changes");
    }
    Ok(())
}

/// The bytes object `digest` stands for, as upstream counts them: a
/// blob's size, the files (and links) a manifest holds, a layer's
/// manifest and annotations, a platform's layers. `None` if an object is
/// missing.
fn object_size(repo: &FsRepository, digest: &Digest) -> Option<u64> {
    // A platform of layers of manifests: three levels at most.
    let mut total = 0u64;
    let mut next = vec![*digest];
    for _ in 0..4 {
        let mut later = Vec::new();
        for d in next {
            match repo.read_object(&d).ok()?? {
                Object::Platform(p) => later.extend(p.layers.iter().copied()),
                Object::Layer(l) => {
                    later.extend(l.manifest);
                    for a in &l.annotations {
                        total += match &a.value {
                            AnnotationValue::String(s) => s.len() as u64,
                            AnnotationValue::Digest(_) => 32,
                        };
                    }
                }
                Object::Manifest(m) => {
                    total += manifest_size(&m);
                }
                Object::Blob(b) => total += b.size,
            }
        }
        if later.is_empty() {
            return Some(total);
        }
        next = later;
    }
    Some(total)
}

/// What the entries reachable from a manifest's root hold (directories
/// count nothing of their own).
fn manifest_size(m: &Manifest) -> u64 {
    let trees = m.tree_index();
    let mut total = 0u64;
    let mut stack = vec![(0usize, 0usize)];
    while let Some((tree, depth)) = stack.pop() {
        let Some(t) = m.trees.get(tree) else {
            continue;
        };
        for e in &t.entries {
            match e.kind {
                EntryKind::Tree if depth < crate::repo::view::MAX_DEPTH as usize => {
                    if let Some(&i) = trees.get(&e.object) {
                        stack.push((i, depth + 1));
                    }
                }
                EntryKind::Tree => {}
                _ => total += e.size,
            }
        }
    }
    total
}

/// The entries of manifest `m` from `/spfs` down, each directory's entries
/// before the next directory's: (mode, kind, object, path).
fn walk(m: &Manifest) -> Vec<(u32, &'static str, Digest, String)> {
    let trees = m.tree_index();
    let mut out = Vec::new();
    // (tree index, path) to walk; depth-first, names in tree order.
    let mut stack = vec![(0usize, String::from("/spfs"), 0usize)];
    while let Some((tree, path, depth)) = stack.pop() {
        let Some(t) = m.trees.get(tree) else {
            continue;
        };
        let mut subdirs = Vec::new();
        for e in &t.entries {
            let child = format!("{path}/{}", e.name);
            let (kind, object) = match e.kind {
                // A tree entry shows no object (upstream's tracking view).
                EntryKind::Tree => ("tree", Digest::NULL),
                EntryKind::Blob => ("file", e.object),
                EntryKind::Mask => ("mask", e.object),
            };
            out.push((e.mode, kind, object, child.clone()));
            if e.kind == EntryKind::Tree && depth < crate::repo::view::MAX_DEPTH as usize {
                if let Some(&i) = trees.get(&e.object) {
                    subdirs.push((i, child, depth + 1));
                }
            }
        }
        stack.extend(subdirs.into_iter().rev());
    }
    out
}

/// The digest `reference` names (a tag, a digest or a digest prefix) and
/// its object.
pub(crate) fn read_ref(repo: &FsRepository, reference: &str) -> Result<(Digest, Object), CmdError> {
    let set = RepositorySet::new(repo.clone(), Vec::new(), TagAuthor(String::new()));
    let spec = EnvSpec::parse(reference).map_err(|_| unknown(reference))?;
    let [item @ (EnvSpecItem::Digest(_) | EnvSpecItem::Partial(_) | EnvSpecItem::Tag(_))] =
        spec.items.as_slice()
    else {
        return Err(unknown(reference));
    };
    let digest = match set.resolve_item(item) {
        Ok(d) => d,
        Err(Error::UnknownReference { .. } | Error::DigestNotFound { .. }) => {
            return Err(unknown(reference))
        }
        Err(e) => return Err(e.into()),
    };
    match set.read_object(&digest) {
        Ok(o) => Ok((digest, o)),
        Err(Error::UnknownObject { .. }) => Err(unknown(reference)),
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct ReadArgs {
    #[command(flatten)]
    repos: Repositories,
    /// The tag or digest of the blob/payload to output.
    #[arg(value_name = "REF")]
    reference: String,
    /// If the given ref is not a blob, read the blob found at this path.
    path: Option<String>,
}

/// `read REF [PATH]`: a blob's bytes, or those of the file at PATH in
/// what REF names.
pub(crate) fn read(args: ReadArgs) -> CmdResult {
    let repo = args.repos.open()?;
    let set = RepositorySet::new(repo.clone(), Vec::new(), TagAuthor(String::new()));
    let (digest, object) = read_ref(&repo, &args.reference)?;
    let (payload, size) = match (&object, &args.path) {
        (Object::Blob(b), _) => (b.payload, b.size),
        (_, None) => {
            return Err(format!(
                "'{}' is a {}, not a blob: give the path of a file in it",
                args.reference,
                object.kind().name()
            )
            .into())
        }
        (_, Some(path)) => {
            let stack = set.resolve_digests(&[digest])?;
            let view = View::build(&set.read_stack_manifests(&stack)?)?;
            let rel = path.strip_prefix("/spfs").unwrap_or(path);
            let node = view
                .resolve_path(rel.trim_start_matches('/'))
                .and_then(|id| view.get(id))
                .filter(|n| n.kind() != NodeKind::Dir)
                .ok_or_else(|| format!("{path} is not a file in {}", args.reference))?;
            (
                node.payload()
                    .ok_or_else(|| format!("{path} has no payload"))?,
                node.size(),
            )
        }
    };
    let mut file = set.open_payload_sized(&payload, size)?;
    let mut out = std::io::stdout().lock();
    // (Errors reading are the repository's; errors writing end the
    // command as any output failure does.)
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = std::io::Read::read(&mut file, &mut buf)?;
        if n == 0 {
            break;
        }
        if let Err(e) = std::io::Write::write_all(&mut out, buf.get(..n).unwrap_or_default()) {
            crate::cli::output::fail(&e);
        }
    }
    if let Err(e) = std::io::Write::flush(&mut out) {
        crate::cli::output::fail(&e);
    }
    Ok(())
}
