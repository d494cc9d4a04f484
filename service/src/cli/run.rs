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
pub(crate) struct Common {
    /// Make the runtime editable (changes go to a scratch layer).
    #[arg(long, overrides_with = "no_edit")]
    edit: bool,
    /// With --rerun: show the runtime's edits but take no more.
    #[arg(long, overrides_with = "edit")]
    no_edit: bool,
    /// Name the runtime (default: a generated name).
    #[arg(long, value_name = "NAME")]
    runtime_name: Option<String>,
    /// Keep the runtime when its processes end: a durable runtime, whose
    /// edits stay in the repository's durable_edits/NAME (needs
    /// --runtime-name; run it again with --rerun NAME).
    #[arg(
        short = 'k',
        long,
        env = "SPFS_KEEP_RUNTIME",
        value_parser = clap::builder::BoolishValueParser::new(),
        action = clap::ArgAction::SetTrue
    )]
    keep_runtime: bool,
    /// Run saved durable runtime NAME again, with its stack and edits
    /// (and its command, if none is given).
    #[arg(long, value_name = "NAME", conflicts_with_all = ["env_spec", "runtime_name"])]
    rerun: Option<String>,
    /// With --rerun: even if it is running (its processes leave it).
    #[arg(long, requires = "rerun")]
    force: bool,
    /// Pull everything, payloads too, before starting (as upstream's
    /// `spfs run`): without it, what is only on a remote is pulled as
    /// tags and objects, and each file's payload when it is first opened.
    #[arg(long)]
    sync_all: bool,
    /// Tags, digests or .spfs.yaml files joined by '+' ('-' for an empty /spfs).
    #[arg(required_unless_present = "rerun")]
    env_spec: Option<String>,
    /// How what is on a remote is pulled (`spfs run`'s sync flags).
    #[arg(skip)]
    transfer: super::remote::Transfer,
}

impl Common {
    /// The options of `spfs run` and `spfs shell` (upstream's meaning):
    /// an empty or `-` reference is an empty runtime, editable unless
    /// `no_edit`.
    #[allow(clippy::too_many_arguments)] // one per option
    pub(crate) fn upstream(
        reference: Option<String>,
        edit: bool,
        no_edit: bool,
        keep_runtime: bool,
        runtime_name: Option<String>,
        rerun: Option<String>,
        force: bool,
        sync: bool,
        transfer: super::remote::Transfer,
    ) -> Common {
        let empty = reference
            .as_deref()
            .is_some_and(|r| r.trim().is_empty() || r.trim() == "-");
        Common {
            edit: edit || (empty && !no_edit),
            no_edit,
            runtime_name,
            keep_runtime,
            env_spec: reference.map(|r| if empty { "-".to_owned() } else { r }),
            rerun,
            force,
            sync_all: sync,
            transfer,
        }
    }

