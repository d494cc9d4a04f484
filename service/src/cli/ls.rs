//! `ls [-R] [-l] REF [PATH]`: list an environment's files.

use crate::repo::view::NodeRef;
use crate::repo::{Error, NodeKind, Result, View};

use super::Loaded;

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// List subdirectories recursively.
    #[arg(short = 'R', long)]
    recursive: bool,
    /// Long format: permissions, size, name (and symlink targets).
    #[arg(short, long)]
    long: bool,
    /// A tag, digest, partial digest, .spfs.yaml file, or several joined by '+'.
    reference: String,
    /// A directory or file inside the environment (default: its root).
    path: Option<String>,
}

pub(super) fn run(args: Args) -> Result<()> {
    let loaded = Loaded::new(&args.reference)?;
    let view = loaded.view(&loaded.stack()?)?;
    let path = args.path.as_deref().unwrap_or("");
    let path = path.trim_start_matches("/spfs").trim_matches('/');
    let start = view.resolve_path(path).ok_or_else(|| Error::NoSuchPath {
        path: format!("/spfs/{path}"),
        env: loaded.spec.to_string(),
    })?;
    let start_kind = view.get(start).map_or(NodeKind::File, |n| n.kind());
    let ids: Vec<_> = match (start_kind, args.recursive) {
        (NodeKind::Dir, true) => view.walk(start),
        (NodeKind::Dir, false) => view.children(start).collect(),
        _ => vec![start],
    };
    let base = view.path_of(start);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for (id, node) in ids.into_iter().filter_map(|id| Some((id, view.get(id)?))) {
        let full = view.path_of(id);
        let mut name = if id == start {
            node.name().to_owned()
        } else {
            full.strip_prefix(&base)
                .unwrap_or(&full)
                .trim_start_matches('/')
                .to_owned()
        };
        if node.kind() == NodeKind::Dir {
            name.push('/');
        }
        let line = if args.long {
            long_line(&loaded, &view, node, &name)
        } else {
            name
        };
        super::output::write_line(&mut out, &line);
    }
    super::output::flush(&mut out);
    Ok(())
}

fn long_line(loaded: &Loaded, _view: &View, node: NodeRef<'_>, name: &str) -> String {
    let (kind, size) = match node.kind() {
        NodeKind::Dir => ('d', String::from("-")),
        NodeKind::File => ('-', node.size().to_string()),
        NodeKind::Symlink => ('l', node.size().to_string()),
    };
    let mut line = format!("{kind}{} {size:>10} {name}", rwx(node.permissions()));
    if node.kind() == NodeKind::Symlink {
        let target = node
            .payload()
            .and_then(|p| loaded.repos.read_symlink_target(&p, node.size()).ok())
            .map(|t| String::from_utf8_lossy(&t).into_owned())
            .unwrap_or_else(|| "?".to_owned());
        line.push_str(" -> ");
        line.push_str(&target);
    }
    line
}

fn rwx(perm: u32) -> String {
    let mut s = String::with_capacity(9);
    for shift in [6, 3, 0] {
        let bits = (perm >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}
