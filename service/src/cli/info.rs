//! `info REF`: what a reference is.

use std::fmt::Write as _;

use crate::repo::env_spec::EnvSpecItem;
use crate::repo::object::Object;
use crate::repo::{NodeId, NodeKind, Result, StackItem, View};

use super::{human_bytes, Loaded};

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// A tag, digest, partial digest, .spfs.yaml file, or several joined by '+'.
    reference: String,
}

pub(super) fn run(args: Args) -> Result<()> {
    let loaded = Loaded::new(&args.reference)?;
    print!("{}", describe(&loaded)?);
    Ok(())
}

fn describe(loaded: &Loaded) -> Result<String> {
    let mut out = String::new();
    let repos = &loaded.repos;
    // One plain item names one object: describe that object.
    if let [item @ (EnvSpecItem::Digest(_) | EnvSpecItem::Partial(_) | EnvSpecItem::Tag(_))] =
        loaded.spec.items.as_slice()
    {
        let digest = repos.resolve_item(item)?;
        let object = repos.read_object(&digest)?;
        let _ = writeln!(out, "{} {digest}", object.kind().name());
        if let EnvSpecItem::Tag(spec) = item {
            let tag = repos.resolve_tag(spec)?;
            let _ = writeln!(out, "  tag: {spec} (by {} at {})", tag.user, tag.time);
        }
        match &object {
            Object::Blob(b) => {
                let _ = writeln!(out, "  size: {} ({} bytes)", human_bytes(b.size), b.size);
                match repos.payload_path(&b.payload) {
                    Ok(p) => writeln!(out, "  payload: {}", p.display()),
                    Err(e) => writeln!(out, "  payload: {e}"),
                }
                .ok();
                return Ok(out);
            }
            Object::Layer(l) => {
                match l.manifest {
                    Some(m) => writeln!(out, "  manifest: {m}"),
                    None => writeln!(out, "  manifest: none (annotations only)"),
                }
                .ok();
                for a in &l.annotations {
                    let v = match &a.value {
                        crate::repo::object::AnnotationValue::String(s) => s.clone(),
                        crate::repo::object::AnnotationValue::Digest(d) => d.to_string(),
                    };
                    let _ = writeln!(out, "  annotation: {} = {v}", a.key);
                }
            }
            Object::Platform(_) | Object::Manifest(_) => {}
        }
        let stack = loaded.stack()?;
        if matches!(object, Object::Platform(_)) {
            write_stack(&stack, &mut out);
        }
        write_summary(&loaded.view(&stack)?, loaded, &mut out);
    } else {
        let stack = loaded.stack()?;
        let _ = writeln!(out, "environment {}", loaded.spec);
        write_stack(&stack, &mut out);
        write_summary(&loaded.view(&stack)?, loaded, &mut out);
    }
    Ok(out)
}

fn write_stack(stack: &[StackItem], out: &mut String) {
    let _ = writeln!(out, "  stack (top first):");
    if stack.is_empty() {
        let _ = writeln!(out, "    (empty)");
    }
    for item in stack.iter().rev() {
        let kind = if item.manifest == Some(item.digest) {
            "manifest"
        } else {
            "layer"
        };
        let _ = writeln!(out, "    {} {kind}", item.digest);
    }
}

fn write_summary(view: &View, loaded: &Loaded, out: &mut String) {
    let (mut files, mut dirs, mut links, mut bytes) = (0u64, 0u64, 0u64, 0u64);
    for n in view
        .walk(NodeId::ROOT)
        .into_iter()
        .filter_map(|id| view.get(id))
    {
        match n.kind() {
            NodeKind::Dir => dirs += 1,
            NodeKind::File => {
                files += 1;
                bytes += n.size();
            }
            NodeKind::Symlink => links += 1,
        }
    }
    let _ = writeln!(
        out,
        "  contents: {}, {}, {}, {}",
        count(files, "file", "files"),
        count(dirs, "directory", "directories"),
        count(links, "symlink", "symlinks"),
        human_bytes(bytes)
    );
    let _ = writeln!(
        out,
        "  repository: {}",
        loaded.repos.primary().root().display()
    );
}

/// `n` and the noun that goes with it (`1 directory`, `2 directories`).
fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
