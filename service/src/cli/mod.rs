//! The `spfs-fuse-macos` command line.

mod backends;
mod commit;
mod config;
mod demo;
pub mod docs;
mod info;
pub(crate) mod join;
mod launchagent;
mod ls;
pub(crate) mod output;
pub(crate) mod remote;
pub(crate) mod run;
pub(crate) mod runtime;
mod service;
mod status;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::repo::{self, EnvSpec, RepositorySet, StackItem, View};

/// Where the service mounts unless told otherwise.
pub const DEFAULT_MOUNTPOINT: &str = "/spfs";
/// Names the mountpoint when `--mountpoint` does not.
pub const MOUNTPOINT_ENV: &str = "SPFS_FUSE_MOUNTPOINT";

/// SPFS runtimes on macOS: one FUSE mount at /spfs, a view per process tree.
#[derive(Debug, Parser)]
#[command(name = "spfs-fuse-macos", version, about, max_term_width = 100)]
pub struct Cli {
    /// More log output (repeat for more); or set RUST_LOG.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    // The two below are read from the environment by hand, not with clap's
    // `env`: clap then writes them into every usage line as if they were
    // required arguments (clap-rs/clap#1546).
    /// The service's control socket [env: SPFS_FUSE_SOCKET] [default:
    /// per-user, see docs].
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Where the service mounts the filesystem [env: SPFS_FUSE_MOUNTPOINT]
    /// [default: /spfs].
    #[arg(long, global = true, value_name = "PATH")]
    mountpoint: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// Where the service is, as the global options say.
pub struct Endpoint {
    socket: PathBuf,
    mountpoint: PathBuf,
}

impl Endpoint {
    /// The service the environment names (`SPFS_FUSE_SOCKET`,
    /// `SPFS_FUSE_MOUNTPOINT`), or the defaults: where `spfs` finds it.
    pub(crate) fn from_environment() -> Endpoint {
        Endpoint {
            socket: spfs_shared::paths::socket_path(),
            mountpoint: std::env::var_os(MOUNTPOINT_ENV)
                .filter(|v| !v.is_empty())
                .map_or_else(|| PathBuf::from(DEFAULT_MOUNTPOINT), PathBuf::from),
        }
    }

    /// Where the service mounts.
    pub(crate) fn mountpoint(&self) -> &std::path::Path {
        &self.mountpoint
    }

    pub(crate) fn connect(&self) -> Result<crate::client::Client, crate::client::ClientError> {
        crate::client::connect(&self.socket).map_err(|e| match e {
            crate::client::ClientError::NotRunning { path, source, .. } => {
                crate::client::ClientError::NotRunning {
                    path,
                    source,
                    hint: format!("start it with '{} start'", self.command()),
                }
            }
            e => e,
        })
    }

    /// `spfs-fuse-macos` with the global flags in use (those that differ
    /// from the defaults), for hints that name a command to run.
    pub(crate) fn command(&self) -> String {
        let mut c = "spfs-fuse-macos".to_owned();
        if self.socket != spfs_shared::paths::socket_path_default() {
            c.push_str(&format!(" --socket {}", shell_word(&self.socket)));
        }
        if self.mountpoint != std::path::Path::new(DEFAULT_MOUNTPOINT) {
            c.push_str(&format!(" --mountpoint {}", shell_word(&self.mountpoint)));
        }
        c
    }
    pub(crate) fn connect_or_start(
        &self,
    ) -> Result<crate::client::Client, crate::client::ClientError> {
        crate::client::connect_or_start(
            &self.socket,
            &self.mountpoint,
            &spfs_shared::paths::log_path(),
        )
    }
}

/// `path` as one shell word (quoted when it needs to be).
fn shell_word(path: &std::path::Path) -> String {
    let s = path.display().to_string();
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+=:@".contains(c))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// What a command returns: an error is printed as one line.
type CliResult = Result<(), Box<dyn std::error::Error>>;

/// An error that ends the command with its own exit status (127 for no
/// command to run, as a shell; 2 for a usage mistake).
#[derive(Debug)]
pub(crate) struct ExitWith(pub u8, pub String);

impl std::fmt::Display for ExitWith {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.1)
    }
}

impl std::error::Error for ExitWith {}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show what a reference is: its kind, digest, layers or contents.
    Info(info::Args),
    /// List the files of an environment, as it would appear at /spfs.
    Ls(ls::Args),
    /// Run the service in the foreground (mount, control socket, runtimes).
    Service(service::Args),
    /// Run a command in a new runtime: ENV_SPEC at /spfs for it and its children.
    Run(run::RunArgs),
    /// Start an interactive shell ($SHELL) in a new runtime.
    Shell(run::ShellArgs),
    /// Run a command (or $SHELL) inside a live runtime: it sees that runtime's /spfs.
    Join(join::JoinArgs),
    /// List, inspect and stop runtimes.
    #[command(subcommand)]
    Runtime(runtime::Command),
    /// Copy refs (tags, digests) from the configured remotes into the
    /// local repository, payloads too unless --no-payloads.
    Pull(remote::PullArgs),
    /// Copy refs from the local repository to a remote (e.g. a layer
    /// committed here, to the studio's spfs server).
    Push(remote::PushArgs),
    /// Show whether the service is running, and its state.
    Status(status::StatusArgs),
    /// Start the service in the background if it is not running.
    Start,
    /// Stop the service: unmount /spfs and exit (refused while runtimes
    /// run, unless --force).
    Shutdown(status::ShutdownArgs),
    /// Commit an editable runtime's edits (or a directory) as a layer.
    Commit(commit::CommitArgs),
    /// Discard an editable runtime's edits: all, or those of some paths.
    Reset(commit::ResetArgs),
    /// Read or change the settings (idle timeout, error reporting).
    #[command(subcommand)]
    Config(config::Command),
    /// Try it: a small environment built in, committed to your repository
    /// on first use (tag spfs-macos/demo), then run.
    Demo(demo::Args),
    /// The filesystem backends installed here and what each can do.
    Backends(backends::Args),
    /// Run the service always-on: install or remove its LaunchAgent (systemd unit on Linux).
    #[command(subcommand)]
    Launchagent(launchagent::Command),
    /// Write shell completions and man pages for spfs and spfs-fuse-macos
    /// under DIR (what bundle/make-app installs).
    #[command(hide = true)]
    GenerateDocs {
        /// Where to write `completions/` and `man/`.
        dir: PathBuf,
    },
}