    /// What the runtime is, for messages: its env spec or `--rerun NAME`.
    fn what(&self) -> String {
        match (&self.rerun, &self.env_spec) {
            (Some(name), _) => format!("--rerun {name}"),
            (None, Some(spec)) => spec.clone(),
            (None, None) => String::new(),
        }
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
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
pub(crate) struct ShellArgs {
    #[command(flatten)]
    common: Common,
}

pub(crate) fn run(args: RunArgs, endpoint: &Endpoint) -> CliResult {
    run_with(
        &args.common,
        &args.stray,
        &args.command,
        endpoint,
        "spfs-fuse-macos",
    )
}

/// `run`'s checks, then the command in the runtime; `program` names the
/// command line in hints (`spfs` or `spfs-fuse-macos`).
pub(crate) fn run_with(
    common: &Common,
    stray: &[String],
    command: &[String],
    endpoint: &Endpoint,
    program: &str,
) -> CliResult {
    if !stray.is_empty() {
        return Err(super::ExitWith(
            2,
            format!(
                "put '--' before the command: {program} run {} -- {}",
                common.what(),
                stray.join(" ")
            ),
        )
        .into());
    }
    if command.is_empty() && common.rerun.is_none() {
        // As a shell answers a command it cannot run.
        return Err(super::ExitWith(
            127,
            format!(
                "no command to run: give one after '--' ({program} run {} -- CMD...), or start a shell with '{program} shell {}'",
                common.what(),
                common.what()
            ),
        )
        .into());
    }
    enter(common, endpoint, command)
}

/// Runs `command` in a new read-only runtime of `env_spec`.
pub(crate) fn run_command(env_spec: &str, endpoint: &Endpoint, command: Vec<String>) -> CliResult {
    let common = Common {
        edit: false,
        no_edit: false,
        runtime_name: None,
        keep_runtime: false,
        rerun: None,
        force: false,
        sync_all: false,
        env_spec: Some(env_spec.to_owned()),
        transfer: Default::default(),
    };
    enter(&common, endpoint, &command)
}

pub(crate) fn shell(args: ShellArgs, endpoint: &Endpoint) -> CliResult {
    shell_with(&args.common, endpoint)
}

/// The user's shell (`$SHELL`) in the runtime.
pub(crate) fn shell_with(common: &Common, endpoint: &Endpoint) -> CliResult {
    let sh = std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into());
    enter(common, endpoint, &[sh])
}

fn enter(common: &Common, endpoint: &Endpoint, command: &[String]) -> CliResult {
    let config = Config::load()?;
    // A mistyped storage root is an error naming it, not a new empty
    // repository (one is only made to pull into from a remote).
    if spfs_remote::configured(&config).is_empty() {
        crate::repo::FsRepository::open(&config.storage.root)?;
    }
    let repos = RepositorySet::from_config(&config)?;
    let mut repositories: Vec<RepositoryLocation> = repos
        .all()
        .iter()
        .map(|r| RepositoryLocation {
            root: r.root().display().to_string(),
            tag_namespace: r.tag_namespace().map(str::to_owned),
            remote_name: None,
        })
        .collect();
    // Remotes last: payloads none of the directories holds come from them.
    repositories.extend(
        spfs_remote::configured(&config)
            .into_iter()
            .filter(|r| crate::stack::is_remote(&r.address))
            .map(|r| RepositoryLocation {
                root: r.address,
                tag_namespace: None,
                remote_name: Some(r.name),
            }),
    );
    let mut command = command.to_vec();
    let request = if let Some(name) = &common.rerun {
        // Fail early, with the repository named, on what the service
        // would refuse; it reads the record again itself.
        if !crate::runtimes::valid_name(name) {
            return Err(crate::runtimes::StartError::BadName(name.to_owned()).into());
        }
        let repo = repos.primary();
        let record = repo.runtime_record(name)?.ok_or_else(|| {
            format!(
                "no saved runtime named '{name}' in {}; '{} runtime ls' lists them",
                repo.root().display(),
                endpoint.command()
            )
        })?;
        if command.is_empty() {
            command = record.status.command.clone();
        }
        if command.is_empty() {
            return Err(super::ExitWith(
                127,
                format!("runtime '{name}' has no recorded command: give one after '--'"),
            )
            .into());
        }
        let editable = if common.edit || common.no_edit {
            common.edit
        } else {
            record.status.editable
        };
        MountRequest {
            root_pid: std::process::id(),
            env_spec: String::new(),
            editable,
            runtime_name: Some(name.clone()),
            repositories,
            command: command.clone(),
            durable: true,
            rerun: true,
            force: common.force,
        }
    } else {
        let spec = common.env_spec.as_deref().unwrap_or_default();
        // Spec files named relative to here, for the service (elsewhere).
        let env_spec = crate::repo::env_spec::with_absolute_paths(spec);
        // Fail on a bad spec or name before contacting (or starting) the service.
        EnvSpec::parse(&env_spec)?;
        super::remote::bring_local(
            &config,
            &repos,
            &env_spec,
            common.sync_all,
            &common.transfer,
        )?;
        // A ref that names nothing fails here, naming the repositories
        // searched, before the service is started or asked.
        repos.resolve_stack(&EnvSpec::parse(&env_spec)?)?;
        if let Some(name) = common.runtime_name.as_deref() {
            if !crate::runtimes::valid_name(name) {
                return Err(crate::runtimes::StartError::BadName(name.to_owned()).into());
            }
        }
        let durable = common.keep_runtime && common.runtime_name.is_some();
        if common.keep_runtime && !durable {
            eprintln!("note: the runtime is not kept: a durable runtime (--keep-runtime, SPFS_KEEP_RUNTIME) needs --runtime-name NAME");
        }
        MountRequest {
            root_pid: std::process::id(),
            env_spec,
            editable: common.edit,
            runtime_name: common.runtime_name.clone(),
            repositories,
            command: command.clone(),
            durable,
            rerun: false,
            force: false,
        }
    };
    let request = Request::Mount(request);
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
    drop(client);
    become_member(response, &command, &endpoint.mountpoint)
}

/// Runs `command` as a member of the runtime the service answered with.
pub(super) fn become_member(
    response: Response,
    command: &[String],
    mountpoint: &std::path::Path,
) -> CliResult {
    let Response::Mounted {
        runtime,
        token,
        notice,
    } = response
    else {
        return Err(format!("unexpected reply from the service: {response:?}").into());
    };
    if let Some(notice) = notice {
        eprintln!("note: {notice}");
    }
    check_mount_answers(mountpoint)?;
    let Some((program, args)) = command.split_first() else {
        return Err("no command to run in the runtime".into());
    };
    let err = Command::new(program)
        .args(args)
        .env("SPFS_RUNTIME", &runtime.name)
        .env(TOKEN_ENV, token)
        .exec();
    // exec only returns on failure; the runtime ends with this process.
    // The exit statuses shells (and env, timeout) use: 127 for a command
    // that is not found, 126 for one that cannot be run.
    let shown = spfs_shared::display::quoted(program);
    let code = match err.kind() {
        std::io::ErrorKind::NotFound => 127,
        _ => 126,
    };
    Err(super::ExitWith(code, format!("cannot run '{shown}': {err}")).into())
}

/// Refuses to run anything on a mount whose FUSE session is gone (aborted
/// or unmounted under the service, which is then stopping): the command
/// would see an empty or dead `/spfs`.
fn check_mount_answers(mountpoint: &std::path::Path) -> CliResult {
    match std::fs::metadata(mountpoint) {
        Err(e) if e.raw_os_error() == Some(crate::sys::mount::DEAD_MOUNT_ERRNO) => Err(format!(
            "the service's mount at {} does not answer ({e}); the service is stopping: run the command again to start a new one",
            mountpoint.display()
        )
        .into()),
        _ => Ok(()),
    }
}
