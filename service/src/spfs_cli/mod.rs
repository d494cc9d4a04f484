//! `spfs`: upstream spfs's command line, on this project's repository
//! library, printing what upstream prints (spfs 0.44, command for
//! command; see `docs/spfs-cli.md` for what each does here).
//!
//! This module holds the repository commands that read (`version`,
//! `ls-tags`, `tags`, `layers`, `platforms`, `log`, `search`, `info`,
//! `read`), that tag (`tag`, `untag`) and that store (`init repo`,
//! `write`), and the runtime commands `run`, `shell` and `join` (on the
//! service); the others are still `spfs-fuse-macos`'s.

mod annotations;
mod check;
mod clean;
mod commit;
mod config;
mod diff;
mod edit;
mod format;
mod ls;
mod objects;
mod reset;
mod runtime;
mod runtimes;
mod sync;
mod tags;
mod write;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::repo::{Config, FsRepository};

/// Writes `message` on standard error as upstream's log shows an
/// information line: ` INFO` (green unless `NO_COLOR` is set) and the
/// message.
pub(crate) fn log_info(message: &str) {
    eprintln!("{} {message}", level_word(" INFO", 32));
}

/// Writes `message` and a field `key=value` as upstream's log shows an
/// information line with a field (the key in italics, `=` dim, unless
/// `NO_COLOR` is set).
pub(crate) fn log_info_field(message: &str, key: &str, value: &str) {
    let field = if no_color() {
        format!("{key}=")
    } else {
        format!("\x1b[3m{key}\x1b[0m\x1b[2m=\x1b[0m")
    };
    eprintln!("{} {message} {field}{value}", level_word(" INFO", 32));
}

/// Whether `NO_COLOR` asks for plain text.
fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Writes `message` on standard error as upstream's log shows a warning.
pub(crate) fn log_warn(message: &str) {
    eprintln!("{} {message}", level_word(" WARN", 33));
}

/// `word` in ANSI colour `colour`, as upstream's log writes levels even
/// into pipes; plain when `NO_COLOR` is set.
pub(crate) fn level_word(word: &str, colour: u8) -> String {
    if no_color() {
        word.to_owned()
    } else {
        format!("\x1b[{colour}m{word}\x1b[0m")
    }
}

/// What a command returns: an error is printed as upstream prints one.
type CmdResult = Result<(), CmdError>;

/// An error of an `spfs` command, and the status it exits with.
#[derive(Debug)]
pub(crate) struct CmdError {
    message: String,
    /// What caused it, outermost first (upstream's cause chain).
    causes: Vec<String>,
    /// Reported as upstream logs it (an `ERROR` line), not as its error
    /// report.
    logged: bool,
    status: u8,
    /// Upstream's diagnostic code and help line, for the errors it
    /// reports with them.
    diagnostic: Option<Diagnostic>,
}

/// A diagnostic code (shown with its page on upstream's site) and what
/// to do about the error.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Diagnostic {
    code: &'static str,
    help: &'static str,
}

impl CmdError {
    /// The report upstream prints on standard error: `Error: ` and the
    /// message after `  × `, each cause after `  ├─▶ ` (the last after
    /// `  ╰─▶ `), wrapped as miette wraps them to the terminal's width (80
    /// when it is not one), and a blank line.
    fn report(&self, columns: usize) -> String {
        if self.logged {
            // Upstream's log lines, one for each line of the message.
            return self
                .message
                .lines()
                .map(|l| format!("{} {l}\n", level_word("ERROR", 31)))
                .collect();
        }
        let width = columns.saturating_sub(2);
        let fill = |text: &str, first: &str, rest: &str| {
            textwrap::fill(
                text,
                textwrap::Options::new(width)
                    .initial_indent(first)
                    .subsequent_indent(rest),
            )
        };
        let mut out = match self.diagnostic {
            None => String::from("Error: "),
            Some(d) => format!(
                "Error: {} (https://spkenv.dev/error_codes#{})\n\n",
                d.code, d.code
            ),
        };
        out.push_str(&fill(&self.message, "  × ", "  │ "));
        out.push('\n');
        for (i, cause) in self.causes.iter().enumerate() {
            let last = i + 1 == self.causes.len();
            let (first, rest) = if last {
                ("  ╰─▶ ", "      ")
            } else {
                ("  ├─▶ ", "  │   ")
            };
            out.push_str(&fill(cause, first, rest));
            out.push('\n');
        }
        if let Some(d) = self.diagnostic {
            out.push_str(&fill(d.help, "  help: ", "        "));
            out.push('\n');
        }
        out.push('\n');
        out
    }
}