/// Parses the process arguments and runs the command.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let is_service = matches!(cli.command, Command::Service(_));
    if !is_service {
        output::exit_when_stdout_fails();
    }
    if let Command::Service(args) = &cli.command {
        if args.log_to_file {
            let log = spfs_shared::paths::log_path();
            if let Err(e) = crate::sys::daemon::redirect_output(&log) {
                eprintln!("error: cannot write the log {}: {e}", log.display());
                return ExitCode::FAILURE;
            }
        }
    }
    // Reporting is set up before logging, so the first errors are seen.
    let reporting = is_service.then(|| std::sync::Arc::new(crate::reporting::Reporting::init()));
    init_logging(cli.verbose + u8::from(is_service), is_service);
    // The flags, else what the environment names.
    let from_env = Endpoint::from_environment();
    let endpoint = Endpoint {
        socket: cli.socket.unwrap_or(from_env.socket),
        mountpoint: cli.mountpoint.unwrap_or(from_env.mountpoint),
    };
    let result: CliResult = match cli.command {
        Command::Info(args) => info::run(args).map_err(Into::into),
        Command::Ls(args) => ls::run(args).map_err(Into::into),
        Command::Service(args) => service::run(args, &endpoint, reporting.clone()),
        Command::Run(args) => run::run(args, &endpoint),
        Command::Shell(args) => run::shell(args, &endpoint),
        Command::Runtime(cmd) => runtime::run(cmd, &endpoint),
        Command::Join(args) => join::join(args, &endpoint),
        Command::Pull(args) => remote::pull(args),
        Command::Push(args) => remote::push(args),
        Command::Status(args) => status::status(args, &endpoint),
        Command::Start => status::start(&endpoint),
        Command::Shutdown(args) => status::shutdown(args, &endpoint),
        Command::Commit(args) => commit::commit(args, &endpoint),
        Command::Reset(args) => commit::reset(args, &endpoint),
        Command::Config(cmd) => config::run(cmd, &endpoint),
        Command::Launchagent(cmd) => launchagent::run(cmd, &endpoint),
        Command::Backends(args) => backends::run(args),
        Command::Demo(args) => demo::run(args, &endpoint),
        Command::GenerateDocs { dir } => docs::generate(&dir)
            .map(|written| {
                for p in written {
                    println!("{}", p.display());
                }
            })
            .map_err(|e| format!("cannot write the docs under {}: {e}", dir.display()).into()),
    };
    // Output still buffered must reach its file, or the command failed.
    let result = result.and_then(|()| output::flush_stdout());
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            match err.downcast_ref::<ExitWith>() {
                Some(e) => ExitCode::from(e.0),
                None => ExitCode::FAILURE,
            }
        }
    }
}

/// Log lines to stderr; with `report`, error events also become error
/// reports (whatever the log level shown).
fn init_logging(verbose: u8, report: bool) {
    use std::io::IsTerminal;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer};
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    // fuser tries to unmount once its session ends, after the service
    // has detached the mount itself (so a busy mount cannot hang the
    // shutdown): its "Unmount failed: Invalid argument" is expected.
    let asked = std::env::var("RUST_LOG").unwrap_or_else(|_| default.to_owned());
    let directives = if asked.contains("fuser") {
        asked
    } else {
        format!("{asked},fuser::mnt=error")
    };
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new(default));
    let fmt = tracing_subscriber::fmt::layer()
        // Local time to the millisecond: what a person reading the log
        // next to their clock expects.
        .with_timer(tracing_subscriber::fmt::time::ChronoLocal::new(
            "%Y-%m-%d %H:%M:%S%.3f".to_owned(),
        ))
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_filter(filter);
    let registry = tracing_subscriber::registry().with(fmt);
    #[cfg(feature = "sentry")]
    let registry = registry.with(report.then(crate::reporting::tracing_layer));
    #[cfg(not(feature = "sentry"))]
    let _ = report;
    let _ = registry.try_init();
}

/// An env spec and the configured repositories it is resolved against.
struct Loaded {
    repos: RepositorySet,
    spec: EnvSpec,
}

impl Loaded {
    fn new(spec: &str) -> repo::Result<Self> {
        let spec = EnvSpec::parse(spec)?;
        // `info` and `ls` only read: never create a repository.
        let repos = RepositorySet::existing_from_environment()?;
        Ok(Self { repos, spec })
    }

    fn stack(&self) -> repo::Result<Vec<StackItem>> {
        self.repos.resolve_stack(&self.spec)
    }

    fn view(&self, stack: &[StackItem]) -> repo::Result<View> {
        View::build(&self.repos.read_stack_manifests(stack)?)
    }
}

/// Bytes in a short human form (`1.0 MiB`).
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS.get(unit).unwrap_or(&"TiB"))
    }
}
