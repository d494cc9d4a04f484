//! `init repo`, `write`: making repositories and storing data.

use std::path::PathBuf;

use crate::repo::object::Blob;
use crate::repo::tags::TagAuthor;
use crate::repo::{Config, FsRepository, Object, TagSpec};

use super::{CmdResult, Repositories};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum InitCommand {
    /// Initialize an empty filesystem repository.
    Repo {
        /// The root of the new repository.
        path: PathBuf,
    },
}

/// `init repo PATH`: an empty repository laid out as upstream lays one
/// out (an existing one is left as it is).
pub(crate) fn init(cmd: InitCommand) -> CmdResult {
    let InitCommand::Repo { path } = cmd;
    FsRepository::open_or_create(&path)?;
    for sub in ["durable_edits", "renders"] {
        let dir = path.join(sub);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub(crate) struct WriteArgs {
    #[command(flatten)]
    repos: Repositories,
    /// A human-readable tag for the generated object (repeatable).
    #[arg(short, long = "tag", value_name = "TAGS")]
    tags: Vec<String>,
    /// Store the contents of this file instead of standard input.
    #[arg(short, long, value_name = "FILE")]
    file: Option<PathBuf>,
}

/// `write [-t TAG]... [-f FILE]`: stores a blob (payload and blob object)
/// and tags it; says its digest on standard error, as upstream logs it.
pub(crate) fn write(args: WriteArgs) -> CmdResult {
    let repo = args.repos.open()?;
    let config = Config::load()?;
    let author = TagAuthor(format!("{}@{}", config.user.name, config.user.domain));
    // Tags are checked before anything is written.
    let tags = args
        .tags
        .iter()
        .map(|t| TagSpec::parse_to_write(t))
        .collect::<Result<Vec<_>, _>>()?;
    let (payload, size) = match &args.file {
        Some(path) => {
            let file = std::fs::File::open(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            repo.write_payload(file)?
        }
        None => repo.write_payload(std::io::stdin().lock())?,
    };
    let digest = repo.write_object(&Object::Blob(Blob { payload, size }))?;
    for spec in &tags {
        repo.push_tag(spec, digest, &author)?;
    }
    super::log_info_field("created", "digest", &digest.to_string());
    Ok(())
}
