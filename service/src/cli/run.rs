//! `run` and `shell`: start a runtime for this process, then become the
//! user's command, so its exit status is the user's.

use std::os::unix::process::CommandExt;
use std::process::Command;

use spfs_shared::protocol::{MountRequest, RepositoryLocation, Request, Response};

use super::{CliResult, Endpoint};
use crate::client::ClientError;
use crate::repo::{Config, EnvSpec, RepositorySet};
use crate::router::TOKEN_ENV;

#[derive(Debug, clap::Args)]
pub struct Common {
    /// Make the runtime editable (changes go to a scratch layer).
    #[arg(long)]
    edit: bool,
    /// Name the runtime (default: a generated name).
    #[arg(long, value_name = "NAME")]
    runtime_name: Option<String>,
    /// Tags, digests or .spfs.yaml files joined by '+' ('-' for an empty /spfs).
    env_spec: String,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    common: Common,
    /// Words after ENV_SPEC without a '--' before them (refused, with a hint).
    #[arg(hide = true, value_name = "WORDS", allow_hyphen_values = true)]
    stray: Vec<String>,
    /// The command and its arguments, after '--'.
    #[arg(last = true, value_name = "CMD")]
    command: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct ShellArgs {
    #[command(flatten)]
    common: Common,
}

pub fn run(args: RunArgs, endpoint: &Endpoint) -> CliResult {
    if !args.stray.is_empty() {
        return Err(super::ExitWith(
            2,
            format!(
                "put '--' before the command: spfs-fuse-macos run {} -- {}",
                args.common.env_spec,
                args.stray.join(" ")
            ),
        )
        .into());
    }
    if args.command.is_empty() {
        // As a shell answers a command it cannot run.
        return Err(super::ExitWith(
            127,
            format!(
                "no command to run: give one after '--' (spfs-fuse-macos run {} -- CMD...), or start a shell with 'spfs-fuse-macos shell {}'",
                args.common.env_spec, args.common.env_spec
            ),
        )
        .into());
    }
    enter(&args.common, endpoint, &args.command)
}

/// Runs `command` in a new read-only runtime of `env_spec`.
pub fn run_command(env_spec: &str, endpoint: &Endpoint, command: Vec<String>) -> CliResult {
    let common = Common {
        edit: false,
        runtime_name: None,
        env_spec: env_spec.to_owned(),
    };
    enter(&common, endpoint, &command)
}

pub fn shell(args: ShellArgs, endpoint: &Endpoint) -> CliResult {
    let sh = std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into());
    enter(&args.common, endpoint, &[sh])
}

fn enter(common: &Common, endpoint: &Endpoint, command: &[String]) -> CliResult {
    // Spec files named relative to here, for the service (elsewhere).
    let env_spec = crate::repo::env_spec::with_absolute_paths(&common.env_spec);
    // Fail on a bad spec or name before contacting (or starting) the service.
    EnvSpec::parse(&env_spec)?;
    if let Some(name) = common.runtime_name.as_deref() {
        if !crate::runtimes::valid_name(name) {
            return Err(crate::runtimes::StartError::BadName(name.to_owned()).into());
        }
    }
    let repos = RepositorySet::from_config(&Config::load()?)?;
    let repositories = repos
        .all()
        .iter()
        .map(|r| RepositoryLocation {
            root: r.root().display().to_string(),
            tag_namespace: r.tag_namespace().map(str::to_owned),
        })
        .collect();
    let request = Request::Mount(MountRequest {
        root_pid: std::process::id(),
        env_spec,
        editable: common.edit,
        runtime_name: common.runtime_name.clone(),
        repositories,
    });
    let mut client = endpoint.connect_or_start()?;
    let response = match client.call(request.clone()) {
        // The service began to stop (idle) just now: a new one takes it.
        Err(ClientError::ShuttingDown(_)) => {
            drop(client);
            crate::client::wait_gone(&endpoint.socket);
            client = endpoint.connect_or_start()?;
            client.call(request)?
        }
        other => other?,
    };
    let Response::Mounted { runtime, token } = response else {
        return Err(format!("unexpected reply from the service: {response:?}").into());
    };
    drop(client);
    let err = Command::new(&command[0])
        .args(&command[1..])
        .env("SPFS_RUNTIME", &runtime.name)
        .env(TOKEN_ENV, token)
        .exec();
    // exec only returns on failure; the runtime ends with this process.
    Err(format!("cannot run '{}': {err}", command[0]).into())
}
