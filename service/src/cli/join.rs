//! `join NAME [-- CMD...]`: a command (or a shell) inside a live runtime.

use spfs_shared::protocol::Request;

use super::{CliResult, Endpoint};

#[derive(Debug, clap::Args)]
pub(crate) struct JoinArgs {
    /// The runtime to join (see 'runtime ls').
    name: String,
    /// The command and its arguments, after '--' [default: $SHELL].
    #[arg(last = true, value_name = "CMD")]
    command: Vec<String>,
}

pub(crate) fn join(args: JoinArgs, endpoint: &Endpoint) -> CliResult {
    join_with(args.name, args.command, endpoint)
}

/// Runs `command` (or `$SHELL`) as a new member of live runtime `name`.
pub(crate) fn join_with(name: String, command: Vec<String>, endpoint: &Endpoint) -> CliResult {
    let args = JoinArgs { name, command };
    let command = if args.command.is_empty() {
        vec![std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into())]
    } else {
        args.command
    };
    let mut client = match endpoint.connect() {
        Err(crate::client::ClientError::NotRunning { .. }) => {
            return Err(format!(
                "no runtime named '{}': none is running (the service is not running)",
                spfs_shared::display::quoted(&args.name)
            )
            .into())
        }
        other => other?,
    };
    // This process becomes a root of the runtime, then the command.
    let response = client.call(Request::Join {
        name: args.name,
        root_pid: std::process::id(),
    })?;
    drop(client);
    super::run::become_member(response, &command, &endpoint.mountpoint)
}
