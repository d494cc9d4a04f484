//! `edit [--off] [--keep-runtime]`: the active runtime made editable, or
//! read-only again with its edits still shown, live (the service changes
//! it in place: its processes keep their working directories and open
//! files, where upstream remounts). Upstream's lines: `edit mode
//! enabled`, `edit mode disabled`, nothing when it already was editable.
//!
//! `--keep-runtime` makes the runtime durable first (its edits move into
//! its repository's `durable_edits/`, live: two renames), as upstream's
//! `runtime changed to durable`.

use spfs_shared::protocol::{Request, Response};

use super::{log_info, CmdResult};

#[derive(Debug, clap::Args)]
pub(crate) struct EditArgs {
    /// Disable edit mode instead
    #[arg(long)]
    off: bool,
    /// Change a runtime into a durable runtime, will also make the
    /// runtime editable
    #[arg(long)]
    keep_runtime: bool,
}

pub(crate) fn edit(args: EditArgs) -> CmdResult {
    let name = super::runtimes::active_name()?;
    let endpoint = crate::cli::Endpoint::from_environment();
    let mut client = endpoint.connect().map_err(|e| e.to_string())?;
    if args.keep_runtime {
        match client.call(Request::MakeDurable { name: name.clone() }) {
            Ok(Response::Edited { changed: true, .. }) => log_info("runtime changed to durable"),
            Ok(Response::Edited { changed: false, .. }) => log_info("runtime is already durable"),
            Ok(other) => return Err(format!("unexpected reply from the service: {other:?}").into()),
            Err(e) => return Err(e.to_string().into()),
        }
    }
    let editable = !args.off;
    match client.call(Request::SetEditable { name, editable }) {
        Ok(Response::Edited { changed, .. }) => {
            // Upstream says nothing when the runtime already was editable,
            // and says `--off` always.
            if !editable {
                log_info("edit mode disabled");
            } else if changed {
                log_info("edit mode enabled");
            }
            Ok(())
        }
        Ok(other) => Err(format!("unexpected reply from the service: {other:?}").into()),
        Err(e) => Err(e.to_string().into()),
    }
}
