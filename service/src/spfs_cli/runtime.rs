//! `run`, `shell` and `join` with upstream's flags and meaning, on the
//! service (started on demand, as `spfs-fuse-macos run` starts it).
//!
//! Upstream's `--sync` pulls everything a runtime needs before it starts,
//! payloads too: here that is `--sync-all`; without it, what is only on a
//! remote is pulled when first opened. `--check` and `--resync` walk (or
//! copy again) what is here already too, `--max-concurrent-payloads` and
//! `--progress` are the pull's (see `sync::SyncArgs`); `-r REMOTE` is
//! the remote it pulls from.

use super::{CmdError, CmdResult};
use crate::cli::run::Common;
use crate::cli::{Endpoint, ExitWith};

/// Options `run` and `shell` share (upstream's `CmdRun`/`CmdShell`).
#[derive(Debug, clap::Args)]
#[group(id = "runtime_id", required = true, args = ["rerun", "reference"])]
pub(crate) struct RuntimeOptions {
    #[command(flatten)]
    sync: super::sync::SyncArgs,
    /// Pull what the runtime needs from this remote of the spfs
    /// configuration (upstream takes it and pulls from 'origin').
    #[arg(short, long, value_name = "REMOTE")]
    remote: Option<String>,
    /// Mount the spfs filesystem in edit mode.
    ///
    /// Editable runtimes are created by default if REF is empty or '-'.
    /// When combined with --rerun, the original runtime editability is
    /// overridden.
    #[arg(short, long)]
    edit: bool,
    /// Mount the spfs filesystem in read-only mode.
    ///
    /// Read-only runtimes are created by default if REF is provided and
    /// not empty. When combined with --rerun, the original runtime
    /// editability is overridden.
    #[arg(long, overrides_with = "edit")]
    no_edit: bool,
    /// Requires --rerun. Force reset the process fields of the runtime
    /// before it is run again.
    #[arg(long, requires = "rerun")]
    force: bool,
    /// Use to keep the runtime around rather than deleting it when the
    /// process exits. This is best used with '--runtime-name NAME' to make
    /// rerunning the runtime easier at a later time.
    #[arg(
        short,
        long,
        env = "SPFS_KEEP_RUNTIME",
        value_parser = clap::builder::BoolishValueParser::new(),
        action = clap::ArgAction::SetTrue
    )]
    keep_runtime: bool,
    /// Provide a name for this runtime to make it easier to identify.
    #[arg(long)]
    runtime_name: Option<String>,
    /// Name of an existing durable runtime to reuse for this run.
    #[arg(long, value_name = "RUNTIME_NAME", conflicts_with = "runtime_name")]
    rerun: Option<String>,
    /// The tag or id of the desired runtime.
    ///
    /// Use '-' or an empty string to request an empty environment.
    #[arg(value_name = "REF", conflicts_with = "rerun")]
    reference: Option<String>,
    #[command(flatten)]
    annotations: super::annotations::AnnotationArgs,
}

impl RuntimeOptions {
    fn common(self) -> Result<Common, CmdError> {
        // (clap's `requires` lets a flag through here, so it is checked.)
        if self.force && self.rerun.is_none() {
            return Err(CmdError {
                diagnostic: None,
            causes: Vec::new(),
            logged: false,
                message: "--force is only for --rerun RUNTIME_NAME: it resets a durable runtime's processes before it runs again".into(),
                status: 2,
            });
        }
        let mut options = self;
        // Annotations are layers of their own on top of the stack.
        let config = crate::repo::Config::load()?;
        let repo = crate::repo::FsRepository::open(&config.storage.root)?;
        let layers = options.annotations.write_layers(&repo)?;
        if !layers.is_empty() {
            let Some(reference) = &options.reference else {
                return Err(CmdError {
                    diagnostic: None,
                    message: "--annotation is for a new runtime: a runtime run again with --rerun keeps the annotations it was started with".into(),
                    causes: Vec::new(),
                    logged: false,
                    status: 1,
                });
            };
            let mut items: Vec<String> = match reference.trim() {
                "" | "-" => Vec::new(),
                r => vec![r.to_owned()],
            };
            items.extend(layers.iter().map(ToString::to_string));
            // An empty reference stays empty for editability's sake.
            let empty = reference.trim().is_empty() || reference.trim() == "-";
            if empty && !options.no_edit {
                options.edit = true;
            }
            options.reference = Some(items.join("+"));
        }
        Ok(options.common_unchecked())
    }

    fn common_unchecked(self) -> Common {
        Common::upstream(
            self.reference,
            self.edit,
            self.no_edit,
            self.keep_runtime,
            self.runtime_name,
            self.rerun,
            self.force,
            self.sync.sync,
            crate::cli::remote::Transfer {
                remote: self.remote,
                ..self.sync.transfer()
            },
        )
    }
}

/// `spfs run`: run a program in a configured spfs environment.
#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    options: RuntimeOptions,
    /// The command to run in the environment and its arguments.
    ///
    /// In order to ensure that flags are passed as-is, '--' must be placed
    /// before specifying the command and any flags that should be given to
    /// that command: e.g. `spfs run <args> -- command --flag-for-command`.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// `spfs shell`: enter a subshell in a configured spfs environment.
#[derive(Debug, clap::Args)]
pub(crate) struct ShellArgs {
    #[command(flatten)]
    options: RuntimeOptions,
}

/// `spfs join`: run a command in an existing runtime.
#[derive(Debug, clap::Args)]
pub(crate) struct JoinArgs {
    /// The name or id of the runtime to join.
    #[arg(value_name = "RUNTIME")]
    runtime: String,
    /// The command to run after initialization [default: $SHELL].
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// An error of the shared runtime code, with the status it asks for.
fn status_of(e: Box<dyn std::error::Error>) -> CmdError {
    match e.downcast_ref::<ExitWith>() {
        Some(ExitWith(status, message)) => CmdError {
            diagnostic: None,
            causes: Vec::new(),
            logged: false,
            message: message.clone(),
            status: *status,
        },
        None => CmdError {
            diagnostic: None,
            causes: Vec::new(),
            logged: false,
            message: e.to_string(),
            status: 1,
        },
    }
}

pub(crate) fn run(args: RunArgs) -> CmdResult {
    let endpoint = Endpoint::from_environment();
    crate::cli::run::run_with(
        &args.options.common()?,
        &[],
        &args.command,
        &endpoint,
        "spfs",
    )
    .map_err(status_of)
}

pub(crate) fn shell(args: ShellArgs) -> CmdResult {
    let endpoint = Endpoint::from_environment();
    crate::cli::run::shell_with(&args.options.common()?, &endpoint).map_err(status_of)
}

pub(crate) fn join(args: JoinArgs) -> CmdResult {
    let endpoint = Endpoint::from_environment();
    crate::cli::join::join_with(args.runtime, args.command, &endpoint).map_err(status_of)
}