impl<E: std::fmt::Display> From<E> for CmdError {
    fn from(e: E) -> Self {
        CmdError {
            diagnostic: None,
            causes: Vec::new(),
            logged: false,
            message: e.to_string(),
            status: 1,
        }
    }
}

/// SPFS is a system for filesystem isolation, capture, and distribution.
#[derive(Debug, Parser)]
#[command(name = "spfs", version = crate::repo::storage::WRITER_VERSION, max_term_width = 100)]
struct Cli {
    /// Make output more verbose, can be specified more than once.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    // (Their variables are read by hand: clap would write variables it
    // read into every usage line as required arguments, clap#1546.)
    /// Additionally log output to the provided file: the errors this
    /// command reports [env: SPFS_LOG_FILE].
    #[arg(long, global = true, value_name = "LOG_FILE")]
    log_file: Option<std::path::PathBuf>,
    /// Enables timestamp in logging (always enabled in file log)
    /// [env: SPFS_LOG_TIMESTAMP].
    #[arg(long, global = true)]
    timestamp: bool,
    #[command(subcommand)]
    command: Command,
}

/// Where a command reads: the local repository, or `--remote NAME`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Repositories {
    /// Operate on a remote repository instead of the local one.
    #[arg(short, long, value_name = "REMOTE")]
    pub(crate) remote: Option<String>,
}

impl Repositories {
    /// The repository to read: the configured local one, or the remote
    /// named (a `file://` one, read in place).
    fn open(&self) -> Result<FsRepository, CmdError> {
        match self.open_any()? {
            tags::TagSource::Local(repo) => Ok(repo),
            tags::TagSource::Server(_) => Err(format!(
                "remote '{}' is upstream's server: this command reads only file system repositories there so far (pull what you need with 'spfs pull', then leave out -r)",
                self.remote.as_deref().unwrap_or_default()
            )
            .into()),
        }
    }

    /// The repository to read, of either kind: the local one, a `file://`
    /// remote (read in place), or upstream's server (`grpc://`).
    fn open_any(&self) -> Result<tags::TagSource, CmdError> {
        let config = Config::load()?;
        let Some(name) = &self.remote else {
            return Ok(tags::TagSource::Local(
                FsRepository::open(&config.storage.root)?
                    .with_tag_namespace(config.storage.tag_namespace.clone()),
            ));
        };
        let remote = config
            .remotes
            .iter()
            .find(|r| &r.name == name)
            .ok_or_else(|| CmdError {
                message: format!("No remote named '{name}' configured"),
                causes: Vec::new(),
                logged: false,
                status: 1,
                diagnostic: Some(Diagnostic {
                    code: "spfs::unknown_remote",
                    help: "See available remotes via the 'spfs config' command",
                }),
            })?;
        tags::TagSource::remote(name, &remote.location)
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the version of spfs.
    Version,
    /// List tags by their path.
    #[command(name = "ls-tags", visible_alias = "list-tags")]
    LsTags(tags::LsTagsArgs),
    /// List all tags in an spfs repository.
    Tags(tags::TagsArgs),
    /// List all layers in an spfs repository.
    Layers(objects::ListArgs),
    /// List all platforms in an spfs repository.
    Platforms(objects::ListArgs),
    /// Log the history of a given tag over time.
    Log(tags::LogArgs),
    /// Search for available tags by substring.
    Search(tags::SearchArgs),
    /// Compare two spfs file system states.
    Diff(diff::DiffArgs),
    /// Display information about specific items.
    Info(objects::InfoArgs),
    /// List the contents of a committed directory.
    #[command(visible_aliases = ["list-dir", "list"])]
    Ls(ls::LsArgs),
    /// Output the contents of a blob to stdout.
    #[command(visible_aliases = ["read-file", "cat", "cat-file"])]
    Read(objects::ReadArgs),
    /// Check a repositories internal integrity.
    Check(check::CheckArgs),
    /// Output the current configuration of spfs.
    Config,
    /// Create an empty filesystem repository.
    #[command(subcommand)]
    Init(write::InitCommand),
    /// Store an arbitrary blob of data in spfs.
    #[command(visible_alias = "write-file")]
    Write(write::WriteArgs),
    /// Migrate the data from an older repository format to the latest one.
    Migrate(Unsupported),
    /// Start an spfs server.
    Server(Unsupported),
    /// Tag an object.
    Tag(tags::TagArgs),
    /// Run a program in a configured spfs environment.
    Run(runtime::RunArgs),
    /// Enter a subshell in a configured spfs environment.
    Shell(runtime::ShellArgs),
    /// Run a command in an existing runtime.
    Join(runtime::JoinArgs),
    /// Make the current runtime editable.
    Edit(edit::EditArgs),
    /// Commit the current runtime state or a directory to storage.
    Commit(commit::CommitArgs),
    /// Reset changes, or rebuild the entire spfs directory.
    Reset(reset::ResetArgs),
    /// Clean the repository of data that nothing uses.
    Clean(clean::CleanArgs),
    /// Pull one or more objects to the local repository.
    Pull(sync::PullArgs),
    /// Push one or more objects to a remote repository.
    Push(sync::PushArgs),
    /// View and manage spfs runtime information.
    #[command(subcommand, visible_alias = "rt")]
    Runtime(runtimes::RuntimeCommand),
    /// Remove tag versions or entire tag streams.
    Untag(tags::UntagArgs),
}

/// The arguments of a command this `spfs` does not run (they are taken
/// whatever they are, so the refusal is the one line below).
#[derive(Debug, clap::Args)]
struct Unsupported {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    args: Vec<String>,
}

/// The command line's definition (for completions and man pages).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Appends `line` to the log file `--log-file` names, stamped with the
/// time (as upstream's file log always is); a file that cannot be written
/// is said on standard error.
fn log_to_file(path: &std::path::Path, line: &str) {
    use std::io::Write as _;
    let stamped = format!("{} {line}\n", chrono::Utc::now().to_rfc3339());
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(stamped.as_bytes()));
    if let Err(e) = written {
        eprintln!("cannot write the log file {}: {e}", path.display());
    }
}

