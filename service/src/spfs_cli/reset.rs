//! `reset [PATTERN...]`: the active runtime's edits undone, all of them
//! or those matching upstream's patterns (gitignore patterns matched in
//! the runtime's edits, as upstream matches them in its upper directory:
//! `*.so` anywhere, `lib/*.so` there; a deleted file is matched by its
//! name). The service discards them, so every process of the runtime sees
//! the files of the layers again at once.
//!
//! `-e/--edit` leaves the runtime editable (a read-only one is made so,
//! as `spfs edit` does). `-r/--ref REF` rebuilds the runtime on REF's
//! stack, live, its edits all discarded (an empty or `-` REF: no layers,
//! editable, as upstream); what only a remote has is pulled first, with
//! upstream's sync flags.

use std::path::{Path, PathBuf};

use spfs_shared::protocol::{ErrorCode, Request, Response};

use super::{CmdError, CmdResult};

#[derive(Debug, clap::Args)]
pub(crate) struct ResetArgs {
    #[command(flatten)]
    sync: super::sync::SyncArgs,
    /// Mount the resulting runtime in edit mode
    #[arg(short, long)]
    edit: bool,
    /// The tag or id to rebuild the runtime with.
    ///
    /// Uses current runtime stack if not given. Use '-' or an empty string
    /// to request an empty environment. Only valid if no paths are given
    #[arg(short, long = "ref", value_name = "REFERENCE")]
    reference: Option<String>,
    /// Glob patterns in the spfs dir of files to reset, defaults to
    /// everything.
    #[arg(value_name = "PATHS")]
    paths: Vec<String>,
}

pub(crate) fn reset(args: ResetArgs) -> CmdResult {
    let name = super::runtimes::active_name()?;
    let endpoint = crate::cli::Endpoint::from_environment();
    let mut client = endpoint.connect().map_err(|e| e.to_string())?;
    if let Some(reference) = args.reference {
        if !args.paths.is_empty() {
            return Err(format!(
                "spfs reset --ref rebuilds the whole runtime: give either paths ({}) or --ref, not both",
                args.paths.join(" ")
            )
            .into());
        }
        let empty = reference.is_empty() || reference == "-";
        if !empty {
            // What only a remote has is pulled first, as `run` pulls it
            // (everything with --sync).
            let config = crate::repo::Config::load()?;
            let repos = crate::repo::RepositorySet::from_config(&config)?;
            let spec = crate::repo::env_spec::with_absolute_paths(&reference);
            crate::cli::remote::bring_local(
                &config,
                &repos,
                &spec,
                args.sync.sync,
                &args.sync.transfer(),
            )
            .map_err(|e| e.to_string())?;
        }
        match client.call(Request::Reset {
            name: name.clone(),
            paths: Vec::new(),
            to: Some(reference),
        }) {
            Ok(Response::Reset { .. }) => {}
            Ok(other) => return Err(format!("unexpected reply from the service: {other:?}").into()),
            Err(e) => return Err(e.to_string().into()),
        }
        // An empty environment is editable, as upstream makes it.
        if args.edit || empty {
            make_editable(&mut client, name)?;
        }
        return Ok(());
    }
    let info = match client.call(Request::RuntimeInfo { name: name.clone() }) {
        Ok(Response::Runtime { runtime }) => runtime,
        Ok(other) => return Err(format!("unexpected reply from the service: {other:?}").into()),
        Err(e) => return Err(e.to_string().into()),
    };
    let Some(scratch) = info.scratch_dir.as_deref() else {
        if args.edit {
            // No edits to reset; editable from now on.
            return make_editable(&mut client, name);
        }
        return Err("Active runtime is not editable, nothing to reset".into());
    };
    let paths = if args.paths.is_empty() {
        Vec::new()
    } else {
        let upper = PathBuf::from(scratch).join("upper");
        let mount = endpoint.mountpoint();
        matching(&upper, &args.paths)?
            .into_iter()
            .map(|rel| mount.join(rel).display().to_string())
            .collect()
    };
    // Nothing matched: nothing to reset (upstream says nothing either).
    if args.paths.is_empty() || !paths.is_empty() {
        match client.call(Request::Reset {
            name: name.clone(),
            paths,
            to: None,
        }) {
            Ok(Response::Reset { .. }) => {}
            Ok(other) => return Err(format!("unexpected reply from the service: {other:?}").into()),
            Err(e) if e.is(ErrorCode::ReadOnly) => {
                return Err("Active runtime is not editable, nothing to reset".into())
            }
            Err(e) => return Err(e.to_string().into()),
        }
    }
    if args.edit {
        make_editable(&mut client, name)?;
    }
    Ok(())
}

/// Makes runtime `name` editable (a durable one run `--no-edit` has edits
/// but takes none), saying nothing, as upstream's reset.
fn make_editable(client: &mut crate::client::Client, name: String) -> CmdResult {
    match client.call(Request::SetEditable {
        name,
        editable: true,
    }) {
        Ok(Response::Edited { .. }) => Ok(()),
        Ok(other) => Err(format!("unexpected reply from the service: {other:?}").into()),
        Err(e) => Err(e.to_string().into()),
    }
}

/// The edits under `upper` that one of `patterns` matches, as paths
/// relative to the runtime's root: a directory matched stands for all it
/// holds, and `.wh.NAME` (a deletion) is matched as NAME.
fn matching(upper: &Path, patterns: &[String]) -> Result<Vec<PathBuf>, CmdError> {
    let mut builder = ignore::gitignore::GitignoreBuilder::new(upper);
    for p in patterns {
        let p = p.strip_prefix("/spfs").unwrap_or(p);
        builder
            .add_line(None, p)
            .map_err(|e| format!("invalid pattern '{p}': {e}"))?;
    }
    let matcher = builder.build().map_err(|e| e.to_string())?;
    let mut found = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = upper.join(&rel);
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| format!("cannot read the runtime's edits in {}: {e}", dir.display()))?;
        for entry in entries.flatten() {
            let raw = entry.file_name();
            let Some(text) = raw.to_str() else { continue };
            if text == crate::scratch::OPAQUE_MARKER {
                continue;
            }
            // A deletion (`.wh.NAME`) is matched as the name it deletes.
            let shown = text.strip_prefix(".wh.").unwrap_or(text);
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            let path = rel.join(shown);
            if matcher.matched(upper.join(&path), is_dir).is_ignore() {
                found.push(path);
            } else if is_dir && stack.len() < crate::repo::view::MAX_DEPTH as usize {
                stack.push(rel.join(text));
            }
        }
    }
    found.sort();
    found.dedup();
    Ok(found)
}
