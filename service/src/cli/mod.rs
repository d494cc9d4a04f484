//! The `spfs-fuse-macos` command line.

mod info;
mod ls;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::repo::{self, EnvSpec, RepositorySet, StackItem, View};

/// SPFS runtimes on macOS: one FUSE mount at /spfs, a view per process tree.
#[derive(Debug, Parser)]
#[command(name = "spfs-fuse-macos", version, about, max_term_width = 100)]
pub struct Cli {
    /// More log output (repeat for more); or set RUST_LOG.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show what a reference is: its kind, digest, layers or contents.
    Info(info::Args),
    /// List the files of an environment, as it would appear at /spfs.
    Ls(ls::Args),
}

/// Parses the process arguments and runs the command.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Info(args) => info::run(args),
        Command::Ls(args) => ls::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// An env spec and the configured repositories it is resolved against.
struct Loaded {
    repos: RepositorySet,
    spec: EnvSpec,
}

impl Loaded {
    fn new(spec: &str) -> repo::Result<Self> {
        let spec = EnvSpec::parse(spec)?;
        let repos = RepositorySet::from_environment()?;
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
        format!("{v:.1} {}", UNITS[unit])
    }
}