/// Parses the process arguments and runs the command.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    crate::cli::output::exit_when_stdout_fails();
    let result = match cli.command {
        Command::Version => {
            println!("{}", crate::repo::storage::WRITER_VERSION);
            Ok(())
        }
        Command::LsTags(args) => tags::ls_tags(args),
        Command::Tags(args) => tags::tags(args),
        Command::Layers(args) => objects::list(args, crate::repo::object::ObjectKind::Layer),
        Command::Platforms(args) => objects::list(args, crate::repo::object::ObjectKind::Platform),
        Command::Log(args) => tags::log(args),
        Command::Search(args) => tags::search(args),
        Command::Info(args) => objects::info(args, cli.verbose),
        Command::Diff(args) => diff::diff(args),
        Command::Read(args) => objects::read(args),
        Command::Ls(args) => ls::ls(args),
        Command::Init(cmd) => write::init(cmd),
        Command::Config => config::config(),
        Command::Check(args) => check::check(args),
        Command::Write(args) => write::write(args),
        Command::Migrate(_) => Err(CmdError {
            diagnostic: None,
            causes: Vec::new(),
            logged: false,
            message: "spfs migrate is not part of spfs on macOS: repositories older than 0.x are read by upstream's spfs on Linux; migrate them there".into(),
            status: 1,
        }),
        Command::Server(_) => Err(CmdError {
            diagnostic: None,
            causes: Vec::new(),
            logged: false,
            message: "spfs server is not part of spfs on macOS: run upstream's 'spfs server' on a Linux host for the studio, and add it here as a remote ([remote.origin] address = \"grpc://HOST:7737\")".into(),
            status: 1,
        }),
        Command::Tag(args) => tags::tag(args),
        Command::Run(args) => runtime::run(args),
        Command::Shell(args) => runtime::shell(args),
        Command::Join(args) => runtime::join(args),
        Command::Runtime(cmd) => runtimes::run(cmd),
        Command::Edit(args) => edit::edit(args),
        Command::Commit(args) => commit::commit(args),
        Command::Reset(args) => reset::reset(args),
        Command::Clean(args) => clean::clean(args, cli.verbose),
        Command::Pull(args) => sync::pull(args),
        Command::Push(args) => sync::push(args),
        Command::Untag(args) => tags::untag(args),
    };
    if result.is_ok() {
        if let Err(e) = std::io::Write::flush(&mut std::io::stdout()) {
            crate::cli::output::fail(&e);
        }
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Upstream's error report; the log file gets it unwrapped.
            eprint!(
                "{}",
                e.report(crate::sys::fd::stdout_columns().unwrap_or(80))
            );
            let line = format!("Error:   × {}", e.message);
            let log_file = cli.log_file.clone().or_else(|| {
                std::env::var_os("SPFS_LOG_FILE")
                    .filter(|v| !v.is_empty())
                    .map(std::path::PathBuf::from)
            });
            if let Some(path) = &log_file {
                log_to_file(path, &line);
            }
            ExitCode::from(e.status)
        }
    }
}
